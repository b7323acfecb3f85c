# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass over the TCP sockets: who listens on which port, and which clients are connected.

``SocketTable.scan()`` calls ``psutil.net_connections(kind="tcp")`` (IPv4 and IPv6 TCP, the TCP
part of ``inet``) once. A listener is a socket in state LISTEN; a client is an ESTABLISHED
connection whose *local* port is a listened port (the server side of the connection), with its
peer address. The client side of a loopback connection, TIME_WAIT, CLOSE_WAIT and the other
closing states are not clients.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

PSUTIL_MISSING = (
    "the psutil Python library is required on the target: install python3-psutil (or pip "
    "install psutil) for the interpreter Ansible uses there"
)

try:
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]

LISTEN = "LISTEN"
ESTABLISHED = "ESTABLISHED"


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

    @classmethod
    def scan(cls) -> SocketTable:
        if psutil is None:  # pragma: no cover
            raise SuiteError(PSUTIL_MISSING)
        try:
            entries = psutil.net_connections(kind="tcp")
        except psutil.AccessDenied as exc:
            return cls.unavailable(
                f"cannot read the socket table ({exc.__class__.__name__}); run the task with"
                " become: true"
            )
        return cls.from_entries(entries)

    @classmethod
    def unavailable(cls, error: str) -> SocketTable:
        return cls(available=False, error=error)

    @classmethod
    def from_entries(cls, entries: Iterable) -> SocketTable:
        """Build the table from psutil ``sconn`` tuples (fd, family, type, laddr, raddr, status,
        pid). Listeners are read first, so a connection is only kept when its local port is
        listened on (the server side)."""
        entries = list(entries)
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
            if port not in table.listening:
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
