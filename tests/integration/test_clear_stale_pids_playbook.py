# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/clear_stale_pids.yml with --check --diff, then for real, on a real SQLite state
database that an instance's INI names (the shipped refsuite profile follows ``state_db``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from modrun import text_playbook_env

TOP = Path(__file__).resolve().parents[2]
PLAYBOOK = TOP / "playbooks" / "clear_stale_pids.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.slow


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    return proc.pid


def rows(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute("SELECT name, pid FROM daemon_pids"))


def playbook(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = text_playbook_env(tmp_path)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[server]\nmember ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(PLAYBOOK), *extra]
    return subprocess.run(
        cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False
    )


def test_check_diff_then_apply(tmp_path: Path) -> None:
    db = tmp_path / "instance" / "state.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE daemon_pids (name TEXT PRIMARY KEY, pid INTEGER, start_time REAL, "
            "boot_id TEXT, host TEXT, exe TEXT)"
        )
        conn.executemany(
            "INSERT INTO daemon_pids (name, pid) VALUES (?, ?)",
            [("ui", dead_pid()), ("sms", dead_pid())],
        )
    before = rows(db)
    ini = tmp_path / "instance" / "refsuite.ini"
    ini.write_text(f"[suite]\nrole = server\nstate_db = {db}\n")
    common = (
        "-e",
        "clear_stale_pids_profile=refsuite",
        "-e",
        f"clear_stale_pids_config_file={ini}",
    )

    checked = playbook(tmp_path, "--check", "--diff", *common)
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0, out[-6000:]
    assert "Callback dispatch" not in out and "splitlines" not in out, out[-6000:]
    removed_lines = [
        line for line in out.splitlines() if line.startswith("-") and "---" not in line
    ]
    assert any("ui" in line and str(before[1][1]) in line for line in removed_lines), out[-4000:]
    assert any("sms" in line and str(before[0][1]) in line for line in removed_lines), out[-4000:]
    assert "msg: 'Would remove: ui, sms'" in out, out[-4000:]
    assert "removed: true" not in out
    assert rows(db) == before, "check mode removed records"

    applied = playbook(tmp_path, *common)
    out = applied.stdout + applied.stderr
    assert applied.returncode == 0, out[-6000:]
    assert "msg: 'Removed: ui, sms'" in out, out[-4000:]
    assert rows(db) == []
