"""PID records in the state DB: one qm per config, stale records, --force never clears live ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import psutil
from refsuite_testlib import REPO, RefSuite, wait_until


def test_second_qm_is_refused(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("client")
    suite.start()
    before = suite.records()
    qm_pid = before["qm"][0]

    again = suite.run("start")
    assert again.returncode == 1
    assert f"qm: another daemon must be running (pid {qm_pid} recorded and alive)" in again.stderr

    # a second refsuite-qm started directly loses on the lock next to state_db
    env = dict(os.environ, PYTHONPATH=str(REPO / "refsuite"))
    direct = subprocess.run(
        [sys.executable, "-m", "refsuite", "_qm", "--config", str(suite.ini)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert direct.returncode == 2
    assert f"lock {suite.state_db}.lock is held" in direct.stderr
    assert suite.records() == before
    assert all(psutil.pid_exists(record[0]) for record in before.values())


def test_stale_record_refused_until_forced(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("rds", retry_interval=0)
    suite.start()
    victim = suite.pid("stpd")
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "stpd stays down" in suite.log(), 10, "qm to notice stpd died")
    assert suite.records()["stpd"][0] == victim  # the crash left its record behind

    status = suite.run("status")
    assert status.returncode == 1
    assert "stpd : offline" in status.stdout.splitlines()
    assert status.stdout.splitlines()[-1] == "STATUS=FAILURE MSG=stpd offline"

    assert suite.run("stop").returncode == 0
    assert list(suite.records()) == ["stpd"]

    plain = suite.run("start")
    assert plain.returncode == 1
    assert (
        f"stale record for stpd (pid {victim}, process gone); start with --force to clear it"
        in plain.stderr
    )
    assert suite.records()["stpd"][0] == victim
    assert suite.processes() == {}

    forced = suite.run("start", "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"cleared stale record for stpd (pid {victim}, process gone)" in forced.stdout
    new = suite.pid("stpd")
    assert new != victim and psutil.Process(new).cmdline()[0] == "refsuite-stpd"
    assert suite.run("status").returncode == 0


def test_force_never_clears_a_live_record(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("rds")
    suite.start()
    records = suite.records()
    os.kill(records["qm"][0], signal.SIGKILL)  # daemons survive qm: their records stay live
    os.kill(records["stpd"][0], signal.SIGKILL)  # this one becomes stale
    wait_until(
        lambda: (
            not psutil.pid_exists(records["stpd"][0])
            or psutil.Process(records["stpd"][0]).status() == psutil.STATUS_ZOMBIE
        ),
        10,
        "stpd gone",
    )

    forced = suite.run("start", "--force")
    assert forced.returncode == 1
    sshd_pid = records["sshd"][0]
    assert (
        f"sshd: another daemon must be running (pid {sshd_pid} recorded and alive)" in forced.stderr
    )
    assert "stale record for stpd" not in forced.stderr
    after = suite.records()
    assert "stpd" not in after and "qm" not in after  # stale ones cleared
    for name in ("passd", "sms", "data_server-1", "data_server-2", "sshd"):
        assert after[name] == records[name]  # live ones untouched
        assert psutil.pid_exists(records[name][0])

    # stop without qm stops the orphans directly
    stopped = suite.run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert suite.records() == {}
    wait_until(lambda: not suite.processes(), 10, "orphaned daemons gone")
