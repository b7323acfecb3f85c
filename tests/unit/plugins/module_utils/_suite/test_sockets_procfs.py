# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The direct /proc/net/tcp reader of sockets: address decoding, line selection, owners, and a
scan of a fake procfs in tmp_path."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import sockets
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
    SocketTable,
    decode_address,
    owners_of_selected,
    select_server_sockets,
    socket_owners,
)

V4, V6 = socket.AF_INET, socket.AF_INET6
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def hex4(ip: str, port: int) -> str:
    """What the kernel prints for an IPv4 endpoint (little-endian host)."""
    return f"{struct.unpack('<I', socket.inet_aton(ip))[0]:08X}:{port:04X}"


def hex6(ip: str, port: int) -> str:
    # the kernel prints each 32-bit word of the address as a number in host order
    words = struct.unpack("<4I", socket.inet_pton(V6, ip))
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"


def line(n: int, local: str, remote: str, state: str, inode: int) -> str:
    return (
        f"{n:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000"
        f"     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


@pytest.mark.parametrize(
    ("text", "family", "expected"),
    [
        ("0100007F:1F90", V4, ("127.0.0.1", 8080)),
        ("0500000A:0016", V4, ("10.0.0.5", 22)),
        ("00000000:2C8A", V4, ("0.0.0.0", 11402)),
        ("00000000:0000", V4, ()),  # remote end of a listener
        ("00000000000000000000000001000000:2C89", V6, ("::1", 11401)),
        ("00000000000000000000000000000000:0050", V6, ("::", 80)),
        ("0000000000000000FFFF00000100007F:9E49", V6, ("::ffff:127.0.0.1", 40521)),
        ("000080FE00000000FF005450B6AD1DFE:0016", V6, ("fe80::5054:ff:fe1d:adb6", 22)),
    ],
)
def test_decode_address_like_psutil(text, family, expected):
    if struct.pack("=I", 1) != struct.pack("<I", 1):  # pragma: no cover - big-endian host
        pytest.skip("the sample lines are those of a little-endian kernel")
    assert decode_address(text, family) == expected


@pytest.mark.parametrize("ip", ["127.0.0.1", "192.168.10.254", "0.0.0.0"])
def test_decode_address_round_trip_v4(ip):
    assert decode_address(hex4(ip, 53422), V4) == (ip, 53422)


@pytest.mark.parametrize("ip", ["::1", "2001:db8::ff00:42:8329", "::ffff:10.1.2.3", "fe80::1"])
def test_decode_address_round_trip_v6(ip):
    assert decode_address(hex6(ip, 11401), V6) == (ip, 11401)


def test_select_keeps_listeners_and_their_server_side_connections():
    tcp = [
        line(0, hex4("0.0.0.0", 11401), hex4("0.0.0.0", 0), "0A", 100),
        line(1, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 53422), "01", 101),
        line(2, hex4("127.0.0.1", 53422), hex4("127.0.0.1", 11401), "01", 102),  # client end
        line(3, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 53423), "06", 0),  # TIME_WAIT
        line(4, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 53424), "08", 103),  # CLOSE_WAIT
        "garbage\n",
    ]
    tcp6 = [
        # an IPv4 client of an IPv6 listener's port on another socket family
        line(0, hex6("::ffff:127.0.0.1", 11401), hex6("::ffff:127.0.0.1", 40000), "01", 104),
        line(1, hex6("::1", 2222), hex6("::1", 11401), "01", 105),  # client end, v6
    ]
    selected = select_server_sockets([(V4, tcp), (V6, tcp6)])
    assert [(family, state, inode) for family, _l, _r, state, inode in selected] == [
        (V4, "0A", "100"),
        (V4, "01", "101"),
        (V6, "01", "104"),
    ]


def test_socket_owners_picks_the_highest_pid_and_skips_unreadable(tmp_path):
    proc = tmp_path / "proc"
    for pid, links in {
        7: ["socket:[100]", "/dev/null", "socket:[101]"],
        9: ["socket:[100]"],  # inherited listener: psutil reports the last pid it meets
        12: ["pipe:[55]", "socket:[999]"],
    }.items():
        fd_dir = proc / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        for fd, target in enumerate(links):
            (fd_dir / str(fd)).symlink_to(target)
    (proc / "15").mkdir()  # no readable fd directory
    (proc / "self").mkdir()
    assert socket_owners(["100", "101", "0", "555"], str(proc)) == {"100": 9, "101": 7}
    assert socket_owners(["0"], str(proc)) == {}


def full_scan(proc: Path, monkeypatch: pytest.MonkeyPatch) -> SocketTable:
    """``SocketTable.scan`` of the fake procfs ``proc``, every port, no owners searched first."""
    monkeypatch.setattr(sockets, "PROC", str(proc))
    return SocketTable.scan(use_procfs=True)


def write_net(proc: Path, tcp: list[str], tcp6: list[str] | None) -> None:
    (proc / "net").mkdir(parents=True, exist_ok=True)
    (proc / "net" / "tcp").write_text(HEADER + "".join(tcp))
    if tcp6 is not None:
        (proc / "net" / "tcp6").write_text(HEADER + "".join(tcp6))


def test_scan_of_proc_builds_the_table(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    (proc / "300" / "fd").mkdir(parents=True)
    (proc / "300" / "fd" / "3").symlink_to("socket:[100]")
    (proc / "300" / "fd" / "4").symlink_to("socket:[101]")
    (proc / "301" / "fd").mkdir(parents=True)
    (proc / "301" / "fd" / "3").symlink_to("socket:[200]")
    write_net(
        proc,
        [
            line(0, hex4("127.0.0.1", 11401), hex4("0.0.0.0", 0), "0A", 100),
            line(1, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 53422), "01", 101),
            line(2, hex4("127.0.0.1", 53422), hex4("127.0.0.1", 11401), "01", 102),
        ],
        [
            line(0, hex6("::1", 11401), hex6("::", 0), "0A", 200),
            line(1, hex6("::1", 11401), hex6("::1", 40000), "01", 201),  # owner unseen
        ],
    )
    table = full_scan(proc, monkeypatch)
    assert [(lst.address, lst.family, lst.pid) for lst in table.listeners(11401)] == [
        ("127.0.0.1", "ipv4", 300),
        ("::1", "ipv6", 301),
    ]
    assert [(c.address, c.peer, c.family, c.pid) for c in table.established(11401)] == [
        ("127.0.0.1", "127.0.0.1:53422", "ipv4", 300),
        ("::1", "[::1]:40000", "ipv6", None),
    ]
    assert table.established(53422) == [] and list(table.listening) == [11401]


def test_scan_without_tcp6_has_ipv4_only(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    write_net(proc, [line(0, hex4("0.0.0.0", 80), hex4("0.0.0.0", 0), "0A", 5)], None)
    table = full_scan(proc, monkeypatch)
    assert [(lst.address, lst.port, lst.family, lst.pid) for lst in table.listeners(80)] == [
        ("0.0.0.0", 80, "ipv4", None)
    ]
    assert list(table.listening) == [80] and table.connections == {}


def test_scan_falls_back_to_psutil_when_proc_net_tcp_is_unreadable(tmp_path, monkeypatch):
    calls = []
    real = sockets.load_psutil().net_connections

    def spy(kind="inet"):
        calls.append(kind)
        return real(kind)

    monkeypatch.setattr(sockets.load_psutil(), "net_connections", spy)
    monkeypatch.setattr(sockets, "PROC", str(tmp_path / "no-proc"))
    table = SocketTable.scan()
    assert calls == ["tcp"] and table.available
    with pytest.raises(OSError):
        SocketTable.scan(use_procfs=True)


def test_scan_reads_proc_by_default(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    write_net(proc, [line(0, hex4("0.0.0.0", 8443), hex4("0.0.0.0", 0), "0A", 5)], [])
    monkeypatch.setattr(sockets, "PROC", str(proc))
    table = SocketTable.scan()
    assert [(lst.address, lst.pid) for lst in table.listeners(8443)] == [("0.0.0.0", None)]
    assert list(table.listening) == [8443]


def test_select_keeps_only_the_ports_asked_for():
    tcp = [
        line(0, hex4("0.0.0.0", 11401), hex4("0.0.0.0", 0), "0A", 100),
        line(1, hex4("0.0.0.0", 22), hex4("0.0.0.0", 0), "0A", 101),
        line(2, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 53422), "01", 102),
        line(3, hex4("10.0.0.1", 22), hex4("10.0.0.9", 50000), "01", 103),
        line(4, hex4("127.0.0.1", 8080), hex4("127.0.0.1", 50001), "01", 104),  # not listened
    ]
    selected = select_server_sockets([(V4, tcp)], ports={11401, 8080})
    assert [(state, inode) for _f, _l, _r, state, inode in selected] == [
        ("0A", "100"),
        ("01", "102"),
    ]
    assert select_server_sockets([(V4, tcp)], ports=set()) == []
    # the whole text of a table (header included) reads like its lines
    text = HEADER + "".join(tcp)
    assert select_server_sockets([(V4, text)]) == select_server_sockets([(V4, tcp)])


def test_socket_owners_look_among_the_given_pids_first(tmp_path):
    proc = tmp_path / "proc"
    for pid, links in {
        7: ["socket:[100]", "socket:[101]"],  # the daemon
        9: ["socket:[100]"],  # another process holding the same listener (a higher pid)
        12: ["socket:[102]"],  # a socket only another process holds
    }.items():
        fd_dir = proc / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        for fd, target in enumerate(links):
            (fd_dir / str(fd)).symlink_to(target)
    assert socket_owners(["100", "101"], str(proc), first=[7]) == {"100": 7, "101": 7}
    assert socket_owners(["100", "102"], str(proc), first=[7]) == {"100": 7, "102": 12}
    assert socket_owners(["100", "102"], str(proc)) == {"100": 9, "102": 12}


def test_narrowed_scan_decodes_peers_only_when_asked(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    (proc / "300" / "fd").mkdir(parents=True)
    for fd, inode in enumerate([100, 101, 102, 103]):
        (proc / "300" / "fd" / str(fd)).symlink_to(f"socket:[{inode}]")
    write_net(
        proc,
        [
            line(0, hex4("0.0.0.0", 11401), hex4("0.0.0.0", 0), "0A", 100),
            line(1, hex4("0.0.0.0", 2222), hex4("0.0.0.0", 0), "0A", 101),
            line(2, hex4("127.0.0.1", 11401), hex4("10.1.2.3", 53422), "01", 102),
            line(3, hex4("127.0.0.1", 2222), hex4("127.0.0.1", 53423), "01", 103),
        ],
        [],
    )
    monkeypatch.setattr(sockets, "PROC", str(proc))
    narrowed = SocketTable.scan(ports=[11401], owner_pids=[300])
    full = full_scan(proc, monkeypatch)
    assert list(narrowed.listening) == [11401] and list(narrowed.connections) == [11401]
    assert narrowed.listeners(11401) == full.listeners(11401)
    (conn,) = narrowed.established(11401)
    assert conn._peer is None  # not decoded yet
    assert conn.peer_key == (V4, hex4("10.1.2.3", 53422))
    assert narrowed.established(11401) == full.established(11401)  # decodes, then compares
    assert (conn.address, conn.peer, conn.family, conn.pid) == (
        "127.0.0.1",
        "10.1.2.3:53422",
        "ipv4",
        300,
    )


def test_select_reads_wide_columns_and_skips_other_states():
    """Line numbers past 9999, a wide uid and inode, IPv6 addresses, and the states that are
    neither LISTEN nor ESTABLISHED (TIME_WAIT 06) on a wanted port."""
    wide = (
        f"10000: {hex4('0.0.0.0', 11401)} {hex4('0.0.0.0', 0)} 0A 00000000:00000000"
        " 00:00000000 00000000 1000000        0 123456789012 1 0000000000000000 100 0 0 10 0\n"
    )
    tcp = [
        wide,
        line(10001, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 50000), "06", 7),
        line(10002, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 50001), "01", 8),
    ]
    tcp6 = [line(0, hex6("::1", 11401), hex6("::1", 50002), "01", 9)]
    selected = select_server_sockets([(V4, HEADER + "".join(tcp)), (V6, HEADER + "".join(tcp6))])
    assert [(family, state, inode) for family, _l, _r, state, inode in selected] == [
        (V4, "0A", "123456789012"),
        (V4, "01", "8"),
        (V6, "01", "9"),
    ]


def fake_fds(proc: Path, holders: dict[int, list[str]]) -> None:
    for pid, links in holders.items():
        fd_dir = proc / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        for fd, target in enumerate(links):
            (fd_dir / str(fd)).symlink_to(target)


def test_owners_of_connections_on_a_port_held_by_its_daemon_are_not_looked_up(tmp_path):
    proc = tmp_path / "proc"
    fake_fds(
        proc,
        {
            300: ["socket:[100]", "socket:[103]", "socket:[104]"],  # the daemon
            400: ["socket:[101]"],  # an accepted socket of port 11401 passed to another process
            500: ["socket:[102]"],  # the listener of port 2222, not the daemon's
        },
    )
    selected = [
        (V4, hex4("0.0.0.0", 11401), hex4("0.0.0.0", 0), "0A", "100"),
        (V4, hex4("0.0.0.0", 2222), hex4("0.0.0.0", 0), "0A", "102"),
        (V4, hex4("127.0.0.1", 11401), hex4("127.0.0.1", 50000), "01", "101"),
        (V4, hex4("127.0.0.1", 2222), hex4("127.0.0.1", 50001), "01", "103"),
        (V4, hex4("127.0.0.1", 3333), hex4("127.0.0.1", 50002), "01", "104"),  # no listener
    ]
    everything = {"100": 300, "101": 400, "102": 500, "103": 300, "104": 300}
    assert owners_of_selected(selected, str(proc), [300]) == everything
    accepting = {11401: [300], 2222: [300], 3333: [300]}
    owners = owners_of_selected(selected, str(proc), [300], accepting)
    # 11401: every listener is the daemon's, its connection is not looked up; 2222's listener
    # is another process's and 3333 has none: looked up as before
    assert owners == {key: pid for key, pid in everything.items() if key != "101"}
    # a listener nobody can be seen holding: its connections are looked up
    assert owners_of_selected(selected, str(proc), [300], {11401: [999]}) == everything
    # nor a port with a second listener of no inode (no process can be found for it)
    orphan = (V6, hex6("::", 11401), hex6("::", 0), "0A", "0")
    assert owners_of_selected([orphan, *selected], str(proc), [300], accepting) == everything
