"""stpd and the line servers under hostile load: token, upload bounds, timeouts, connection cap.

A bounded load test: small sizes, loopback only, every wait has its own deadline.
"""

from __future__ import annotations

import http.client
import os
import socket
import stat
import time
from collections.abc import Callable

import psutil
from refsuite_testlib import RefSuite, wait_until

MAX_UPLOAD = 4 * 1024 * 1024
MAX_CLIENTS = 4
IO_TIMEOUT = 1


def _request(
    port: int, method: str, path: str, token: str | None = None, body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True when the server closed ``sock`` (EOF or reset) before ``deadline``."""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _bounded_suite(refsuite_factory: Callable[..., RefSuite], **suite_keys: object) -> RefSuite:
    suite = refsuite_factory(
        "server", max_upload=MAX_UPLOAD, max_clients=MAX_CLIENTS, io_timeout=IO_TIMEOUT,
        **suite_keys,
    )  # fmt: skip
    started = suite.start()
    assert "generated the suite's token" in started.stdout
    return suite


def test_token_is_generated_0600_and_required(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = _bounded_suite(refsuite_factory, start_timeout=4)
    token_file = suite.root / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and len(suite.token) >= 32
    http_port = suite.stpd_ports[0]
    assert _request(http_port, "GET", "/health") == (200, b"ok")
    for token in (None, "wrong-token-wrong-token", suite.token[:-1]):
        assert _request(http_port, "PUT", "/files/a.dat", token, b"x")[0] == 401
        assert _request(http_port, "GET", "/files/a.dat", token)[0] == 401
    assert not (suite.data_dir / "a.dat").exists()
    assert _request(http_port, "PUT", "/files/a.dat", suite.token, b"payload")[0] == 201
    assert _request(http_port, "GET", "/files/a.dat", suite.token) == (200, b"payload")

    # the line servers: only PING/HELLO/QUIT/AUTH before AUTH; a wrong token ends the session
    with socket.create_connection(("127.0.0.1", suite.sshd_port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        for line, reply in ((b"PING", b"PONG"), (b"CLIENTS", b"ERR authenticate first")):
            stream.write(line + b"\n")
            stream.flush()
            assert stream.readline().startswith(reply)
        stream.write(b"AUTH not-the-token\n")
        stream.flush()
        assert stream.readline() == b"ERR wrong token\n" and stream.readline() == b""
    with suite.session(suite.sshd_port) as sock:
        stream = sock.makefile("rwb")
        stream.write(b"CLIENTS\n")
        stream.flush()
        assert stream.readline() == b"\n"  # authenticated: the command runs (no other client)

    # the token file must stay private: a group-readable one stops the daemons from starting
    assert suite.run("stop").returncode == 0
    token_file.chmod(0o640)
    refused = suite.run("start")
    assert refused.returncode != 0
    assert "readable by group or others" in suite.log()


def test_uploads_are_bounded_and_streamed(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = _bounded_suite(refsuite_factory)
    http_port = suite.stpd_ports[0]
    stpd = psutil.Process(suite.pid("stpd"))
    # a Content-Length far beyond memory is refused before a byte is read
    status, body = _request(
        http_port, "PUT", "/files/huge.dat", suite.token,
        headers={"Content-Length": "99999999999999"},
    )  # fmt: skip
    assert status == 413 and b"max_upload" in body
    status, _body = _request(
        http_port, "PUT", "/files/big.dat", suite.token,
        headers={"Content-Length": str(MAX_UPLOAD + 1)},
    )  # fmt: skip
    assert status == 413
    assert not (suite.data_dir / "big.dat").exists() and not (suite.data_dir / "huge.dat").exists()
    # the largest allowed upload is streamed to disk: the daemon does not grow by its size
    rss_before = stpd.memory_info().rss
    payload = os.urandom(MAX_UPLOAD)
    assert _request(http_port, "PUT", "/files/max.dat", suite.token, payload)[0] == 201
    assert (suite.data_dir / "max.dat").read_bytes() == payload
    assert _request(http_port, "GET", "/files/max.dat", suite.token) == (200, payload)
    grown = stpd.memory_info().rss - rss_before
    assert grown < MAX_UPLOAD // 2, f"stpd grew by {grown} bytes for a {MAX_UPLOAD}-byte upload"
    # a client that stops sending mid-body is cut off after io_timeout; nothing half is kept
    with socket.create_connection(("127.0.0.1", http_port), timeout=10) as sock:
        sock.sendall(
            f"PUT /files/half.dat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {suite.token}\r\n"
            f"Content-Length: 1000\r\n\r\n".encode()
            + b"y" * 10
        )
        assert _closed_by_server(sock, time.monotonic() + 15)
    assert sorted(p.name for p in suite.data_dir.iterdir()) == ["max.dat"]
    assert stpd.is_running() and suite.pid("stpd") == stpd.pid


def test_idle_connections_are_capped_and_timed_out(
    refsuite_factory: Callable[..., RefSuite],
) -> None:
    suite = _bounded_suite(refsuite_factory)
    for port in (suite.stpd_ports[0], suite.ui_port):
        daemon = "stpd" if port != suite.ui_port else "ui"
        proc = psutil.Process(suite.pid(daemon))
        threads_before = proc.num_threads()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _unused in range(30)]
        try:
            # never more than max_clients handler threads, whatever the number of connections
            time.sleep(0.3)
            assert proc.num_threads() <= threads_before + MAX_CLIENTS
            # every idle connection is closed: the extra ones at once, the served ones after
            # io_timeout (before it, they held a slot each)
            deadline = time.monotonic() + 20
            assert all(_closed_by_server(sock, deadline) for sock in idle)
        finally:
            for sock in idle:
                sock.close()
        wait_until(
            lambda p=proc, n=threads_before: p.num_threads() <= n, 10, "handler threads gone"
        )
        # the daemon serves again once the flood is gone
        if daemon == "stpd":
            assert _request(port, "GET", "/health") == (200, b"ok")
        else:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"PING\n")
                assert sock.makefile("rb").readline() == b"PONG\n"
    # an authenticated session is not timed out: it may stay idle (a real client of the suite)
    with suite.session(suite.ui_port) as sock:
        time.sleep(IO_TIMEOUT * 2.5)
        sock.sendall(b"PING\n")
        assert sock.makefile("rb").readline() == b"PONG\n"
