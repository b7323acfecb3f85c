# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""stale_pids against real processes, real pidfiles, a real SQLite file and a real PostgreSQL
server: dead PIDs removed, live daemons kept, reused PIDs judged stale without touching the
process, garbage invalid and untouched, insecure pidfiles refused, check mode changes nothing."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg_fixture
import psutil
import pytest
from modrun import kill, run_module_file, spawn
from modrun import run_adhoc as run_ansible

postgres_dsn = pg_fixture.postgres_dsn  # the session-scoped PostgreSQL fixture

TOP = Path(__file__).resolve().parents[2]
MODULE = TOP / "plugins" / "modules" / "stale_pids.py"
GARBAGE = ["", "abc", "0", "1", "-5", "12 34", "99999999", "0x1f"]


def profile_data(tmp_path: Path) -> dict[str, Any]:
    names = ["qm", "sms", "ui", "db", "sepuler"] + [f"bad{i}" for i in range(len(GARBAGE))]
    return {
        "suite": {"name": "itest", "roles": ["server"]},
        "daemons": [
            {"name": name, "roles": ["server"], "match": {"cmdline": f"^refsuite-{name}( |$)"}}
            for name in names
        ],
    }


def run_module(args: dict[str, Any], tmp_path: Path, check: bool = False) -> dict[str, Any]:
    return run_module_file(MODULE, args, tmp_path, check)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    return proc.pid


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A live 'daemon' (refsuite-qm), an unrelated live process (sleep 300) and a dead PID."""
    config = str(tmp_path / "refsuite.ini")
    daemon = spawn("refsuite-qm", "--config", config)
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        yield {
            "daemon": daemon,
            "sleeper": sleeper,
            "sleeper_started": psutil.Process(sleeper.pid).create_time(),
            "dead": dead_pid(),
            "config": config,
        }
    finally:
        kill(daemon)
        kill(sleeper)


def identity_of(pid: int) -> dict[str, Any]:
    proc = psutil.Process(pid)
    return {
        "start_time": proc.create_time(),
        "exe": proc.exe(),
        "host": socket.gethostname(),
        "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
    }


def assert_untouched(sleeper: subprocess.Popen, started: float) -> None:
    proc = psutil.Process(sleeper.pid)
    assert proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    assert proc.create_time() == started
    assert sleeper.poll() is None


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert not result.get("failed"), result.get("msg")
    return {record["name"]: record for record in result["records"]}


# ----------------------------------------------------------------------------- pidfiles


def write_pidfiles(directory: Path, procs: dict[str, Any]) -> dict[str, str]:
    directory.mkdir(mode=0o755)
    content = {
        "qm": f"{procs['daemon'].pid}\n",  # the live daemon
        "sms": f"{procs['sleeper'].pid}\n",  # reused PID: sleep 300 is no refsuite-sms
        "ui": f"{procs['dead']}\n",  # dead
    }
    for i, text in enumerate(GARBAGE):
        content[f"bad{i}"] = text
    for name, text in content.items():
        path = directory / f"{name}.pid"
        path.write_text(text)
        path.chmod(0o644)
    return content


def test_pidfiles_real_processes(tmp_path, processes):
    pids = tmp_path / "pids"
    content = write_pidfiles(pids, processes)
    args = {
        "profile_data": profile_data(tmp_path),
        "store": {"type": "pidfile", "path": str(pids)},
        "state": "absent",
    }

    checked = run_module(args, tmp_path, check=True)
    records = by_name(checked)
    assert checked["changed"] is True
    assert records["qm"]["status"] == "live"
    assert records["sms"]["status"] == "stale" and "sleep 300" in records["sms"]["reason"]
    assert records["ui"]["status"] == "stale" and "no process" in records["ui"]["reason"]
    for name in (f"bad{i}" for i in range(len(GARBAGE))):
        assert records[name]["status"] == "invalid", records[name]
        assert records[name]["pid"] is None and records[name]["removed"] is False
    assert {p.name: p.read_text() for p in pids.iterdir()} == {
        f"{name}.pid": text for name, text in content.items()
    }, "check mode must change nothing"
    assert checked["diff"]["before"] != checked["diff"]["after"]

    applied = by_name(run_module(args, tmp_path))
    assert applied["sms"]["removed"] and applied["ui"]["removed"]
    assert not applied["qm"]["removed"]
    assert sorted(p.name for p in pids.iterdir()) == sorted(
        f"{name}.pid" for name in content if name not in ("sms", "ui")
    )
    for i, text in enumerate(GARBAGE):
        assert (pids / f"bad{i}.pid").read_text() == text
    assert (pids / "qm.pid").read_text() == content["qm"]
    assert_untouched(processes["sleeper"], processes["sleeper_started"])
    assert processes["daemon"].poll() is None

    again = run_module(args, tmp_path)
    assert again["changed"] is False
    assert again["counts"]["stale"] == 0 and again["counts"]["live"] == 1


def test_remove_invalid_removes_garbage_as_records_only(tmp_path, processes):
    pids = tmp_path / "pids"
    write_pidfiles(pids, processes)
    args = {
        "profile_data": profile_data(tmp_path),
        "store": {"type": "pidfile", "path": str(pids)},
        "state": "absent",
        "remove_invalid": True,
    }
    result = run_module(args, tmp_path)
    records = by_name(result)
    assert all(records[f"bad{i}"]["removed"] for i in range(len(GARBAGE)))
    assert sorted(p.name for p in pids.iterdir()) == ["qm.pid"]
    assert_untouched(processes["sleeper"], processes["sleeper_started"])
    assert processes["daemon"].poll() is None


def test_insecure_pidfiles_are_refused(tmp_path, processes):
    pids = tmp_path / "pids"
    pids.mkdir()
    target = tmp_path / "elsewhere.pid"
    target.write_text(f"{processes['dead']}\n")
    (pids / "qm.pid").symlink_to(target)
    writable = pids / "sms.pid"
    writable.write_text(f"{processes['dead']}\n")
    writable.chmod(0o666)
    args = {
        "profile_data": profile_data(tmp_path),
        "store": {"type": "pidfile", "path": str(pids)},
        "state": "absent",
        "remove_invalid": True,
    }
    result = run_module(args, tmp_path)
    records = by_name(result)
    assert records["qm"]["status"] == "unknown" and "symlink" in records["qm"]["reason"]
    assert records["sms"]["status"] == "unknown" and "writable" in records["sms"]["reason"]
    assert not records["qm"]["removed"] and not records["sms"]["removed"]
    assert result["changed"] is False
    assert (pids / "qm.pid").is_symlink() and target.exists() and writable.exists()


def test_limit_to_daemons(tmp_path, processes):
    pids = tmp_path / "pids"
    write_pidfiles(pids, processes)
    args = {
        "profile_data": profile_data(tmp_path),
        "store": {"type": "pidfile", "path": str(pids)},
        "daemons": ["ui"],
        "state": "absent",
    }
    result = run_module(args, tmp_path)
    assert list(by_name(result)) == ["ui"]
    assert not (pids / "ui.pid").exists() and (pids / "sms.pid").exists()
    bad = run_module(dict(args, daemons=["nope"]), tmp_path)
    assert bad["failed"] and "nope" in bad["msg"]


# ----------------------------------------------------------------------------- databases

COLUMNS = ("name", "pid", "start_time", "boot_id", "host", "exe")


def db_rows(procs: dict[str, Any]) -> list[tuple]:
    live = identity_of(procs["daemon"].pid)
    sleeper = identity_of(procs["sleeper"].pid)
    rows = [
        ("qm", procs["daemon"].pid, live["start_time"], live["boot_id"], live["host"], live["exe"]),
        # the sleeper's PID recorded for db with another start time: PID reuse
        ("db", procs["sleeper"].pid, sleeper["start_time"] - 3600, None, None, None),
        ("sms", procs["sleeper"].pid, None, None, None, None),  # PID only, wrong program
        ("ui", procs["dead"], None, None, None, None),
        ("sepuler", procs["daemon"].pid, None, None, "some-other-host", None),
    ]
    rows += [(f"bad{i}", text, None, None, None, None) for i, text in enumerate(GARBAGE)]
    return rows


def check_db_store(tmp_path, procs, store, fetch_rows) -> None:
    args = {"profile_data": profile_data(tmp_path), "store": store, "state": "absent"}
    before = fetch_rows()
    checked = run_module(args, tmp_path, check=True)
    records = by_name(checked)
    assert {n: r["status"] for n, r in records.items() if not n.startswith("bad")} == {
        "qm": "live",
        "db": "stale",
        "sms": "stale",
        "ui": "stale",
        "sepuler": "unknown",
    }
    assert "reused" in records["db"]["reason"]
    assert all(records[f"bad{i}"]["status"] == "invalid" for i in range(len(GARBAGE)))
    assert fetch_rows() == before, "check mode must change nothing"

    applied = run_module(args, tmp_path)
    assert applied["changed"] is True and applied["counts"]["removed"] == 3
    left = {row[0] for row in fetch_rows()}
    assert left == {"qm", "sepuler"} | {f"bad{i}" for i in range(len(GARBAGE))}
    assert_untouched(procs["sleeper"], procs["sleeper_started"])
    assert procs["daemon"].poll() is None
    assert run_module(args, tmp_path)["changed"] is False


def test_sqlite_store(tmp_path, processes):
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "CREATE TABLE daemon_pids (name TEXT PRIMARY KEY, pid INTEGER, start_time REAL,"
            " boot_id TEXT, host TEXT, exe TEXT)"
        )
        conn.executemany("INSERT INTO daemon_pids VALUES (?,?,?,?,?,?)", db_rows(processes))
    conn.close()

    def fetch() -> list[tuple]:
        with sqlite3.connect(db) as c:
            rows = sorted(c.execute("SELECT * FROM daemon_pids").fetchall(), key=repr)
        c.close()
        return rows

    store = {"type": "sqlite", "path": str(db), "table": "daemon_pids"}
    check_db_store(tmp_path, processes, store, fetch)


@pytest.mark.postgres
def test_postgresql_store(tmp_path, processes, postgres_dsn):
    import psycopg2

    table = f"pids_{os.getpid()}_{time.monotonic_ns()}"
    conn = psycopg2.connect(postgres_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {table} (daemon TEXT PRIMARY KEY, process_id TEXT,"
            " started DOUBLE PRECISION, boot_id TEXT, host TEXT, exe TEXT)"
        )
        cur.executemany(f"INSERT INTO {table} VALUES (%s,%s,%s,%s,%s,%s)", db_rows(processes))

    def fetch() -> list[tuple]:
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {table}")
            return sorted(cur.fetchall(), key=repr)

    store = {
        "type": "postgresql",
        "dsn": postgres_dsn,
        "table": table,
        "columns": {"name": "daemon", "pid": "process_id", "start_time": "started"},
    }
    try:
        check_db_store(tmp_path, processes, store, fetch)
    finally:
        conn.close()


# ----------------------------------------------------------------------------- through Ansible


def test_through_ansible_check_apply_check_apply(tmp_path, processes):
    pids = tmp_path / "pids"
    pids.mkdir()
    (pids / "qm.pid").write_text(f"{processes['daemon'].pid}\n")
    (pids / "sms.pid").write_text(f"{processes['sleeper'].pid}\n")
    (pids / "ui.pid").write_text(f"{processes['dead']}\n")
    (pids / "bad0.pid").write_text("garbage\n")
    for path in pids.iterdir():
        path.chmod(0o644)
    args = {
        "profile_data": profile_data(tmp_path),
        "store": {"type": "pidfile", "path": str(pids)},
        "state": "absent",
    }
    first = run_ansible("daemonops.suite.stale_pids", args, check=True)
    assert first["changed"] is True, first
    assert len(list(pids.iterdir())) == 4
    second = run_ansible("daemonops.suite.stale_pids", args)
    assert second["changed"] is True and second["counts"]["removed"] == 2
    assert sorted(p.name for p in pids.iterdir()) == ["bad0.pid", "qm.pid"]
    third = run_ansible("daemonops.suite.stale_pids", args, check=True)
    assert third["changed"] is False, third
    fourth = run_ansible("daemonops.suite.stale_pids", args)
    assert fourth["changed"] is False, fourth
    assert_untouched(processes["sleeper"], processes["sleeper_started"])
    assert processes["daemon"].poll() is None


# ----------------------------------------------------------------------------- real refsuite


@pytest.mark.slow
def test_real_refsuite_records_live_then_stale_after_a_crash(tmp_path):
    """refsuite's own state DB: every record of a running suite is live and kept; after the
    whole suite is killed (a crash: nobody cleans up), every record is stale and removed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "refsuite"))
    from refsuite_testlib import RefSuite

    (tmp_path / "rs").mkdir()
    suite = RefSuite(tmp_path / "rs")
    args = {
        "profile": "refsuite",
        "store": {"path": str(suite.state_db)},
        "instance": str(suite.ini),
        "state": "absent",
    }
    try:
        suite.start()
        recorded = suite.records()
        assert len(recorded) >= 9
        running = run_ansible("daemonops.suite.stale_pids", args)
        assert not running.get("failed"), running.get("msg")
        assert running["changed"] is False
        assert running["counts"]["live"] == len(recorded), running["records"]
        assert suite.records() == recorded
        for pid in suite.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(psutil.pid_exists(pid) for pid, *_unused in recorded.values()):
            assert time.monotonic() < deadline, "the killed suite did not go away"
            time.sleep(0.05)
        crashed = run_ansible("daemonops.suite.stale_pids", args)
        assert crashed["changed"] is True
        assert crashed["counts"]["stale"] == crashed["counts"]["removed"] == len(recorded)
        assert suite.records() == {}
    finally:
        suite.cleanup()
