# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The direct /proc readers of ProcessTable.scan and SocketTable.scan give what psutil gives, on
the live system: real processes (one that rewrote its argv, a long name, a name with parentheses,
a zombie, a deleted executable) and real listeners and connections (IPv4 and IPv6 ::1, a listener
inherited by a child)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
    ProcInfo,
    procfs_available,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import SocketTable

pytestmark = pytest.mark.skipif(
    not procfs_available(), reason="the direct reader is for Linux /proc"
)

# A child that writes a new title over its argv memory (as refsuite's and many daemons do),
# optionally renames its comm, then waits.
RETITLE = textwrap.dedent(
    """
    import sys, time
    title, fill, comm = sys.argv[1], sys.argv[2], sys.argv[3]
    with open("/proc/self/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
    data = title.encode()[: end - start]
    pad = b"\\0" if fill == "nul" else b" "
    data += pad * (end - start - len(data))
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(start)
        mem.write(data)
    if comm:
        with open("/proc/self/comm", "w") as handle:
            handle.write(comm)
    print("ready", flush=True)
    time.sleep(120)
    """
)


def wait_ready(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", "helper process did not start"


def wait_state(pid: int, letter: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            if handle.read().rsplit(b")", 1)[1].split()[0] == letter.encode():
                return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never reached state {letter}")


@pytest.fixture
def helpers(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Real processes with the awkward shapes; killed (process groups) afterwards."""
    started: list[subprocess.Popen] = []

    def start(argv: list[str], **kw) -> subprocess.Popen:
        proc = subprocess.Popen(argv, start_new_session=True, **kw)
        started.append(proc)
        return proc

    pids: dict[str, int] = {}
    try:
        for key, title, fill, comm in [
            ("nul_padded", "fastscan-qm --config /tmp/fs.ini", "nul", ""),
            ("space_filled", "fastscan-stpd --config /tmp/fs.ini worker", "space", ""),
            (
                "long_name",
                "/opt/fastscan/bin/fastscan-long-daemon-name -d",
                "space",
                "fastscan-long-d",
            ),
            ("odd_comm", "fastscan-odd", "nul", "fs (x) y) z"),
        ]:
            proc = start(
                [sys.executable, "-c", RETITLE, title, fill, comm],
                stdout=subprocess.PIPE,
                text=True,
            )
            wait_ready(proc)
            pids[key] = proc.pid
        copy = tmp_path / "fastscan-sleep"
        shutil.copy2(shutil.which("sleep") or "/bin/sleep", copy)
        deleted = start([str(copy), "120"])
        wait_state(deleted.pid, "S")
        copy.unlink()
        pids["deleted_exe"] = deleted.pid
        zombie = start(["true"])
        wait_state(zombie.pid, "Z")
        pids["zombie"] = zombie.pid
        yield pids
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def fields(proc: ProcInfo) -> tuple:
    return (proc.ppid, proc.name, proc.cmdline, proc.exe, proc.username)


def test_direct_process_scan_equals_psutil(helpers):
    first = {proc.pid: proc for proc in ProcessTable.scan(use_procfs=True)}
    psutil.process_iter.cache_clear()  # no cached exe/create_time from earlier scans
    reference = {proc.pid: proc for proc in ProcessTable.scan(use_procfs=False)}
    second = {proc.pid: proc for proc in ProcessTable.scan(use_procfs=True)}

    common = first.keys() & reference.keys() & second.keys()
    # a process that changed (exited and its pid reused, renamed itself) between the scans
    # cannot be compared; everything else must be identical
    stable = {
        pid
        for pid in common
        if fields(first[pid]) == fields(second[pid])
        and first[pid].create_time == second[pid].create_time
    }
    assert set(helpers.values()) <= stable
    assert os.getpid() in stable and os.getppid() in stable
    assert len(stable) >= 0.9 * len(common), (len(stable), len(common))
    for pid in sorted(stable):
        ours, theirs = first[pid], reference[pid]
        assert fields(ours) == fields(theirs), (ours, theirs)
        if theirs.create_time is None:
            assert ours.create_time is None, ours
        else:
            assert ours.create_time == pytest.approx(theirs.create_time, abs=0.01), (ours, theirs)
        if pid in helpers.values():  # states that cannot change (sleep, zombie): compared;
            assert ours.status == theirs.status, (ours, theirs)  # others flip running/sleeping
        assert ours.status in psutil.__dict__.values() or ours.status == "?", ours

    got = {key: first[pid] for key, pid in helpers.items()}
    assert got["nul_padded"].cmdline == ("fastscan-qm --config /tmp/fs.ini",) + ("",) * (
        len(got["nul_padded"].cmdline) - 1
    )
    assert got["space_filled"].cmdline[:4] == ("fastscan-stpd", "--config", "/tmp/fs.ini", "worker")
    assert got["space_filled"].cmdline_str.startswith("fastscan-stpd --config /tmp/fs.ini worker")
    assert got["long_name"].name == "fastscan-long-daemon-name"
    assert got["odd_comm"].name == "fs (x) y) z"
    assert got["deleted_exe"].exe is not None and got["deleted_exe"].exe.endswith("fastscan-sleep")
    assert got["zombie"].is_zombie and got["zombie"].cmdline == () and got["zombie"].exe is None
    me = first[os.getpid()]
    assert me.create_time == pytest.approx(psutil.Process().create_time(), abs=0.01)
    assert me.ppid == os.getppid() and me.exe == os.path.realpath(sys.executable)


def test_process_scan_defaults_to_the_direct_reader(helpers):
    table = ProcessTable.scan()
    assert table.get(helpers["long_name"]).name == "fastscan-long-daemon-name"
    assert os.getpid() in table.excluded


def test_named_scan_reads_the_same_processes_on_demand(helpers):
    full = ProcessTable.scan()
    named = ProcessTable.scan_named()
    for pid in helpers.values():
        ours, theirs = named.get(pid), full.get(pid)
        assert fields(ours) == fields(theirs) and ours.create_time == theirs.create_time
    assert named.excluded == full.excluded and os.getpid() in named.excluded
    assert named.ancestors(helpers["long_name"]) == full.ancestors(helpers["long_name"])


def free_listener(family: int, address: str) -> socket.socket:
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((address, 0))
    server.listen(16)
    return server


# a client in another process: connects to each given (host, port) and waits
CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    held = []
    for spec in sys.argv[1:]:
        host, port = spec.rsplit(",", 1)
        held.append(socket.create_connection((host, int(port))))
    print(" ".join(str(s.getsockname()[1]) for s in held), flush=True)
    time.sleep(120)
    """
)

# holds an inherited listening socket (fd passed by the parent) and waits
HOLDER = "import sys, time; print('ready', flush=True); time.sleep(120)"


def table_for(table: SocketTable, ports: list[int]) -> dict:
    return {
        port: (
            sorted(table.listeners(port), key=repr),
            sorted(table.established(port), key=repr),
        )
        for port in ports
    }


def test_direct_socket_scan_equals_psutil():
    if not socket.has_ipv6:  # pragma: no cover
        pytest.fail("the test host has no IPv6: the ::1 half of this test cannot run")
    srv4 = free_listener(socket.AF_INET, "127.0.0.1")
    srv6 = free_listener(socket.AF_INET6, "::1")
    port4, port6 = srv4.getsockname()[1], srv6.getsockname()[1]
    children: list[subprocess.Popen] = []
    accepted: list[socket.socket] = []
    try:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            pass_fds=[srv4.fileno()],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        children.append(holder)
        wait_ready(holder)
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, f"127.0.0.1,{port4}", f"::1,{port6}", f"::1,{port6}"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        children.append(client)
        assert client.stdout is not None
        client_ports = [int(word) for word in client.stdout.readline().split()]
        accepted = [srv4.accept()[0], srv6.accept()[0], srv6.accept()[0]]
        local = socket.create_connection(("127.0.0.1", port4))  # a client end in this process
        accepted.append(srv4.accept()[0])
        accepted.append(local)

        ours = SocketTable.scan()
        reference = SocketTable.scan(use_procfs=False)
        ports = [port4, port6, *client_ports, local.getsockname()[1]]
        assert table_for(ours, ports) == table_for(reference, ports)
        # narrowed to some ports, owners looked for among given processes first: the same
        # answers for those ports, nothing for the others
        narrowed = SocketTable.scan(ports=[port4, port6], owner_pids=[holder.pid, os.getpid()])
        assert table_for(narrowed, ports) == table_for(ours, [port4, port6]) | {
            port: ([], []) for port in ports[2:]
        }
        assert set(narrowed.listening) == {port4, port6}
        # a socket two processes hold goes to the one searched first
        mine = SocketTable.scan(ports=[port4], owner_pids=[os.getpid()])
        assert [lst.pid for lst in mine.listeners(port4)] == [os.getpid()]

        # and the facts themselves: the inherited listener is reported for the higher pid (the
        # child, like psutil), the server ends of the connections belong to this process
        assert [(lst.address, lst.family, lst.pid) for lst in ours.listeners(port4)] == [
            ("127.0.0.1", "ipv4", max(holder.pid, os.getpid()))
        ]
        assert [(lst.address, lst.family, lst.pid) for lst in ours.listeners(port6)] == [
            ("::1", "ipv6", os.getpid())
        ]
        assert ours.peers(port4) == sorted(
            [f"127.0.0.1:{client_ports[0]}", f"127.0.0.1:{local.getsockname()[1]}"]
        )
        assert ours.peers(port6) == sorted(f"[::1]:{port}" for port in client_ports[1:])
        assert {conn.pid for conn in ours.established(port6)} == {os.getpid()}
        for client_port in [*client_ports, local.getsockname()[1]]:
            assert ours.established(client_port) == []  # client ends are not clients
    finally:
        for sock in [*accepted, srv4, srv6]:
            sock.close()
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()


def test_connections_of_a_port_held_by_its_daemon_are_not_looked_up():
    """``accepting_pids``: a port whose every listener is held by the expected processes has
    its connections taken as theirs (pid None, not looked up), the same peers as a full scan;
    an accepted socket passed on to another process (the one case where that differs) is then
    counted too. A port with a listener held by another process is looked up as before."""
    srv = free_listener(socket.AF_INET, "127.0.0.1")
    other = free_listener(socket.AF_INET, "127.0.0.1")
    port, other_port = srv.getsockname()[1], other.getsockname()[1]
    children: list[subprocess.Popen] = []
    accepted: list[socket.socket] = []
    try:
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, *[f"127.0.0.1,{p}" for p in (port, port, other_port)]],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        children.append(client)
        assert client.stdout is not None
        client_ports = [int(word) for word in client.stdout.readline().split()]
        accepted = [srv.accept()[0], srv.accept()[0], other.accept()[0]]
        # the second accepted socket is passed to another process and closed here
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            pass_fds=[accepted[1].fileno()],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        children.append(holder)
        wait_ready(holder)
        kept_peer, passed_peer = (f"127.0.0.1:{s.getpeername()[1]}" for s in accepted[:2])
        accepted.pop(1).close()

        mine = [os.getpid()]
        full = SocketTable.scan(ports=[port, other_port], owner_pids=mine)
        fast = SocketTable.scan(
            ports=[port, other_port],
            owner_pids=mine,
            accepting_pids={port: mine, other_port: [holder.pid]},
        )
        peers = sorted(f"127.0.0.1:{p}" for p in client_ports[:2])
        assert full.peers(port) == fast.peers(port) == peers
        assert sorted((c.peer, c.pid) for c in full.established(port)) == sorted(
            [(kept_peer, os.getpid()), (passed_peer, holder.pid)]
        )
        assert {c.pid for c in fast.established(port)} == {None}  # not looked up
        assert fast.listeners(port) == full.listeners(port)
        # other_port's listener is held by this process, not by the one expected: looked up
        assert fast.established(other_port) == full.established(other_port)
        assert [c.pid for c in fast.established(other_port)] == [os.getpid()]
    finally:
        for sock in [*accepted, srv, other]:
            sock.close()
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
