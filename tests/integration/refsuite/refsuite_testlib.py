"""Helpers for the refsuite integration tests: real processes, real sockets, tmp paths."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / "refsuite" / "bin" / "refsuite"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct ports the kernel reports free right now (all held open while choosing)."""
    socks = []
    try:
        for _unused in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def processes_with(marker: str) -> dict[int, list[str]]:
    """pid -> argv of every process whose cmdline contains marker (a unique config path)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        text = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if marker in text and int(entry) != os.getpid():
            found[int(entry)] = text.split()
    return found


class RefSuite:
    """One refsuite instance: its config, paths, ports and CLI."""

    def __init__(self, root: Path, role: str = "server", **suite: Any) -> None:
        self.root = root
        self.ini = root / "refsuite.ini"
        self.state_db = root / "state" / "state.db"
        self.log_file = root / "log" / "refsuite.log"
        self.data_dir = root / "data"
        self.cluster = root / "cluster"
        self.tls_cert = root / "tls" / "tls.pem"
        self.tls_key = root / "tls" / "tls.key"
        ports = free_ports(6)
        self.ui_port = ports[0]
        self.stpd_ports = ports[1:4]
        self.ctrl_port = ports[4]
        self.sshd_port = ports[5]
        self.suite: dict[str, Any] = {
            "role": role,
            "bind": "127.0.0.1",
            "retry_interval": 0.2,
            "max_failures": 3,
            "failure_window": 30,
            "resume_interval": 60,
            "start_timeout": 15,
            "stop_timeout": 10,
            "syslog_socket": "",
        }
        self.suite.update(suite)
        self.sections: dict[str, dict[str, Any]] = {
            "ui": {"port": self.ui_port},
            "stpd": {"ports": ",".join(map(str, self.stpd_ports))},
            "ctrl": {"enabled": "false", "port": self.ctrl_port},
            "sshd": {"port": self.sshd_port},
            "sms": {"data_servers": 2, "write_interval": 0.2},
        }
        self.foreground: subprocess.Popen[bytes] | None = None
        self.write()

    def write(self) -> None:
        lines = ["[suite]"]
        lines += [f"{key} = {value}" for key, value in self.suite.items()]
        for key in ("state_db", "log_file", "data_dir", "tls_cert", "tls_key"):
            lines.append(f"{key} = {getattr(self, key)}")
        lines.append(f"cluster_path = {self.cluster}")
        for section, values in self.sections.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {value}" for key, value in values.items()]
        self.ini.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def token(self) -> str:
        """The suite's shared secret (``token`` next to the INI file, made by ``start``)."""
        return (self.root / "token").read_text(encoding="ascii").strip()

    def session(self, port: int, timeout: float = 10) -> socket.socket:
        """A connection to a line server (ui, ctrl, sshd) that has authenticated with the token."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.sendall(f"AUTH {self.token}\n".encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
        assert reply == b"OK\n", f"AUTH answered {reply!r}"
        return sock

    def run(self, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(BIN), "--config", str(self.ini), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kw,
        )

    def start(self, *extra: str) -> subprocess.CompletedProcess[str]:
        result = self.run("start", *extra)
        assert result.returncode == 0, f"start failed: {result.stdout}{result.stderr}"
        return result

    def start_foreground(self) -> subprocess.Popen[bytes]:
        """qm in the foreground (systemd Type=simple style), in its own session."""
        self.foreground = subprocess.Popen(
            [sys.executable, str(BIN), "--config", str(self.ini), "start", "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        return self.foreground

    def records(self) -> dict[str, tuple[int, float, str, str, str]]:
        if not self.state_db.exists():
            return {}
        with contextlib.closing(sqlite3.connect(self.state_db, timeout=30)) as conn:
            rows = conn.execute(
                "SELECT name, pid, start_time, boot_id, host, exe FROM daemon_pids"
            ).fetchall()
        return {row[0]: tuple(row[1:]) for row in rows}  # type: ignore[misc]

    def pid(self, name: str) -> int:
        return int(self.records()[name][0])

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""

    def processes(self) -> dict[int, list[str]]:
        return processes_with(str(self.ini))

    def online(self, name: str) -> int | None:
        """pid of name when status says online."""
        result = self.run("status")
        for line in result.stdout.splitlines():
            if line.startswith(f"{name} [") and line.endswith("]: online"):
                return int(line.split("[", 1)[1].split("]", 1)[0])
        return None

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.run("stop", "--force", timeout=30)
        if self.foreground is not None and self.foreground.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.foreground.pid, signal.SIGKILL)
            self.foreground.wait(10)
        own_group = os.getpgid(0)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != own_group:
                    os.killpg(group, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
