# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes against real loopback servers started by the tests (fast, no external network)."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.probes import (
    ProbeResult,
    connect_host,
    http_probe,
    run_probe,
    tcp_probe,
)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path in ("/", "/health") else 404
        body = b"ok" if status == 200 else b"missing"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: http.server.HTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_port() -> Iterator[int]:
    yield from _serve(http.server.HTTPServer(("127.0.0.1", 0), Handler))


@pytest.fixture
def https_port(tmp_path: Path) -> Iterator[int]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_tcp_probe_ok_and_refused(http_port):
    assert tcp_probe("127.0.0.1", http_port) == ProbeResult(True, "TCP connect ok")
    port = closed_port()
    result = tcp_probe("127.0.0.1", port, timeout=1)
    assert not result.ok
    assert result.detail == f"TCP connect to 127.0.0.1:{port} failed: connection refused"


def test_http_probe_status(http_port):
    assert http_probe("127.0.0.1", http_port, "/health") == ProbeResult(True, "HTTP 200")
    assert http_probe("127.0.0.1", http_port, "/nope") == ProbeResult(
        False, "HTTP 404, expected 200"
    )
    assert http_probe("127.0.0.1", http_port, "/nope", expected_status=404).ok
    assert http_probe("127.0.0.1", http_port, "/nope", expected_status=None).ok


def test_http_probe_refused_is_a_result_not_an_exception():
    result = http_probe("127.0.0.1", closed_port(), "/", timeout=1)
    assert not result.ok and "HTTP GET / failed: connection refused" == result.detail


def test_https_probe_without_certificate_verification(https_port):
    assert http_probe("127.0.0.1", https_port, "/", tls=True) == ProbeResult(True, "HTTPS 200")
    # plain HTTP against the TLS port does not pass
    assert not http_probe("127.0.0.1", https_port, "/", timeout=2).ok


def test_timeout_on_a_silent_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepts at kernel level, never answers
        result = http_probe("127.0.0.1", sock.getsockname()[1], "/", timeout=0.3)
    assert not result.ok and result.detail.endswith("timed out")


def test_run_probe_dispatches_on_the_profile_probe(http_port):
    assert run_probe({"type": "tcp", "timeout": 1.0}, "127.0.0.1", http_port).ok
    spec = {"type": "http", "path": "/health", "status": 200, "tls": False, "timeout": 1.0}
    assert run_probe(spec, "127.0.0.1", http_port) == ProbeResult(True, "HTTP 200")
    assert run_probe({"type": "http", "path": "/x"}, "127.0.0.1", http_port).detail == (
        "HTTP 404, expected 200"
    )
    assert run_probe({"type": "smtp"}, "127.0.0.1", http_port) == ProbeResult(
        False, "unknown probe type 'smtp'"
    )


def test_connect_host_for_wildcards():
    assert connect_host("0.0.0.0") == "127.0.0.1"
    assert connect_host("::") == "::1"
    assert connect_host(None) == "127.0.0.1"
    assert connect_host("10.1.2.3") == "10.1.2.3"
    assert ProbeResult(True, "x").as_dict() == {"ok": True, "detail": "x"}
