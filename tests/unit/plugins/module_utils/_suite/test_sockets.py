# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import collections
import os
import socket
import subprocess
from collections import namedtuple

import psutil
import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import sockets
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
    SocketTable,
    format_endpoint,
)

Addr = namedtuple("Addr", "ip port")
Conn = namedtuple("Conn", "fd family type laddr raddr status pid")
V4, V6 = socket.AF_INET, socket.AF_INET6


def conn(laddr, raddr, status, pid, family=V4):
    return Conn(
        3, family, socket.SOCK_STREAM, Addr(*laddr), Addr(*raddr) if raddr else (), status, pid
    )


ENTRIES = [
    conn(("0.0.0.0", 11401), None, "LISTEN", 100),
    conn(("0.0.0.0", 11401), None, "LISTEN", 100),  # seen through a second fd: once
    conn(("::1", 11401), None, "LISTEN", 101, V6),
    conn(("127.0.0.1", 11401), ("127.0.0.1", 53422), "ESTABLISHED", 100),
    # the client side of the same loopback connection: not a client of 11401
    conn(("127.0.0.1", 53422), ("127.0.0.1", 11401), "ESTABLISHED", 555),
    conn(("::1", 11401), ("::1", 40000), "ESTABLISHED", 101, V6),
    conn(("127.0.0.1", 11401), ("127.0.0.1", 53423), "TIME_WAIT", None),
    conn(("127.0.0.1", 11401), ("127.0.0.1", 53424), "CLOSE_WAIT", 100),
    # an outgoing connection from a port nobody listens on
    conn(("10.0.0.5", 40001), ("10.0.0.9", 596), "ESTABLISHED", 100),
    conn(("0.0.0.0", 596), None, "LISTEN", None),
]


def test_listeners_by_port_with_family_and_pid():
    table = SocketTable.from_entries(ENTRIES)
    listeners = table.listeners(11401)
    assert [(lst.address, lst.family, lst.pid) for lst in listeners] == [
        ("0.0.0.0", "ipv4", 100),
        ("::1", "ipv6", 101),
    ]
    assert [(lst.address, lst.pid) for lst in table.listeners(596)] == [("0.0.0.0", None)]
    assert table.listeners(11000) == []
    assert table.available and table.error is None


def test_only_server_side_established_connections_count():
    table = SocketTable.from_entries(ENTRIES)
    established = table.established(11401)
    assert [(c.peer, c.pid, c.family) for c in established] == [
        ("127.0.0.1:53422", 100, "ipv4"),
        ("[::1]:40000", 101, "ipv6"),
    ]
    assert table.peers(11401) == ["127.0.0.1:53422", "[::1]:40000"]
    assert table.established(40001) == []  # not listened on
    assert table.established(596) == []
    assert table.established(53422) == []


def test_format_endpoint():
    assert format_endpoint("127.0.0.1", 5) == "127.0.0.1:5"
    assert format_endpoint("fe80::1", 5) == "[fe80::1]:5"


def test_access_denied_degrades_to_unavailable(monkeypatch):
    def denied(kind="inet"):
        raise psutil.AccessDenied(pid=None)

    monkeypatch.setattr(sockets.load_psutil(), "net_connections", denied)
    table = SocketTable.scan(use_procfs=False)  # psutil's path (the /proc reader cannot deny)
    assert not table.available
    assert "cannot read the socket table" in table.error and "become" in table.error
    assert table.listeners(22) == []


def test_scan_sees_a_real_listener_and_its_client():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _unused = server.accept()
    try:
        table = SocketTable.scan()
        import os

        assert [(lst.address, lst.pid) for lst in table.listeners(port)] == [
            ("127.0.0.1", os.getpid())
        ]
        assert table.peers(port) == [f"127.0.0.1:{client.getsockname()[1]}"]
    finally:
        accepted.close()
        client.close()
        server.close()


@pytest.mark.parametrize("status", ["SYN_RECV", "FIN_WAIT1", "LAST_ACK", "CLOSING", "NONE"])
def test_other_states_are_not_clients(status):
    table = SocketTable.from_entries(
        [conn(("0.0.0.0", 80), None, "LISTEN", 1), conn(("1.2.3.4", 80), ("5.6.7.8", 9), status, 1)]
    )
    assert table.established(80) == []


# ----------------------------------------------------------------------------- own probes


def test_registered_probe_connections_are_not_clients(tmp_path, monkeypatch):
    from ansible_collections.daemonops.suite.plugins.module_utils._suite import sockets as sk

    registry = tmp_path / "probes"
    monkeypatch.setenv(sk.PROBE_DIR_ENV, str(registry))
    entry = sk.register_probe(50001, 596)
    assert entry == str(registry / "50001-596")
    assert sk.registered_probes() == {(50001, 596)}
    Addr = collections.namedtuple("Addr", "ip port")
    Conn = collections.namedtuple("Conn", "fd family type laddr raddr status pid")
    entries = [
        Conn(3, 2, 1, Addr("0.0.0.0", 596), (), "LISTEN", 10),
        Conn(4, 2, 1, Addr("127.0.0.1", 596), Addr("127.0.0.1", 50001), "ESTABLISHED", 10),
        Conn(5, 2, 1, Addr("127.0.0.1", 596), Addr("127.0.0.1", 50002), "ESTABLISHED", 10),
    ]
    table = sk.SocketTable.from_entries(entries, probes=sk.registered_probes())
    assert table.peers(596) == ["127.0.0.1:50002"] and table.probe_connections == 1
    sk.unregister_probe(entry)
    assert sk.registered_probes() == set()


def test_probe_entries_of_dead_processes_or_in_an_open_directory_are_ignored(tmp_path, monkeypatch):
    from ansible_collections.daemonops.suite.plugins.module_utils._suite import sockets as sk

    registry = tmp_path / "probes"
    registry.mkdir(mode=0o755)
    monkeypatch.setenv(sk.PROBE_DIR_ENV, str(registry))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (registry / "50003-596").write_text(str(dead.pid))
    assert sk.registered_probes() == set()
    (registry / "50004-596").write_text(str(os.getpid()))
    assert sk.registered_probes() == {(50004, 596)}
    registry.chmod(0o777)  # anybody could hide a client there: not honoured
    assert sk.registered_probes() == set()
