# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass over the TCP sockets: who listens on which port, and which clients are connected.

``SocketTable.scan()`` reads the TCP socket tables once (IPv4 and IPv6). A listener is a socket
in state LISTEN; a client is an ESTABLISHED connection whose *local* port is a listened port (the
server side of the connection), with its peer address. The client side of a loopback connection,
TIME_WAIT, CLOSE_WAIT and the other closing states are not clients.

On Linux it reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` directly: listeners first, then only
the ESTABLISHED lines whose local port is listened on (filtered on the hex port, before any
address is decoded); the owners of just those sockets are found through ``/proc/PID/fd``. The
result is what ``psutil.net_connections(kind="tcp")`` gives, which is used where ``/proc/net/tcp``
cannot be read.

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
import socket
import stat
import struct
import sys
import tempfile
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

PSUTIL_MISSING = (
    "this target has no Linux /proc to read, so the psutil Python library is required: install "
    f"it for {sys.executable or 'the interpreter Ansible uses there'} (python3-psutil, or "
    f"{sys.executable or 'python3'} -m pip install psutil)"
)

try:
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]

LISTEN = "LISTEN"
ESTABLISHED = "ESTABLISHED"

PROC = "/proc"
# /proc/net/tcp "st" column (include/net/tcp_states.h)
HEX_LISTEN = "0A"
HEX_ESTABLISHED = "01"
_HEX_STATES = {HEX_LISTEN: LISTEN, HEX_ESTABLISHED: ESTABLISHED}
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


# The shape of psutil's ``sconn`` that ``SocketTable.from_entries`` reads.
ProcConn = namedtuple("ProcConn", "fd family type laddr raddr status pid")


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


def read_tcp_table(path: str) -> list[str]:
    """The lines of one ``/proc/net/tcp*`` file, header left out (one large read: the kernel
    formats the table as it is read)."""
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
    return b"".join(chunks).decode("ascii", "replace").splitlines()[1:]


def select_server_sockets(
    tables: Iterable[tuple[int, Iterable[str]]],
    ports: Iterable[int] = (),
) -> list[tuple[int, str, str, str, str]]:
    """``(family, local, remote, state, inode)`` (still hex, as printed) of the LISTEN lines and
    of the ESTABLISHED lines whose local port is listened on (in either family) or is one of
    ``ports``, in file order, listeners first. Lines are only cut at the first four fields,
    nothing is decoded, and the ports are compared as the kernel prints them (4 upper-case hex
    digits); the inode is taken from the lines that are kept."""
    listeners: list[tuple[int, str, str, str, str]] = []
    established: list[tuple[int, list[str]]] = []
    listen_ports: set[str] = {f"{int(port):04X}" for port in ports}
    for family, lines in tables:
        for line in lines:
            fields = line.split(None, 4)
            if len(fields) < 5:
                continue
            state = fields[3]
            if state == HEX_LISTEN:
                listeners.append((family, fields[1], fields[2], state, _inode(fields[4])))
                listen_ports.add(fields[1].rpartition(":")[2])
            elif state == HEX_ESTABLISHED:
                established.append((family, fields))
    return listeners + [
        (family, fields[1], fields[2], fields[3], _inode(fields[4]))
        for family, fields in established
        if fields[1].rpartition(":")[2] in listen_ports
    ]


def _inode(rest: str) -> str:
    """The inode column from what follows the state column (tx:rx tr:when retrnsmt uid timeout
    inode ...)."""
    fields = rest.split(None, 6)
    return fields[5] if len(fields) > 5 else "0"


def socket_owners(inodes: Iterable[str], proc: str = PROC) -> dict[str, int]:
    """Which pid holds each socket inode, through the ``socket:[INODE]`` links of
    ``/proc/PID/fd``. psutil keeps, for a socket several processes hold (a listener inherited
    by children), the one it meets last going up the pids; going down the pids and stopping once
    every inode has an owner gives the same pid. Unreadable fd directories (another user's
    process without root) are passed over: their sockets keep no owner, as with psutil."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes if inode != "0"}
    owners: dict[str, int] = {}
    if not wanted:
        return owners
    pids = sorted((int(entry) for entry in os.listdir(proc) if entry.isdigit()), reverse=True)
    readlink = os.readlink
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd/"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = readlink(fd_dir + fd)
            except OSError:
                continue
            inode = wanted.pop(target, None)
            if inode is not None:
                owners[inode] = pid
        if not wanted:
            break
    return owners


def scan_proc_net(proc: str = PROC, ports: Iterable[int] = ()) -> list[ProcConn]:
    """psutil-shaped entries for the listeners and server-side ESTABLISHED connections (local
    port listened on, or one of ``ports``), read straight from ``/proc/net/tcp`` and
    ``/proc/net/tcp6``. Raises OSError when ``/proc/net/tcp`` cannot be read; a missing ``tcp6``
    means no IPv6."""
    tables = [(socket.AF_INET, read_tcp_table(f"{proc}/net/tcp"))]
    try:
        tables.append((socket.AF_INET6, read_tcp_table(f"{proc}/net/tcp6")))
    except FileNotFoundError:
        pass
    selected = select_server_sockets(tables, ports)
    owners = socket_owners((entry[4] for entry in selected), proc)
    return [
        ProcConn(
            -1,
            family,
            socket.SOCK_STREAM,
            decode_address(local, family),
            decode_address(remote, family),
            _HEX_STATES[state],
            owners.get(inode),
        )
        for family, local, remote, state, inode in selected
    ]


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


@dataclass(frozen=True)
class Connection:
    port: int  # the local (server) port
    address: str  # local address
    peer: str  # "ip:port" / "[ip6]:port"
    family: str
    pid: int | None


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
    def scan(cls, use_procfs: bool | None = None, ports: Iterable[int] = ()) -> SocketTable:
        """Read the TCP sockets once. ``use_procfs``: None (default) reads ``/proc/net/tcp*``
        directly and falls back to psutil when that cannot be read; False forces psutil.
        Connections of our own probes (``registered_probes()``) are not clients. ``ports``:
        local ports whose ESTABLISHED connections are kept even when nothing listens on them
        (an accepted connection outlives its listener; cluster_data counts it)."""
        ports = frozenset(ports)
        if use_procfs is None or use_procfs:
            try:
                entries = scan_proc_net(PROC, ports)
            except OSError:
                if use_procfs:
                    raise
            else:
                return cls.from_entries(entries, probes=registered_probes(), ports=ports)
        return cls._scan_psutil(ports)

    @classmethod
    def _scan_psutil(cls, ports: Iterable[int] = ()) -> SocketTable:
        if psutil is None:  # pragma: no cover
            raise SuiteError(PSUTIL_MISSING)
        try:
            entries = psutil.net_connections(kind="tcp")
        except psutil.AccessDenied as exc:
            return cls.unavailable(
                f"cannot read the socket table ({exc.__class__.__name__}); run the task with"
                " become: true"
            )
        return cls.from_entries(entries, probes=registered_probes(), ports=ports)

    @classmethod
    def unavailable(cls, error: str) -> SocketTable:
        return cls(available=False, error=error)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable,
        probes: set[tuple[int, int]] | None = None,
        ports: Iterable[int] = (),
    ) -> SocketTable:
        """Build the table from psutil ``sconn`` tuples (fd, family, type, laddr, raddr, status,
        pid). Listeners are read first, so a connection is only kept when its local port is
        listened on (the server side) or is one of ``ports``. A connection whose ``(peer port,
        local port)`` is in ``probes`` is one of our own probes: counted in
        ``probe_connections``, not kept."""
        entries = list(entries)
        server_ports = set(ports)
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
