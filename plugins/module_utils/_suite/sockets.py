# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass over the TCP sockets: who listens on which port, and which clients are connected.

``SocketTable.scan()`` reads the TCP socket tables once (IPv4 and IPv6). A listener is a socket
in state LISTEN; a client is an ESTABLISHED connection whose *local* port is a listened port (the
server side of the connection), with its peer address. The client side of a loopback connection,
TIME_WAIT, CLOSE_WAIT and the other closing states are not clients.

On Linux it reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` directly: listeners first, then only
the ESTABLISHED lines whose local port is listened on (one regular expression over the whole
text picks the lines by state and hex port, before any address is decoded); the owners of just
those sockets are found through ``/proc/PID/fd``. The result is what
``psutil.net_connections(kind="tcp")`` gives, which is used where ``/proc/net/tcp`` cannot be read.

A caller that only needs some ports (a health check: the profile's ports) passes ``ports``: the
lines of other ports are skipped by the same expression, and ``owner_pids`` (the processes
expected to hold those sockets, the matched daemons) are searched first for the socket owners, so
the fds of every other process are only read when a socket is held by none of them; with
``accepting_pids`` the connections of a port whose listeners those processes hold are not looked
up at all (``owners_of_selected``). Peer
addresses are decoded only when asked for (``Connection.peer``); ``Connection.peer_key`` tells
peers apart without decoding.

Our own probes are not clients. ``probes.py`` registers each probe connection here before it
connects (``register_probe``: a file named ``<probe's local port>-<server port>`` holding the
probe's pid, in ``probe_registry_dir()``) and removes the entry once the connection is closed;
``SocketTable.scan()`` leaves the registered connections out of ``connections`` (and counts them
in ``probe_connections``). So a health check, an audit, ``service``'s drain wait or
``cluster_data`` running next to another check never counts that check's probe as a client.
Only entries of a live process, owned by root or by the user reading them, in a directory only
their owner can write, are honoured (nobody else can hide a real client this way).
"""

from __future__ import annotations

import base64
import os
import re
import socket
import stat
import struct
import sys
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import load_psutil

LISTEN = "LISTEN"
ESTABLISHED = "ESTABLISHED"

PROC = "/proc"
# /proc/net/tcp "st" column (include/net/tcp_states.h)
HEX_LISTEN = "0A"
HEX_ESTABLISHED = "01"
_LITTLE_ENDIAN = sys.byteorder == "little"
_READ_SIZE = 1 << 18

PROBE_DIR_ENV = "DAEMONOPS_SUITE_PROBE_DIR"
_ROOT_PROBE_DIR = "/run/daemonops-suite-probes"


def probe_registry_dir(uid: int | None = None) -> str:
    """Where the probes of user ``uid`` (default: this process's) register their connections:
    ``/run/daemonops-suite-probes`` for root, ``$TMPDIR/daemonops-suite-probes-<uid>`` for other
    users; ``DAEMONOPS_SUITE_PROBE_DIR`` overrides both (tests)."""
    override = os.environ.get(PROBE_DIR_ENV)
    if override:
        return override
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return _ROOT_PROBE_DIR
    return os.path.join(tempfile.gettempdir(), f"daemonops-suite-probes-{uid}")


def _trusted_dir(path: str, uids: set[int]) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid in uids
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def register_probe(local_port: int, server_port: int) -> str | None:
    """Record that this process's connection from ``local_port`` to ``server_port`` is a probe;
    returns the entry's path for ``unregister_probe`` (None when it cannot be recorded: the
    probe then runs anyway and may be counted as a client by a check running at that moment)."""
    directory = probe_registry_dir()
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if not _trusted_dir(directory, {os.geteuid()}):
            return None
        path = os.path.join(directory, f"{int(local_port)}-{int(server_port)}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, str(os.getpid()).encode("ascii"))
        finally:
            os.close(fd)
    except OSError:
        return None
    return path


def unregister_probe(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def registered_probes() -> set[tuple[int, int]]:
    """``(probe's local port, server port)`` of the probe connections open right now (entries of
    live processes, owned by root or by this user, see the module's docstring)."""
    uids = {0, os.geteuid()}
    found: set[tuple[int, int]] = set()
    for directory in {probe_registry_dir(uid) for uid in uids}:
        if not _trusted_dir(directory, uids):
            continue
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            local, _sep, server = name.partition("-")
            if not (local.isdigit() and server.isdigit()):
                continue
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_uid not in uids:
                    continue
                with open(path, encoding="ascii") as handle:
                    pid = int(handle.read(32).strip() or "0")
            except (OSError, ValueError):
                continue
            if pid > 0 and _alive(pid):
                found.add((int(local), int(server)))
    return found


def decode_address(addr: str, family: int) -> tuple[str, int] | tuple[()]:
    """``"0100007F:1F90"`` -> ``("127.0.0.1", 8080)``, as psutil decodes /proc/net/tcp*.

    IPv4 is one 32-bit word in host byte order; IPv6 four such words. Port 0 (the remote end of
    a listener) gives an empty tuple, like psutil."""
    ip_hex, port_hex = addr.split(":")
    port = int(port_hex, 16)
    if not port:
        return ()
    raw = base64.b16decode(ip_hex.encode("ascii"))
    if family == socket.AF_INET:
        ip = socket.inet_ntop(family, raw[::-1] if _LITTLE_ENDIAN else raw)
    else:
        if _LITTLE_ENDIAN:
            raw = struct.pack(">4I", *struct.unpack("<4I", raw))
        ip = socket.inet_ntop(socket.AF_INET6, raw)
    return (ip, port)


def read_tcp_text(path: str) -> str:
    """The whole text of one ``/proc/net/tcp*`` file, header included (one large read: the
    kernel formats the table as it is read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, _READ_SIZE)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def hex_port(port: int) -> str:
    """A port as ``/proc/net/tcp`` prints it (4 upper-case hex digits)."""
    return f"{int(port):04X}"


# One line of /proc/net/tcp*: "sl: local rem st tx:rx tr:when retrnsmt uid timeout inode ...";
# groups: local address, local port, remote address, state, inode. The match starts at the
# ": " after the line number, the only ": " of a line: a pattern anchored with "^" under
# re.MULTILINE is tried at every character of the text and costs 4 times as much.
_LINE = (
    r": ([0-9A-F]+:({ports})) ([0-9A-F]+:[0-9A-F]+) ({states})"
    r" [^ \n]+ [^ \n]+ [^ \n]+ +\d+ +\d+ (\d+)"
)
_ANY_PORT = "[0-9A-F]{4}"


def _line_regex(ports: Collection[int] | None) -> re.Pattern[str]:
    wanted = _ANY_PORT if ports is None else "|".join(sorted({hex_port(p) for p in ports}))
    return re.compile(
        _LINE.format(ports=wanted or "(?!)", states=f"{HEX_LISTEN}|{HEX_ESTABLISHED}")
    )


def select_server_sockets(
    tables: Iterable[tuple[int, Iterable[str] | str]],
    ports: Collection[int] | None = None,
    keep_unlistened: bool = False,
) -> list[tuple[int, str, str, str, str]]:
    """``(family, local, remote, state, inode)`` (still hex, as printed) of the LISTEN lines and
    of the ESTABLISHED lines whose local port is listened on (in either family), in file order,
    listeners first. ``tables`` gives each family's lines (or whole text). ``ports``: only
    these local ports (None: all); with ``keep_unlistened``, their ESTABLISHED lines are kept
    even when nothing listens (an accepted connection outlives its listener). Lines are picked
    by one regular expression on the state and the hex port as the kernel prints them (4
    upper-case hex digits); nothing is decoded."""
    regex = _line_regex(ports)
    listeners: list[tuple[int, str, str, str, str]] = []
    established: list[tuple[int, str, str, str, str, str]] = []
    listen_ports: set[str] = set()
    if keep_unlistened and ports:
        listen_ports.update(hex_port(port) for port in ports)
    for family, lines in tables:
        text = lines if isinstance(lines, str) else "\n".join(lines)
        for local, port, remote, state, inode in regex.findall(text):
            if state == HEX_LISTEN:
                listeners.append((family, local, remote, state, inode))
                listen_ports.add(port)
            else:
                established.append((family, local, remote, state, inode, port))
    return listeners + [
        (family, local, remote, state, inode)
        for family, local, remote, state, inode, port in established
        if port in listen_ports
    ]


def socket_owners(
    inodes: Iterable[str], proc: str = PROC, first: Iterable[int] = ()
) -> dict[str, int]:
    """Which pid holds each socket inode, through the ``socket:[INODE]`` links of
    ``/proc/PID/fd``. psutil keeps, for a socket several processes hold (a listener inherited
    by children), the one it meets last going up the pids; going down the pids and stopping once
    every inode has an owner gives the same pid. Unreadable fd directories (another user's
    process without root) are passed over: their sockets keep no owner, as with psutil.

    ``first``: pids searched before all others (the processes expected to hold the sockets);
    the other processes' fds are read only for the inodes none of them holds. A socket held by
    one of them and by another process too is then given to the one of ``first``."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes if inode != "0"}
    owners: dict[str, int] = {}
    if not wanted:
        return owners
    first = sorted(set(first), reverse=True)
    _owners_among(first, wanted, owners, proc)
    if wanted:
        skip = set(first)
        rest = sorted(
            (pid for pid in (int(e) for e in os.listdir(proc) if e.isdigit()) if pid not in skip),
            reverse=True,
        )
        _owners_among(rest, wanted, owners, proc)
    return owners


def owners_of_selected(
    selected: list[tuple[int, str, str, str, str]],
    proc: str = PROC,
    first: Iterable[int] = (),
    accepting_pids: Mapping[int, Collection[int]] | None = None,
) -> dict[str, int]:
    """``socket_owners`` of the ``select_server_sockets`` lines, except the ESTABLISHED sockets
    of the ports of ``accepting_pids`` whose every listener is held by one of that port's pids:
    those were accepted by such a listener, so they are taken as held by those processes and
    not looked up (no owner: ``pid`` None). Finding who holds each accepted socket means reading
    every fd of the daemon (one ``readlink`` per connection); this reads the port's processes'
    fds only up to their listeners (a listener held by several of them goes to the highest pid,
    as in ``socket_owners``). A port with a listener held by another process, or by none that
    can be seen, or with no listener, has all its sockets looked up as before."""
    if not accepting_pids:
        return socket_owners((entry[4] for entry in selected), proc, first)
    by_port: dict[str, dict[str, str]] = {}
    no_inode: set[str] = set()  # ports with a listener no process can be found for
    for _family, local, _remote, state, inode in selected:
        if state == HEX_LISTEN:
            if inode == "0":
                no_inode.add(local[-4:])
            else:
                by_port.setdefault(local[-4:], {})[f"socket:[{inode}]"] = inode
    owners: dict[str, int] = {}
    trusted: set[str] = set()
    for port, pids in accepting_pids.items():
        wanted = by_port.get(hex_port(port))
        if wanted and hex_port(port) not in no_inode:
            _owners_among(sorted(set(pids), reverse=True), wanted, owners, proc)
            if not wanted:
                trusted.add(hex_port(port))
    rest = [
        entry[4]
        for entry in selected
        if entry[4] not in owners and (entry[3] == HEX_LISTEN or entry[1][-4:] not in trusted)
    ]
    owners.update(socket_owners(rest, proc, first))
    return owners


def _owners_among(
    pids: Iterable[int], wanted: dict[str, str], owners: dict[str, int], proc: str
) -> None:
    """Move the inodes of ``wanted`` that one of ``pids`` holds into ``owners``."""
    readlink = os.readlink
    for pid in pids:
        try:  # links read relative to the open directory: one path lookup per process
            dir_fd = os.open(f"{proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:  # listed lazily: the fds after the last one wanted are not even listed
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    try:
                        target = readlink(entry.name, dir_fd=dir_fd)
                    except OSError:
                        continue
                    inode = wanted.pop(target, None)
                    if inode is not None:
                        owners[inode] = pid
                        if not wanted:  # a daemon may hold thousands of fds after its listener
                            break
        except OSError:
            pass
        finally:
            os.close(dir_fd)
        if not wanted:
            break


def read_tcp_tables(proc: str = PROC) -> list[tuple[int, str]]:
    """``(family, text)`` of ``/proc/net/tcp`` and ``/proc/net/tcp6``. Raises OSError when
    ``/proc/net/tcp`` cannot be read; a missing ``tcp6`` means no IPv6."""
    tables = [(socket.AF_INET, read_tcp_text(f"{proc}/net/tcp"))]
    try:
        tables.append((socket.AF_INET6, read_tcp_text(f"{proc}/net/tcp6")))
    except FileNotFoundError:
        pass
    return tables


def family_name(family: int) -> str:
    return "ipv6" if family == socket.AF_INET6 else "ipv4"


def format_endpoint(ip: str, port: int) -> str:
    """``127.0.0.1:5342`` or ``[::1]:5342``."""
    if ":" in ip:
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


@dataclass(frozen=True)
class Listener:
    port: int
    address: str
    family: str  # ipv4 | ipv6
    pid: int | None  # None when the owner cannot be seen (another user's process, no root)


class Connection:
    """A server-side ESTABLISHED connection: ``port`` (the local, server port), ``address`` (local
    address), ``peer`` (``"ip:port"`` / ``"[ip6]:port"``), ``family`` (ipv4 | ipv6), ``pid``
    (None when the owner cannot be seen, or was not looked up: ``SocketTable.scan``'s
    ``accepting_pids``).

    Read from ``/proc/net/tcp*`` it keeps the addresses as the kernel prints them and decodes
    them on first use; ``peer_key`` tells peers apart without decoding."""

    __slots__ = ("_address", "_peer", "_raw", "family", "pid", "port")

    def __init__(
        self,
        port: int,
        address: str | None = None,
        peer: str | None = None,
        family: str = "ipv4",
        pid: int | None = None,
        raw: tuple[int, str, str] | None = None,
    ) -> None:
        self.port = port
        self.family = family
        self.pid = pid
        self._address = address
        self._peer = peer
        self._raw = raw  # (socket family, local hex, remote hex)

    @property
    def address(self) -> str:
        if self._address is None and self._raw is not None:
            self._address = decode_address(self._raw[1], self._raw[0])[0]
        return self._address or ""

    @property
    def peer(self) -> str:
        if self._peer is None and self._raw is not None:
            ip, port = decode_address(self._raw[2], self._raw[0])
            self._peer = format_endpoint(ip, port)
        return self._peer or ""

    @property
    def peer_key(self) -> Any:
        """Equal for two connections exactly when their peers are equal (no decoding)."""
        if self._raw is not None:
            return (self._raw[0], self._raw[2])
        return self._peer

    def _key(self) -> tuple:
        return (self.port, self.address, self.peer, self.family, self.pid)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Connection) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Connection(port={self.port!r}, address={self.address!r}, peer={self.peer!r}, "
            f"family={self.family!r}, pid={self.pid!r})"
        )


@dataclass
class SocketTable:
    """The listeners and server-side ESTABLISHED connections of the host, by local port.

    ``available`` is False when the socket table could not be read at all (``error`` says why);
    callers must then report ports as unknown rather than as closed."""

    listening: dict[int, list[Listener]] = field(default_factory=dict)
    connections: dict[int, list[Connection]] = field(default_factory=dict)
    available: bool = True
    error: str | None = None
    probe_connections: int = 0  # our own probes' connections, left out of ``connections``

    @classmethod
    def scan(
        cls,
        use_procfs: bool | None = None,
        ports: Collection[int] | None = None,
        owner_pids: Iterable[int] = (),
        keep_unlistened: bool = False,
        accepting_pids: Mapping[int, Collection[int]] | None = None,
    ) -> SocketTable:
        """Read the TCP sockets once. ``use_procfs``: None (default) reads ``/proc/net/tcp*``
        directly and falls back to psutil when that cannot be read; False forces psutil.
        Connections of our own probes (``registered_probes()``) are not clients.

        ``ports``: only the listeners and connections of these local ports are kept (None: all
        ports). ``owner_pids``: the processes searched first for the sockets' owners (see
        ``socket_owners``); the result is the same, only faster when they hold the sockets.
        ``keep_unlistened``: the ESTABLISHED connections of ``ports`` are kept even when nothing
        listens on them (an accepted connection outlives its listener; cluster_data counts it).

        ``accepting_pids``: for some ports, the processes expected to hold their listeners (a
        health check: each port's daemon). When every listener of such a port is held by one of
        them, its connections are taken as accepted by them: their owners are not looked up and
        their ``pid`` is None (see ``owners_of_selected``; psutil, where ``/proc/net/tcp`` cannot
        be read, finds every owner)."""
        if use_procfs is None or use_procfs:
            try:
                tables = read_tcp_tables(PROC)
            except OSError:
                if use_procfs:
                    raise
            else:
                selected = select_server_sockets(tables, ports, keep_unlistened)
                owners = owners_of_selected(selected, PROC, owner_pids, accepting_pids)
                return cls.from_proc(selected, owners, probes=registered_probes())
        table = cls._scan_psutil(ports if keep_unlistened else ())
        if ports is not None:
            wanted = set(ports)
            table.listening = {p: v for p, v in table.listening.items() if p in wanted}
            table.connections = {p: v for p, v in table.connections.items() if p in wanted}
        return table

    @classmethod
    def _scan_psutil(cls, server_ports: Iterable[int] = ()) -> SocketTable:
        psutil = load_psutil()
        try:
            entries = psutil.net_connections(kind="tcp")
        except psutil.AccessDenied as exc:
            return cls.unavailable(
                f"cannot read the socket table ({exc.__class__.__name__}); run the task with"
                " become: true"
            )
        return cls.from_entries(entries, probes=registered_probes(), server_ports=server_ports)

    @classmethod
    def from_proc(
        cls,
        selected: Iterable[tuple[int, str, str, str, str]],
        owners: dict[str, int],
        probes: set[tuple[int, int]] | None = None,
    ) -> SocketTable:
        """Build the table from ``select_server_sockets`` lines (listeners first) and their
        ``socket_owners``, as ``from_entries`` builds it from psutil's entries; connections keep
        their addresses undecoded until asked (``Connection``)."""
        table = cls()
        seen_listeners: set[tuple[int, str, int | None]] = set()
        families = {socket.AF_INET: family_name(socket.AF_INET)}
        families[socket.AF_INET6] = family_name(socket.AF_INET6)
        ports: dict[str, int] = {}
        for family, local, remote, state, inode in selected:
            pid = owners.get(inode)
            if state == HEX_LISTEN:
                ip, port = decode_address(local, family)
                key = (port, ip, pid)
                if key in seen_listeners:
                    continue
                seen_listeners.add(key)
                table.listening.setdefault(port, []).append(
                    Listener(port=port, address=ip, family=families[family], pid=pid)
                )
                continue
            # one line per socket, and a connection's two ends are unique: no duplicates here
            port_hex = local[-4:]
            port = ports.get(port_hex)
            if port is None:
                port = ports[port_hex] = int(port_hex, 16)
            if probes and (int(remote[-4:], 16), port) in probes:
                table.probe_connections += 1
                continue
            table.connections.setdefault(port, []).append(
                Connection(port, None, None, families[family], pid, (family, local, remote))
            )
        return table

    @classmethod
    def unavailable(cls, error: str) -> SocketTable:
        return cls(available=False, error=error)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable,
        probes: set[tuple[int, int]] | None = None,
        server_ports: Iterable[int] = (),
    ) -> SocketTable:
        """Build the table from psutil ``sconn`` tuples (fd, family, type, laddr, raddr, status,
        pid). Listeners are read first, so a connection is only kept when its local port is
        listened on (the server side) or is one of ``server_ports``. A connection whose ``(peer
        port, local port)`` is in ``probes`` is one of our own probes: counted in
        ``probe_connections``, not kept."""
        entries = list(entries)
        server_ports = set(server_ports)
        table = cls()
        seen_listeners: set[tuple[int, str, int | None]] = set()
        for entry in entries:
            if entry.status != LISTEN or not entry.laddr:
                continue
            ip, port = entry.laddr[0], entry.laddr[1]
            key = (port, ip, entry.pid)
            if key in seen_listeners:  # the same socket seen from several fds/processes
                continue
            seen_listeners.add(key)
            table.listening.setdefault(port, []).append(
                Listener(port=port, address=ip, family=family_name(entry.family), pid=entry.pid)
            )
        seen_connections: set[tuple[int, str, str, int | None]] = set()
        for entry in entries:
            if entry.status != ESTABLISHED or not entry.laddr or not entry.raddr:
                continue
            ip, port = entry.laddr[0], entry.laddr[1]
            if port not in table.listening and port not in server_ports:
                continue
            if probes and (entry.raddr[1], port) in probes:
                table.probe_connections += 1
                continue
            peer = format_endpoint(entry.raddr[0], entry.raddr[1])
            key = (port, ip, peer, entry.pid)
            if key in seen_connections:
                continue
            seen_connections.add(key)
            table.connections.setdefault(port, []).append(
                Connection(
                    port=port,
                    address=ip,
                    peer=peer,
                    family=family_name(entry.family),
                    pid=entry.pid,
                )
            )
        return table

    def listeners(self, port: int) -> list[Listener]:
        return list(self.listening.get(port, ()))

    def established(self, port: int) -> list[Connection]:
        """Server-side ESTABLISHED connections on ``port``, one per (peer, process)."""
        return list(self.connections.get(port, ()))

    def peers(self, port: int) -> list[str]:
        """The distinct peers connected to ``port``, sorted."""
        return sorted({conn.peer for conn in self.connections.get(port, ())})
