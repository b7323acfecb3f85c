# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway PostgreSQL server for the tests that need one.

``postgres_dsn`` (session scope) runs ``initdb`` from /usr/lib/postgresql/<ver>/bin into a fresh
directory under the system temp dir, starts the server on a free TCP port of 127.0.0.1 with its
unix socket in that directory, yields a libpq DSN and stops the server (and removes the
directory) at the end.  As root, the server runs as the ``postgres`` OS user (PostgreSQL refuses
to run as root) and the directory is chowned to it.  Nothing outside the temp directory is used.

Use it from a test module with ``postgres_dsn = pg_fixture.postgres_dsn``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def pg_bin() -> str:
    candidates = sorted(glob.glob(PG_BIN_GLOB), key=lambda p: int(p.split("/")[-2]))
    preferred = "/usr/lib/postgresql/15/bin"
    if os.path.isdir(preferred):
        return preferred
    if not candidates:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
            "install the Debian package postgresql (scripts/bootstrap.sh does)"
        )
    return candidates[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        _as_server_user(argv), capture_output=True, text=True, timeout=120, check=False, **kw
    )


class PostgresServer:
    def __init__(self) -> None:
        self.bin = pg_bin()
        self.base = tempfile.mkdtemp(prefix="daemonops-pg-")
        self.data = os.path.join(self.base, "data")
        self.sockets = os.path.join(self.base, "sock")
        self.log = os.path.join(self.base, "server.log")
        self.port = 0
        os.mkdir(self.sockets)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.base, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.base, 0o700)

    def init(self) -> None:
        result = _run(
            [f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        last = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} "
                "-c fsync=off -c shared_buffers=16MB -c max_connections=20"
            )
            result = _run(
                [f"{self.bin}/pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w",
                 "-t", "60", "start"]
            )  # fmt: skip
            if result.returncode == 0:
                return
            last = result.stdout + result.stderr
            if os.path.exists(self.log):
                with open(self.log, encoding="utf-8", errors="replace") as handle:
                    last += handle.read()[-2000:]
            time.sleep(0.5)
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            _run([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=10"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A DSN of a fresh PostgreSQL server, stopped at the end of the session."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server.dsn
    finally:
        server.stop()
