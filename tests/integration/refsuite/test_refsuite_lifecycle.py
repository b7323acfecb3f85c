"""start / status / stop on real processes, process names, ancestry, role sets."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable

import psutil
import pytest
from refsuite_testlib import RefSuite, wait_until

SERVER = ["qm", "db", "ui", "passd", "sms", "data_server-1", "data_server-2", "stpd"]
SERVER += ["sshd", "sepuler"]


def _ps_lines() -> list[str]:
    return subprocess.run(
        ["ps", "-efww"], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_server_role_starts_every_daemon_under_qm(started_server: RefSuite) -> None:
    suite = started_server
    ini = str(suite.ini)
    records = suite.records()
    assert sorted(records) == sorted(SERVER)

    qm_pid = records["qm"][0]
    ps = _ps_lines()
    for name, (pid, start_time, boot_id, host, exe) in records.items():
        process = psutil.Process(pid)
        base, _unused, instance = name.partition("-")
        expected = [f"refsuite-{base}", *([instance] if instance else []), "--config", ini]
        assert process.cmdline() == expected, name
        assert any(line.split()[1] == str(pid) and " ".join(expected) in line for line in ps), name
        assert abs(process.create_time() - start_time) < 0.01, name
        assert boot_id == open("/proc/sys/kernel/random/boot_id").read().strip()
        assert host == socket.gethostname()
        assert exe == process.exe()
        if name != "qm":
            assert qm_pid in [p.pid for p in process.parents()], f"qm is not an ancestor of {name}"
    for index in (1, 2):
        data_server = psutil.Process(records[f"data_server-{index}"][0])
        assert data_server.ppid() == records["sms"][0]
        # cluster data at depth 2: cluster_path/<host>/ds-I/state
        state = suite.cluster / socket.gethostname() / f"ds-{index}" / "state"
        assert f"pid={data_server.pid} " in state.read_text()
    assert psutil.Process(qm_pid).name() == "refsuite-qm"
    assert (suite.root / "state" / "catalog.db").exists()

    # dependency order: db before ui and sepuler, data servers before sms is up, sms before stpd
    log = suite.log()
    spawned = re.findall(r"refsuite-qm\[\d+\] INFO: spawned (\w+)", log)
    assert spawned == ["db", "ui", "passd", "sms", "stpd", "sshd", "sepuler"]
    assert log.index("data_server-2 online") < log.index("sms online") < log.index("spawned stpd")

    # the ui keeps sessions and answers the line protocol; so does the sshd control channel
    for port in (suite.ui_port, suite.sshd_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            stream = sock.makefile("rwb")
            for _unused in range(2):
                stream.write(b"PING\n")
                stream.flush()
                assert stream.readline() == b"PONG\n"


def test_status_output_and_exit_codes(started_server: RefSuite) -> None:
    suite = started_server
    pids = {name: record[0] for name, record in suite.records().items()}
    result = suite.run("status")
    assert result.returncode == 0, result.stderr
    expected = [f"{name} [{pids[name]:>6}]: online" for name in SERVER[:8]]
    expected += ["ctrl : unused", f"sshd [{pids['sshd']:>6}]: online"]
    expected += [f"sepuler [{pids['sepuler']:>6}]: online", "STATUS=SUCCESS MSG=All daemons online"]
    assert result.stdout.splitlines() == expected

    stopped = suite.run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert suite.records() == {}
    assert suite.processes() == {}
    for pid in pids.values():  # gone (a zombie awaiting a reaper that is not ours counts as gone)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    again = suite.run("stop")
    assert again.returncode == 0
    assert "already stopped" in again.stdout

    offline = suite.run("status")
    assert offline.returncode == 1
    lines = offline.stdout.splitlines()
    assert "stpd : offline" in lines and "qm : offline" in lines and "ctrl : unused" in lines
    assert lines[-1].startswith("STATUS=FAILURE MSG=qm offline; db offline; ")
    assert "stpd offline" in lines[-1]


@pytest.mark.parametrize(
    ("role", "ctrl", "expected"),
    [
        ("rds", False, ["qm", "passd", "sms", "data_server-1", "data_server-2", "stpd", "sshd"]),
        ("client", False, ["qm", "sshd"]),
        ("client", True, ["qm", "ctrl", "sshd"]),
    ],
)
def test_role_sets(
    refsuite_factory: Callable[..., RefSuite], role: str, ctrl: bool, expected: list[str]
) -> None:
    suite = refsuite_factory(role)
    if ctrl:
        suite.sections["ctrl"]["enabled"] = "true"
        suite.write()
    suite.start()
    records = suite.records()
    assert sorted(records) == sorted(expected)
    names = {psutil.Process(pid).cmdline()[0] for pid, *_unused in records.values()}
    assert names == {f"refsuite-{name.split('-')[0]}" for name in expected}
    status = suite.run("status")
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    shown = [line.split(" ")[0] for line in lines[:-1]]
    role_daemons = {
        "rds": ["qm", "passd", "sms", "data_server-1", "data_server-2", "stpd", "ctrl", "sshd"],
        "client": ["qm", "ctrl", "sshd"],
    }[role]
    assert shown == role_daemons
    assert ("ctrl : unused" in lines) is (not ctrl)
    if ctrl:
        with socket.create_connection(("127.0.0.1", suite.ctrl_port), timeout=5) as sock:
            sock.sendall(b"PING\n")
            assert sock.makefile("rb").readline() == b"PONG\n"
    assert suite.run("stop").returncode == 0
    wait_until(lambda: not suite.processes(), 10, "all processes gone")
