"""What the daemons serve (stpd HTTP/HTTPS, ui clients, IPv6), gencert, install layout, config errors."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from refsuite_testlib import REPO, RefSuite, wait_until


def _get(
    conn: http.client.HTTPConnection, path: str, token: str | None = None
) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = conn.getresponse()
    return response.status, response.read()


def test_stpd_stores_what_is_put_over_http_and_https(
    refsuite_factory: Callable[..., RefSuite],
) -> None:
    suite = refsuite_factory("rds")
    generated = suite.run("gencert")
    assert generated.returncode == 0, generated.stderr
    assert stat.S_IMODE(os.stat(suite.tls_key).st_mode) == 0o600
    suite.start()
    payload = os.urandom(200_000) + b"\0\r\n end"
    http_a, http_b, https = suite.stpd_ports

    conn = http.client.HTTPConnection("127.0.0.1", http_a, timeout=10)
    auth = {"Authorization": f"Bearer {suite.token}"}
    conn.request("PUT", "/files/backup-1.sav", body=payload, headers=auth)
    response = conn.getresponse()
    assert response.status == 201, response.read()
    response.read()
    conn.close()
    assert (suite.data_dir / "backup-1.sav").read_bytes() == payload

    assert _get(
        http.client.HTTPConnection("127.0.0.1", http_b, timeout=10),
        "/files/backup-1.sav",
        suite.token,
    ) == (
        200,
        payload,
    )
    assert _get(http.client.HTTPConnection("127.0.0.1", http_a, timeout=10), "/health") == (
        200,
        b"ok",
    )
    assert (
        _get(
            http.client.HTTPConnection("127.0.0.1", http_a, timeout=10), "/files/nope", suite.token
        )[0]
        == 404
    )

    context = ssl.create_default_context(cafile=str(suite.tls_cert))
    tls = http.client.HTTPSConnection("localhost", https, timeout=10, context=context)
    assert _get(tls, "/files/backup-1.sav", suite.token) == (200, payload)
    tls = http.client.HTTPSConnection("localhost", https, timeout=10, context=context)
    assert _get(tls, "/health") == (200, b"ok")
    plain_on_tls = http.client.HTTPConnection("127.0.0.1", https, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        _get(plain_on_tls, "/health")


def test_stop_refuses_while_ui_has_clients(started_server: RefSuite) -> None:
    suite = started_server
    client = suite.session(suite.ui_port)
    stream = client.makefile("rwb")
    stream.write(b"PING\n")
    stream.flush()
    assert stream.readline() == b"PONG\n"
    peer = f"127.0.0.1:{client.getsockname()[1]}"

    refused = suite.run("stop")
    assert refused.returncode == 1
    assert "stop refused: ui has 1 connected client(s)" in refused.stderr
    assert peer in refused.stderr
    assert suite.run("status").returncode == 0

    forced = suite.run("stop", "--force")
    assert forced.returncode == 0, forced.stderr
    assert suite.records() == {}
    client.close()
    assert suite.run("stop").returncode == 0


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="this host has no IPv6 loopback")
def test_bind_ipv6_any_serves_both_families(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("rds", bind="::")
    suite.start()
    for host in ("::1", "127.0.0.1"):
        with socket.create_connection((host, suite.sshd_port), timeout=5) as sock:
            sock.sendall(b"PING\n")
            assert sock.makefile("rb").readline() == b"PONG\n"
        status, body = _get(
            http.client.HTTPConnection(host, suite.stpd_ports[0], timeout=5), "/health"
        )
        assert (status, body) == (200, b"ok")
    listeners = [
        c for c in psutil.Process(suite.pid("sshd")).net_connections("tcp") if c.status == "LISTEN"
    ]
    assert [(c.family, c.laddr.ip, c.laddr.port) for c in listeners] == [
        (socket.AF_INET6, "::", suite.sshd_port)
    ]


def test_runs_from_installed_prefix_layout(
    refsuite_factory: Callable[..., RefSuite], tmp_path: Path
) -> None:
    prefix = tmp_path / "opt" / "refsuite"
    (prefix / "bin").mkdir(parents=True)
    shutil.copytree(REPO / "refsuite" / "refsuite", prefix / "lib" / "refsuite")
    shutil.copy2(REPO / "refsuite" / "bin" / "refsuite", prefix / "bin" / "refsuite")
    shutil.copy2(REPO / "refsuite" / "VERSION", prefix / "VERSION")
    launcher = prefix / "bin" / "refsuite"
    version = subprocess.run(
        [sys.executable, str(launcher), "version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == (prefix / "VERSION").read_text().strip()

    suite = refsuite_factory("client")
    started = subprocess.run(
        [sys.executable, str(launcher), "--config", str(suite.ini), "start"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    sshd = psutil.Process(suite.pid("sshd"))
    assert sshd.cmdline() == ["refsuite-sshd", "--config", str(suite.ini)]
    assert sshd.environ()["PYTHONPATH"].split(os.pathsep)[0] == str(prefix / "lib")
    stopped = subprocess.run(
        [sys.executable, str(launcher), "stop", "--config", str(suite.ini)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not suite.processes(), 10, "processes gone")


def test_bad_config_is_named(refsuite_factory: Callable[..., RefSuite]) -> None:
    suite = refsuite_factory("server")
    suite.suite["role"] = "mainframe"
    suite.write()
    result = suite.run("status")
    assert result.returncode == 1
    assert "[suite] role = 'mainframe' is invalid; use one of server, rds, client" in result.stderr

    suite.suite["role"] = "server"
    suite.sections["sshd"]["port"] = suite.ui_port
    suite.write()
    result = suite.run("start")
    assert result.returncode == 1
    assert f"port {suite.ui_port} is used by both [ui] and [sshd]" in result.stderr
    assert suite.processes() == {}


def test_gencert_without_openssl_fails_clearly(
    refsuite_factory: Callable[..., RefSuite], tmp_path: Path
) -> None:
    suite = refsuite_factory("server")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = suite.run("gencert", env=dict(os.environ, PATH=str(empty)))
    assert result.returncode == 1
    assert "the openssl command was not found in PATH" in result.stderr
    assert not suite.tls_cert.exists()
