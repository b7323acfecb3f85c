# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Active probes of a daemon's port: a TCP connect, or an HTTP(S) GET with an expected status.

Each probe returns ``ProbeResult(ok, detail)`` and never raises for network errors; the detail
is what a person reads in the health report ("HTTP 200", "connection refused", ...).

Every probe connection is made by ``probe_connection``, which registers it with
``sockets.register_probe`` before connecting: other checks on the host (a sibling instance's
health check, ``service``'s drain wait, ``cluster_data``) then do not count it as a client.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
    register_probe,
    unregister_probe,
)

DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def connect_host(listen_address: str | None) -> str:
    """The address to connect to for a listener bound to ``listen_address``: the wildcard
    addresses become the loopback address of the same family."""
    if not listen_address or listen_address == "0.0.0.0":
        return "127.0.0.1"
    if listen_address == "::":
        return "::1"
    return listen_address


def _error_detail(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not isinstance(exc, OSError) else text


@contextmanager
def probe_connection(
    host: str, port: int, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[socket.socket]:
    """A TCP connection to ``host:port`` that other checks know is ours: the socket is bound to
    a free local port first, registered (``sockets.register_probe``), then connected; the entry
    is removed once the socket is closed. Raises OSError/ValueError like
    ``socket.create_connection``."""
    error: BaseException | None = None
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, 0, socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        entry = None
        try:
            sock.settimeout(timeout)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            entry = register_probe(sock.getsockname()[1], port)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            unregister_probe(entry)
            error = exc
            continue
        try:
            yield sock
        finally:
            sock.close()
            unregister_probe(entry)
        return
    raise error if error is not None else OSError(f"cannot resolve {host}")


def tcp_probe(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Open and close a TCP connection."""
    try:
        with probe_connection(host, port, timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        return ProbeResult(False, f"TCP connect to {host}:{port} failed: {_error_detail(exc)}")
    return ProbeResult(True, "TCP connect ok")


def http_probe(
    host: str,
    port: int,
    path: str = "/",
    expected_status: int | None = 200,
    tls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProbeResult:
    """GET ``path``; ok when the status is ``expected_status`` (any status when None).
    TLS certificates are not verified: the probe checks that the daemon answers, not who it is
    (suites generate self-signed certificates)."""
    # imported here: http.client and ssl cost a health check ~30 ms when no HTTP probe runs
    import http.client
    import ssl

    scheme = "HTTPS" if tls else "HTTP"
    try:
        with probe_connection(host, port, timeout=timeout) as sock:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                connection.sock = context.wrap_socket(sock, server_hostname=host)
            else:
                connection.sock = sock
            try:
                connection.request(
                    "GET", path or "/", headers={"User-Agent": "daemonops.suite health"}
                )
                response = connection.getresponse()
                status = response.status
                response.read(65536)
            finally:
                connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return ProbeResult(False, f"{scheme} GET {path} failed: {_error_detail(exc)}")
    if expected_status is not None and status != expected_status:
        return ProbeResult(False, f"{scheme} {status}, expected {expected_status}")
    return ProbeResult(True, f"{scheme} {status}")


def run_probe(
    spec: Mapping[str, Any], host: str, port: int, timeout: float = DEFAULT_TIMEOUT
) -> ProbeResult:
    """Run the probe a profile describes: ``spec`` is ``Port.probe``, the normalised dict the
    profile validation makes (``type``: tcp | http; for http ``path``, ``status``, ``tls``)."""
    kind = spec.get("type") or "tcp"
    if kind == "tcp":
        return tcp_probe(host, port, timeout=timeout)
    if kind in ("http", "https"):
        return http_probe(
            host,
            port,
            path=spec.get("path") or "/",
            expected_status=spec.get("status", 200),
            tls=bool(spec.get("tls", kind == "https")),
            timeout=timeout,
        )
    return ProbeResult(False, f"unknown probe type {kind!r}")
