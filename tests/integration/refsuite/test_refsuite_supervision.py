"""qm supervision with esmd semantics: restart, give up with ONE emergency message, SIGHUP, resume."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from refsuite_testlib import RefSuite, wait_until


def test_qm_restarts_a_killed_daemon(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("rds")
    suite.start()
    old = suite.pid("sshd")
    os.kill(old, signal.SIGKILL)
    new = wait_until(
        lambda: (pid := suite.online("sshd")) is not None and pid != old and pid, 10, "new sshd"
    )
    assert psutil.Process(new).ppid() == suite.pid("qm")
    assert f"sshd (pid {old}) terminated unexpectedly" in suite.log()
    assert "restarting sshd (retry_interval 0.2s elapsed; restart #1)" in suite.log()

    old_ds = suite.pid("data_server-1")
    os.kill(old_ds, signal.SIGKILL)
    wait_until(
        lambda: (pid := suite.online("data_server-1")) is not None and pid != old_ds,
        10,
        "sms to restart data_server 1",
    )
    assert suite.run("status").returncode == 0


def _syslog_listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    return sock


def _datagrams(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


def _emerg_lines(suite: RefSuite) -> list[str]:
    return [line for line in suite.log().splitlines() if "EMERG" in line]


def test_crash_loop_gives_up_once_then_sighup_restarts(
    refsuite_factory: Callable[..., RefSuite], tmp_path: Path
) -> None:
    syslog_path = tmp_path / "syslog.sock"
    listener = _syslog_listener(syslog_path)
    suite = refsuite_factory(
        "client", max_failures=3, resume_interval=60, syslog_socket=str(syslog_path)
    )
    suite.sections["sshd"]["crash_after"] = 0.05
    suite.write()
    qm = suite.start_foreground()
    wait_until(lambda: _emerg_lines(suite), 15, "the emergency message")
    time.sleep(1.0)  # five more retry intervals: no further attempts may happen
    log = suite.log()
    assert len(re.findall(r"spawned sshd \(pid", log)) == 3
    assert len(re.findall(r"sshd \(pid \d+\) terminated unexpectedly", log)) == 3
    emerg = _emerg_lines(suite)
    assert len(emerg) == 1
    assert "refsuite-qm[" in emerg[0] and "gave up restarting sshd after 3 failures" in emerg[0]
    messages = _datagrams(listener)
    assert len(messages) == 1
    assert messages[0].startswith(b"<24>")  # facility daemon (3) * 8 + LOG_EMERG (0)
    assert b"refsuite-qm[" in messages[0] and b"sshd" in messages[0]
    assert suite.online("qm") == qm.pid
    assert suite.online("sshd") is None

    del suite.sections["sshd"]["crash_after"]
    suite.write()
    os.kill(qm.pid, signal.SIGHUP)
    pid = wait_until(lambda: suite.online("sshd"), 10, "sshd restarted by SIGHUP")
    assert psutil.Process(pid).ppid() == qm.pid
    assert "SIGHUP: restarting failed daemons now" in suite.log()
    assert len(_emerg_lines(suite)) == 1
    assert _datagrams(listener) == []

    qm.send_signal(signal.SIGTERM)
    assert qm.wait(20) == 0
    assert suite.records() == {}
    listener.close()


def test_resume_interval_resumes_monitoring(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("client", max_failures=2, resume_interval=0.8)
    suite.sections["sshd"]["crash_after"] = 0.05
    suite.write()
    qm = suite.start_foreground()
    wait_until(lambda: _emerg_lines(suite), 15, "the emergency message")
    del suite.sections["sshd"]["crash_after"]
    suite.write()
    wait_until(lambda: "resumed monitoring of sshd" in suite.log(), 10, "resumed monitoring")
    assert suite.online("sshd")
    assert len(_emerg_lines(suite)) == 1
    assert len(re.findall(r"spawned sshd \(pid", suite.log())) == 3
    qm.send_signal(signal.SIGTERM)
    assert qm.wait(20) == 0


def test_retry_interval_zero_leaves_daemon_down(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("client", retry_interval=0)
    suite.start()
    old = suite.pid("sshd")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: "sshd stays down" in suite.log(), 10, "qm to log the death")
    time.sleep(0.5)
    assert suite.online("sshd") is None
    assert suite.log().count("spawned sshd") == 1
