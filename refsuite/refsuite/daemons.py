"""The refsuite daemons (everything qm spawns) and their common life cycle."""

from __future__ import annotations

import ctypes
import ctypes.util
import http.server
import logging
import os
import re
import signal
import socket
import socketserver
import sqlite3
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from refsuite import proc
from refsuite.config import Config, ConfigError, load_config
from refsuite.state import RecordRefused, StateDB, judge, live_message, own_record, stale_message
from refsuite.token import TokenError, read_token, same

FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
MAX_LINE = 1024  # bytes of one command line of the line protocol
CHUNK = 64 * 1024


def _server_class(base: type[socketserver.TCPServer], bind: str, max_clients: int) -> Any:
    """A threading server class for `bind`: IPv6 (dual stack, IPV6_V6ONLY=0) when bind contains
    ':'. At most `max_clients` connections are served at once; one more is closed at accept."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    slots = threading.BoundedSemaphore(max_clients)

    class Server(base):  # type: ignore[valid-type,misc]
        address_family = family
        allow_reuse_address = True
        daemon_threads = True
        block_on_close = False

        def verify_request(self, request: Any, client_address: Any) -> bool:
            # False: socketserver closes the connection at once (no thread is started)
            return slots.acquire(blocking=False)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

        def server_bind(self) -> None:
            if family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            # TCPServer.server_bind only: HTTPServer's would call getfqdn() (slow without DNS)
            socketserver.TCPServer.server_bind(self)
            host, port = self.server_address[:2]
            self.server_name = host
            self.server_port = port

    return Server


class Daemon:
    """Base: setup() binds resources, tick() runs periodically, teardown() releases."""

    def __init__(
        self, cfg: Config, log: logging.Logger, instance: int | None = None, force: bool = False
    ) -> None:
        self.cfg = cfg
        self.log = log
        self.instance = instance
        self.force = force
        self.threads: list[threading.Thread] = []

    def setup(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def serve_in_thread(self, server: socketserver.BaseServer) -> None:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        self.threads.append(thread)


class LineServerDaemon(Daemon):
    """A TCP line protocol: PING -> PONG, CLIENTS -> peers, QUIT -> BYE. Sessions stay open."""

    banner = "refsuite"

    def setup(self) -> None:
        daemon = self
        clients: dict[socket.socket, str] = {}
        lock = threading.Lock()

        token = read_token(self.cfg.token_file)

        class Handler(socketserver.StreamRequestHandler):
            # a client that has not authenticated must speak within io_timeout seconds
            timeout = daemon.cfg.io_timeout

            def handle(self) -> None:
                peer = _peer(self.client_address)
                authenticated = False
                with lock:
                    clients[self.connection] = peer
                daemon.log.info("client connected from %s", peer)
                try:
                    while True:
                        raw = self.rfile.readline(MAX_LINE + 1)
                        if not raw:
                            break
                        if len(raw) > MAX_LINE:
                            self.wfile.write(b"ERR line too long\n")
                            break
                        words = raw.decode("utf-8", "replace").strip().split(None, 1)
                        command = words[0].upper() if words else ""
                        if command == "PING":
                            reply = "PONG"
                        elif command == "HELLO":
                            reply = f"WELCOME {daemon.banner}"
                        elif command == "QUIT":
                            self.wfile.write(b"BYE\n")
                            break
                        elif command == "AUTH":
                            if not same(words[1] if len(words) > 1 else None, token):
                                daemon.log.warning("client %s: wrong token", peer)
                                self.wfile.write(b"ERR wrong token\n")
                                break
                            authenticated = True
                            self.connection.settimeout(None)  # a session may stay idle
                            reply = "OK"
                        elif not authenticated:
                            reply = "ERR authenticate first: AUTH <token>"
                        elif command == "CLIENTS":
                            with lock:
                                reply = " ".join(p for s, p in clients.items() if p != peer)
                        else:
                            reply = f"ERR unknown command {command[:40]!r}"
                        self.wfile.write(reply.encode() + b"\n")
                except OSError:
                    pass
                finally:
                    with lock:
                        clients.pop(self.connection, None)
                    daemon.log.info("client %s disconnected", peer)

        self.clients = clients
        self.server = _server_class(
            socketserver.ThreadingTCPServer, self.cfg.bind, self.cfg.max_clients
        )((self.cfg.bind, self.port()), Handler)
        self.serve_in_thread(self.server)
        self.log.info("listening on %s port %d", self.cfg.bind, self.port())

    def port(self) -> int:
        raise NotImplementedError

    def teardown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for conn in list(self.clients):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _peer(address: Any) -> str:
    host, port = address[0], address[1]
    if host.startswith("::ffff:"):
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class UiDaemon(LineServerDaemon):
    banner = "refsuite-ui"

    def port(self) -> int:
        return self.cfg.port("ui")


class CtrlDaemon(LineServerDaemon):
    banner = "refsuite-ctrl"

    def port(self) -> int:
        return self.cfg.port("ctrl")


class SshdDaemon(LineServerDaemon):
    banner = "refsuite-sshd"

    def port(self) -> int:
        return self.cfg.port("sshd")


class DbDaemon(Daemon):
    """Owns the catalog (an SQLite file); keeps a heartbeat in it."""

    def setup(self) -> None:
        os.makedirs(os.path.dirname(self.cfg.catalog), exist_ok=True)
        self.conn = sqlite3.connect(self.cfg.catalog, timeout=30, isolation_level=None)
        self.conn.execute("CREATE TABLE IF NOT EXISTS catalog (key TEXT PRIMARY KEY, value TEXT)")
        self._put("owner_pid", str(os.getpid()))
        self.last = 0.0

    def _put(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO catalog (key, value) VALUES (?, ?)", (key, value))

    def tick(self) -> None:
        now = time.time()
        if now - self.last >= 1.0:
            self._put("heartbeat", f"{now:.3f}")
            self.last = now

    def teardown(self) -> None:
        self.conn.close()


class PassdDaemon(Daemon):
    """Authentication daemon: no port, just runs."""


class SepulerDaemon(Daemon):
    """Scheduler loop: looks for due events every interval (records its last run)."""

    def setup(self) -> None:
        self.last = 0.0
        self.runs = 0

    def tick(self) -> None:
        now = time.time()
        if now - self.last >= self.cfg.sepuler_interval:
            self.last = now
            self.runs += 1


class DataServerDaemon(Daemon):
    """Writes cluster data under cluster_path/<hostname>/ds-<I>/ periodically."""

    def setup(self) -> None:
        _set_parent_death_signal()
        self.dir = os.path.join(self.cfg.cluster_path, socket.gethostname(), f"ds-{self.instance}")
        os.makedirs(self.dir, exist_ok=True)
        self.last = 0.0
        self.tick()

    def tick(self) -> None:
        now = time.time()
        if now - self.last < self.cfg.write_interval:
            return
        self.last = now
        target = os.path.join(self.dir, "state")
        tmp = target + f".tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(f"pid={os.getpid()} time={now:.3f}\n")
        os.replace(tmp, target)


class SmsDaemon(Daemon):
    """Parent of the data_server processes; restarts one that dies (after retry_interval)."""

    def setup(self) -> None:
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.respawn_at: dict[int, float] = {}
        self.db = StateDB(self.cfg.state_db)
        for index in range(1, self.cfg.data_servers + 1):
            self.children[index] = proc.spawn(self.cfg, "data_server", index, self.force)
        deadline = time.monotonic() + self.cfg.start_timeout
        waiting = set(self.children)
        while waiting:
            for index in list(waiting):
                child = self.children[index]
                record = self.db.get(f"data_server-{index}")
                if record is not None and record.pid == child.pid:
                    waiting.discard(index)
                elif child.poll() is not None:
                    self._stop_children()
                    raise RuntimeError(
                        f"data_server {index} exited with status {child.returncode} at start"
                    )
            if waiting and time.monotonic() > deadline:
                self._stop_children()
                raise RuntimeError(f"data_server(s) {sorted(waiting)} did not come up")
            time.sleep(0.05)

    def tick(self) -> None:
        now = time.monotonic()
        for index, child in list(self.children.items()):
            if index in self.respawn_at:
                if now >= self.respawn_at[index]:
                    del self.respawn_at[index]
                    self.db.remove(f"data_server-{index}", child.pid)
                    self.children[index] = proc.spawn(self.cfg, "data_server", index)
                    self.log.info("restarted data_server %d", index)
                continue
            status = child.poll()
            if status is None:
                continue
            self.log.warning(
                "data_server %d (pid %d) terminated unexpectedly (exit status %s)",
                index,
                child.pid,
                status,
            )
            if self.cfg.retry_interval > 0:
                self.respawn_at[index] = now + self.cfg.retry_interval
            else:
                self.respawn_at[index] = float("inf")

    def _stop_children(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + self.cfg.stop_timeout
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def teardown(self) -> None:
        self._stop_children()


class _HttpsServerMixin:
    ssl_context: ssl.SSLContext
    io_timeout: float

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the request thread, so a slow client cannot block accept()
        try:
            request.settimeout(self.io_timeout)  # a silent client cannot hold the handshake
            request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        super().finish_request(request, client_address)  # type: ignore[misc]


class StpdDaemon(Daemon):
    """HTTP on ports[0] and ports[1], HTTPS on ports[2]; stores what is PUT under data_dir."""

    def setup(self) -> None:
        daemon = self
        data_dir = self.cfg.data_dir
        os.makedirs(data_dir, exist_ok=True)

        token = read_token(self.cfg.token_file)
        max_upload = self.cfg.max_upload

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "refsuite-stpd/0.1"
            timeout = daemon.cfg.io_timeout  # socket timeout of every read and write

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(
                self, code: int, body: bytes, ctype: str = "text/plain", close: bool = False
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if code == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="refsuite"')
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _file(self) -> str | None:
                if not self.path.startswith("/files/"):
                    return None
                name = self.path[len("/files/") :]
                return os.path.join(data_dir, name) if FILE_NAME.fullmatch(name) else None

            def _authorised(self) -> bool:
                given = self.headers.get("Authorization", "")
                if given[:7].lower() == "bearer " and same(given[7:].strip(), token):
                    return True
                self._reply(401, b"give the suite's token: Authorization: Bearer <token>\n",
                            close=True)  # fmt: skip
                return False

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._reply(200, b"ok")
                    return
                if self.path == "/":
                    self._reply(200, b"refsuite stpd\n")
                    return
                if not self._authorised():
                    return
                target = self._file()
                try:
                    fd = (
                        os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                        if target
                        else -1
                    )
                except OSError:
                    fd = -1
                if fd >= 0 and not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    fd = -1
                if fd < 0:
                    self._reply(404, b"not found\n")
                    return
                with open(fd, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(size))
                    self.end_headers()
                    if self.command == "HEAD":
                        return
                    while size > 0:
                        block = handle.read(min(CHUNK, size))
                        if not block:
                            break
                        self.wfile.write(block)
                        size -= len(block)

            do_HEAD = do_GET

            def do_PUT(self) -> None:
                if not self._authorised():
                    return
                target = self._file()
                if target is None:
                    self._reply(400, b"use PUT /files/NAME (NAME: letters, digits, . _ -)\n",
                                close=True)  # fmt: skip
                    return
                length = self.headers.get("Content-Length", "")
                if not (length.isascii() and length.isdigit()) or len(length) > 15:
                    self._reply(411, b"Content-Length required\n", close=True)
                    return
                remaining = int(length)
                if remaining > max_upload:
                    self._reply(413, f"larger than max_upload ({max_upload} bytes)\n".encode(),
                                close=True)  # fmt: skip
                    return
                name = os.path.basename(target)
                fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=f".{name}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as handle:
                        while remaining > 0:
                            block = self.rfile.read(min(CHUNK, remaining))
                            if not block:
                                raise ConnectionError("the client sent less than Content-Length")
                            handle.write(block)
                            remaining -= len(block)
                    os.chmod(tmp, 0o644)
                    os.replace(tmp, target)
                except BaseException:
                    os.unlink(tmp)
                    raise
                daemon.log.info("stored %s (%s bytes)", name, length)
                self._reply(201, b"stored\n")

        plain = _server_class(http.server.ThreadingHTTPServer, self.cfg.bind, self.cfg.max_clients)

        class TlsServer(_HttpsServerMixin, plain):  # type: ignore[misc,valid-type]
            pass

        ports = self.cfg.daemons["stpd"].ports
        for path, what in ((self.cfg.tls_cert, "tls_cert"), (self.cfg.tls_key, "tls_key")):
            if not os.path.isfile(path):
                raise RuntimeError(
                    f"{what} {path} does not exist; run 'refsuite gencert --config {self.cfg.path}'"
                )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        self.servers = [plain((self.cfg.bind, ports[0]), Handler)]
        self.servers.append(plain((self.cfg.bind, ports[1]), Handler))
        tls = TlsServer((self.cfg.bind, ports[2]), Handler)
        tls.ssl_context = context
        tls.io_timeout = self.cfg.io_timeout
        self.servers.append(tls)
        for server in self.servers:
            self.serve_in_thread(server)
        self.log.info("listening on %s: http %d, http %d, https %d", self.cfg.bind, *ports[:3])

    def teardown(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


DAEMONS: dict[str, type[Daemon]] = {
    "db": DbDaemon,
    "ui": UiDaemon,
    "passd": PassdDaemon,
    "sms": SmsDaemon,
    "data_server": DataServerDaemon,
    "stpd": StpdDaemon,
    "ctrl": CtrlDaemon,
    "sshd": SshdDaemon,
    "sepuler": SepulerDaemon,
}


def _set_parent_death_signal() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM): data servers end (cleanly) when sms dies."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGTERM)


def run_daemon(name: str, instance: int | None, cfg: Config, force: bool) -> int:
    """Life cycle of one daemon; returns the exit status."""
    proc.become(name, cfg.path, instance)
    record_name = f"data_server-{instance}" if name == "data_server" else name
    procname = f"refsuite-{name}" + (f"-{instance}" if instance is not None else "")
    log = proc.setup_logging(cfg, procname)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    db = StateDB(cfg.state_db)
    existing = db.get(record_name)
    if existing is not None and existing.pid != os.getpid():
        live, reason = judge(existing)
        if live:
            log.error("refused to start: %s", live_message(existing))
            return 2
        if not force:
            log.error("refused to start: %s", stale_message(existing, reason))
            return 2
        db.remove(record_name, existing.pid)
        log.info("cleared stale record for %s (pid %d, %s)", record_name, existing.pid, reason)

    impl = DAEMONS[name](cfg, log, instance, force)
    try:
        impl.setup()
    except (OSError, RuntimeError, TokenError, ssl.SSLError, sqlite3.Error) as exc:
        log.error("cannot start %s: %s", record_name, exc)
        return 1
    try:
        db.register(own_record(record_name), force=force)
    except RecordRefused as exc:
        log.error("refused to start: %s", exc)
        impl.teardown()
        return 2
    log.info("%s online (pid %d)", record_name, os.getpid())

    crash_after = cfg.daemons[name].crash_after
    crash_at = time.monotonic() + crash_after if crash_after is not None else None
    try:
        while not stop.wait(0.1):
            impl.tick()
            if crash_at is not None and time.monotonic() >= crash_at:
                log.error("crash_after = %g reached: %s crashes (test knob)", crash_after, name)
                logging.shutdown()
                os._exit(1)  # like a real crash: no clean-up, the record stays
    finally:
        if stop.is_set():
            impl.teardown()
            db.remove(record_name, os.getpid())
            log.info("%s stopped", record_name)
    return 0


def main(argv: list[str]) -> int:
    """`python -m refsuite _run NAME [INSTANCE] --config PATH [--force]` (spawned by qm/sms)."""
    args = list(argv)
    force = "--force" in args
    if force:
        args.remove("--force")
    try:
        index = args.index("--config")
        config_path = args[index + 1]
        del args[index : index + 2]
        name = args[0]
        instance = int(args[1]) if len(args) > 1 else None
    except (ValueError, IndexError):
        print("usage: refsuite-NAME [INSTANCE] --config PATH [--force]", file=sys.stderr)
        return 64
    if name not in DAEMONS or (name == "data_server") != (instance is not None):
        print(f"refsuite: unknown daemon {name!r}", file=sys.stderr)
        return 64
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"refsuite: {exc}", file=sys.stderr)
        return 78
    return run_daemon(name, instance, cfg, force)
