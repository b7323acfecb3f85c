# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_restart.yml on three local "hosts" (each its own refsuite instance from
a release archive, on free ports): an upgrade, one batch per host; the second host cannot come
up (another process takes its sshd port while it is stopped), so it is rolled back and the
third is never touched."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modrun import run_playbook
from test_service import Instance

from ansible_collections.daemonops.suite.plugins.module_utils._suite.installer import (
    ArchiveInstaller,
)

TOP = Path(__file__).resolve().parents[2]
HOSTS = ("h1", "h2", "h3")

pytestmark = pytest.mark.slow


def make_release(path: Path, version: str) -> str:
    """A release archive (scripts/make-release.py) whose launcher runs this interpreter."""
    proc = subprocess.run(
        [
            sys.executable,
            str(TOP / "scripts" / "make-release.py"),
            "--version",
            version,
            "--python",
            sys.executable,
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout.strip()


class Squatter(threading.Thread):
    """Takes a port as soon as it is free (while the daemon holding it is stopped)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.held = threading.Event()

    def run(self) -> None:
        with socket.socket() as sock:
            # SO_REUSEADDR: TIME_WAIT leftovers do not stop it, a listener still does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            while not self.stop.is_set():
                try:
                    sock.bind(("127.0.0.1", self.port))
                    sock.listen()
                    break
                except OSError:
                    self.stop.wait(0.02)
            else:
                return
            self.held.set()
            self.stop.wait()


@pytest.fixture
def fleet(tmp_path: Path, free_port) -> Iterator[dict[str, Instance]]:
    one = make_release(tmp_path / "refsuite-1.0.tar.gz", "1.0")
    instances: dict[str, Instance] = {}
    try:
        for name in HOSTS:
            inst = Instance(tmp_path / name, [free_port() for _unused in range(6)])
            inst.setup()
            inst.use_prefix(tmp_path / name / "release")
            ArchiveInstaller(str(inst.prefix), str(tmp_path / "refsuite-1.0.tar.gz"), one).run()
            instances[name] = inst
            subprocess.run(
                [str(inst.binary), "--config", str(inst.ini), "start"],
                check=True,
                capture_output=True,
                timeout=120,
            )
        yield instances
    finally:
        for inst in instances.values():
            inst.cleanup()


def run_rollout(tmp_path: Path, fleet: dict[str, Instance], *args: str) -> dict[str, Any]:
    two = make_release(tmp_path / "refsuite-2.0.tar.gz", "2.0")
    inventory = {
        "client": {
            "hosts": {
                name: {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                    "rolling_restart_profile_data": inst.profile_data,
                    "rolling_restart_config_file": str(inst.ini),
                    "rolling_restart_prefix": str(inst.prefix),
                }
                for name, inst in fleet.items()
            }
        }
    }
    work = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    work.mkdir()
    (work / "inventory.json").write_text(json.dumps(inventory))
    variables = {
        "rolling_restart_hosts": "client",
        "rolling_restart_serial": 1,
        "rolling_restart_upgrade": "true",  # as -e rolling_restart_upgrade=true gives it
        "rolling_restart_archive": str(tmp_path / "refsuite-2.0.tar.gz"),
        "rolling_restart_archive_sha256": two,
        "rolling_restart_timeout": 8,
        "rolling_restart_drain_timeout": 0,
    }
    (work / "vars.json").write_text(json.dumps(variables))
    proc, output = run_playbook(
        work,
        str(TOP / "playbooks" / "rolling_restart.yml"),
        "-i",
        str(work / "inventory.json"),
        "-e",
        f"@{work / 'vars.json'}",
        *args,
        timeout=900,
    )
    output["_rc"] = proc.returncode
    (work / "output.json").write_text(proc.stdout)
    return output


def summaries(output: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for play in output["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith("Summarise the rollout so far"):
                found.extend(r["msg"] for r in task["hosts"].values() if "msg" in r)
    return found


def release(inst: Instance) -> str:
    return os.readlink(inst.prefix / "current")


def test_check_mode_shows_the_plan_and_changes_nothing(tmp_path: Path, fleet) -> None:
    before = {name: inst.pids() for name, inst in fleet.items()}
    output = run_rollout(tmp_path, fleet, "--check")
    assert output["_rc"] == 0, json.dumps(output["stats"])
    final = summaries(output)[-1]
    assert final["done"] == list(HOSTS) and final["failed"] == [] and final["not_touched"] == []
    assert {name: inst.pids() for name, inst in fleet.items()} == before
    assert {release(inst) for inst in fleet.values()} == {"releases/1.0"}


def test_rollout_stops_at_a_failed_gate_and_rolls_that_host_back(tmp_path: Path, fleet) -> None:
    before = {name: inst.pids() for name, inst in fleet.items()}
    squatter = Squatter(fleet["h2"].ports[1])  # h2's sshd port, taken once h2 stops
    squatter.start()
    try:
        output = run_rollout(tmp_path, fleet)
        assert squatter.held.is_set()
    finally:
        squatter.stop.set()
        squatter.join()
    assert output["_rc"] != 0
    stats = output["stats"]
    assert stats["h1"]["failures"] == 0 and stats["h2"]["failures"] == 1
    assert "h3" not in stats, "the third host must not be touched"
    last = summaries(output)[-1]
    assert last["done"] == ["h1"] and last["not_touched"] == ["h3"]
    assert len(last["failed"]) == 1 and last["failed"][0].startswith("h2: ")
    assert "sshd" in last["failed"][0]
    assert len(last["rolled_back"]) == 1 and "h2: rolled back to 1.0" in last["rolled_back"][0]
    # h1 runs 2.0 (restarted), h2 is back on 1.0, h3 still runs 1.0 in the same processes
    assert release(fleet["h1"]) == "releases/2.0"
    assert set(fleet["h1"].pids()["qm"]).isdisjoint(before["h1"]["qm"])
    assert release(fleet["h2"]) == "releases/1.0"
    assert release(fleet["h3"]) == "releases/1.0" and fleet["h3"].pids() == before["h3"]
