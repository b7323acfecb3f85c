"""refsuite-qm: the master. Spawns the role's daemons in dependency order and supervises them
with esmd semantics (restart after retry_interval, give up after max_failures failures within
failure_window with ONE emergency-priority message, resume every resume_interval, SIGHUP
restarts failed daemons now)."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from refsuite import proc
from refsuite.config import Config, ConfigError, load_config
from refsuite.state import (
    RecordRefused,
    StateDB,
    judge,
    live_message,
    own_record,
    stale_message,
)

LOG_DAEMON = 3  # syslog facility "daemon"
REQUEST_ACTIONS = ("start", "stop")


def requests_dir(cfg: Config) -> str:
    """Where `refsuite start|stop DAEMON` leaves per-daemon requests for the running qm."""
    return cfg.state_db + ".requests"


def write_request(cfg: Config, name: str, action: str) -> None:
    """Ask the running qm to start or stop one of its daemons (atomic rename)."""
    directory = requests_dir(cfg)
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}")
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(action)
    os.replace(temporary, os.path.join(directory, name))


LOG_EMERG = 0


class LockHeld(Exception):
    pass


def acquire_lock(cfg: Config) -> int:
    """Take the per-config qm lock (flock next to state_db); the fd stays open while qm runs."""
    os.makedirs(os.path.dirname(cfg.lock_file), exist_ok=True)
    fd = os.open(cfg.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeld(
            f"qm: another refsuite-qm is running for {cfg.path} (lock {cfg.lock_file} is held);"
            " stop it first"
        )
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def lock_is_held(cfg: Config) -> bool:
    try:
        fd = acquire_lock(cfg)
    except LockHeld:
        return True
    os.close(fd)
    return False


def preflight(cfg: Config, db: StateDB, force: bool) -> tuple[list[str], list[str]]:
    """Check the role's records before a start: (refusals, cleared-stale notes).

    Live records always refuse. Stale ones refuse unless force, which removes them.
    """
    refusals: list[str] = []
    cleared: list[str] = []
    for name in cfg.record_names():
        record = db.get(name)
        if record is None or record.pid == os.getpid():
            continue
        live, reason = judge(record)
        if live:
            refusals.append(live_message(record))
        elif force:
            db.remove(name, record.pid)
            cleared.append(f"cleared stale record for {name} (pid {record.pid}, {reason})")
        else:
            refusals.append(stale_message(record, reason))
    return refusals, cleared


def send_syslog(path: str, priority: int, ident: str, message: str) -> bool:
    """One RFC 3164 datagram to the syslog socket (default /dev/log); False if there is none."""
    if not path:
        return False
    stamp = time.strftime("%b %d %H:%M:%S")
    data = f"<{priority}>{stamp} {ident}[{os.getpid()}]: {message}".encode()
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            with socket.socket(socket.AF_UNIX, kind) as sock:
                sock.connect(path)
                sock.sendall(data + (b"\0" if kind == socket.SOCK_STREAM else b""))
            return True
        except OSError:
            continue
    return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    state: str = "stopped"  # running | restart_wait | given_up | dead | stopped | held
    failures: deque[float] = field(default_factory=deque)
    restarts: int = 0
    next_at: float = 0.0
    last_pid: int = 0


class QueueManager:
    def __init__(self, cfg: Config, force: bool, log: logging.Logger) -> None:
        self.cfg = cfg
        self.force = force
        self.log = log
        self.db = StateDB(cfg.state_db)
        self.children = {name: Child(name) for name in cfg.spawn_order()}
        self.stopping = False
        self.hup = False

    # -- signals ---------------------------------------------------------------------------
    def _on_term(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self.hup = True

    # -- child control ---------------------------------------------------------------------
    def _publish(self, child: Child) -> None:
        try:
            self.db.set_supervision(child.name, child.state, child.restarts, len(child.failures))
        except Exception as exc:
            self.log.warning("cannot record supervision state of %s: %s", child.name, exc)

    def start_child(self, child: Child) -> bool:
        """Spawn and wait until its record is written (ready) or it dies; True when ready."""
        if child.last_pid:
            # our own dead child: its record (if left behind by a crash) is certainly stale
            self.db.remove(child.name, child.last_pid)
        child.proc = proc.spawn(self.cfg, child.name, force=self.force)
        child.last_pid = child.proc.pid
        child.state = "running"
        self.log.info("spawned %s (pid %d)", child.name, child.proc.pid)
        deadline = time.monotonic() + self.cfg.start_timeout
        ready = False
        while time.monotonic() < deadline and not self.stopping:
            record = self.db.get(child.name)
            if record is not None and record.pid == child.proc.pid:
                ready = True
                break
            if child.proc.poll() is not None:
                break
            time.sleep(0.03)
        else:
            if not self.stopping:
                self.log.error(
                    "%s (pid %d) did not come up within %gs; killing it",
                    child.name,
                    child.proc.pid,
                    self.cfg.start_timeout,
                )
                child.proc.kill()
                child.proc.wait()
        self._publish(child)
        return ready and child.proc.poll() is None

    def on_exit(self, child: Child, status: int) -> None:
        now = time.monotonic()
        pid = child.proc.pid if child.proc else child.last_pid
        child.proc = None
        self.log.warning(
            "%s (pid %d) terminated unexpectedly (exit status %s)", child.name, pid, status
        )
        child.failures.append(now)
        while child.failures and now - child.failures[0] > self.cfg.failure_window:
            child.failures.popleft()
        if self.cfg.retry_interval == 0:
            child.state = "dead"
            self.log.error("%s stays down: restarting is disabled (retry_interval = 0)", child.name)
        elif len(child.failures) >= self.cfg.max_failures:
            self.give_up(child)
        else:
            child.state = "restart_wait"
            child.next_at = now + self.cfg.retry_interval
            self.log.info(
                "restarting %s in %gs (failure %d of %d within %gs)",
                child.name,
                self.cfg.retry_interval,
                len(child.failures),
                self.cfg.max_failures,
                self.cfg.failure_window,
            )
        self._publish(child)

    def give_up(self, child: Child) -> None:
        child.state = "given_up"
        resume = self.cfg.resume_interval
        child.next_at = time.monotonic() + resume if resume > 0 else float("inf")
        message = (
            f"gave up restarting {child.name} after {len(child.failures)} failures within"
            f" {self.cfg.failure_window:g}s; investigate and restart it"
            f" (kill -HUP {os.getpid()} retries now"
            + (f", monitoring resumes in {resume:g}s)" if resume > 0 else ")")
        )
        self.log.log(proc.EMERG, message)
        send_syslog(
            self.cfg.syslog_socket, LOG_DAEMON * 8 + LOG_EMERG, "refsuite-qm", f"EMERG: {message}"
        )

    def restart(self, child: Child, why: str) -> None:
        child.restarts += 1
        self.log.info("restarting %s (%s; restart #%d)", child.name, why, child.restarts)
        self.start_child(child)

    def resume(self, child: Child) -> None:
        self.log.info("trying to resume monitoring of %s", child.name)
        child.failures.clear()
        if self.start_child(child):
            assert child.proc is not None
            self.log.info("resumed monitoring of %s (pid %d)", child.name, child.proc.pid)
            return
        status = child.proc.poll() if child.proc else None
        child.proc = None
        child.state = "given_up"
        child.next_at = time.monotonic() + self.cfg.resume_interval
        self.log.warning(
            "could not resume monitoring of %s (exit status %s); next attempt in %gs",
            child.name,
            status,
            self.cfg.resume_interval,
        )
        self._publish(child)

    def sighup(self) -> None:
        self.log.info("SIGHUP: restarting failed daemons now")
        for child in self.children.values():
            if child.state in ("restart_wait", "given_up", "dead"):
                child.failures.clear()
                self.restart(child, "SIGHUP")

    def stop_child(self, child: Child) -> None:
        """Terminate one child (SIGKILL after stop_timeout) and forget its record."""
        running = child.proc
        child.proc = None
        if running is None or running.poll() is not None:
            return
        running.terminate()
        try:
            running.wait(self.cfg.stop_timeout)
        except subprocess.TimeoutExpired:
            self.log.error("%s (pid %d) ignored SIGTERM; killing it", child.name, running.pid)
            running.kill()
            running.wait()
            self.db.remove(child.name, running.pid)

    def handle_requests(self) -> None:
        """Per-daemon requests: `stop` holds a daemon down (no restart) until `start`."""
        directory = requests_dir(self.cfg)
        try:
            names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
        except OSError:
            return
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="ascii") as handle:
                    action = handle.read().strip()
                os.unlink(path)
            except OSError:
                continue
            child = self.children.get(name)
            if child is None or action not in REQUEST_ACTIONS:
                self.log.warning("ignored request '%s %s': not a daemon qm runs", action, name)
                continue
            if action == "stop":
                if child.state == "held":
                    continue
                self.log.info("stopping %s on request; held down until started", child.name)
                self.stop_child(child)
                child.state = "held"
                self._publish(child)
            elif child.state != "running" or child.proc is None or child.proc.poll() is not None:
                self.log.info("starting %s on request", child.name)
                child.failures.clear()
                self.start_child(child)

    def step(self) -> None:
        self.handle_requests()
        if self.hup:
            self.hup = False
            self.sighup()
        now = time.monotonic()
        for child in self.children.values():
            if self.stopping:
                return
            if child.state == "running" and child.proc is not None:
                status = child.proc.poll()
                if status is not None:
                    self.on_exit(child, status)
            elif child.state == "restart_wait" and now >= child.next_at:
                self.restart(child, f"retry_interval {self.cfg.retry_interval:g}s elapsed")
            elif child.state == "given_up" and now >= child.next_at:
                self.resume(child)

    # -- life cycle ------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.log.info("stopping daemons in reverse dependency order")
        for child in reversed(list(self.children.values())):
            if child.proc is None or child.proc.poll() is not None:
                continue
            self.stop_child(child)
            child.state = "stopped"
            self._publish(child)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)
        # requests were meant for a previous qm
        directory = requests_dir(self.cfg)
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
        try:
            self.db.register(own_record("qm"), force=self.force)
        except RecordRefused as exc:
            self.log.error("refused to start: %s", exc)
            print(f"refsuite: {exc}", file=sys.stderr)
            return 2
        self.log.info(
            "qm online (pid %d), role %s, daemons: %s",
            os.getpid(),
            self.cfg.role,
            " ".join(self.children) or "-",
        )
        try:
            for child in self.children.values():
                if self.stopping:
                    break
                self.start_child(child)
            while not self.stopping:
                self.step()
                time.sleep(0.05)
        finally:
            self.shutdown()
            self.db.remove("qm", os.getpid())
            self.log.info("qm stopped")
        return 0


def main(argv: list[str]) -> int:
    """`python -m refsuite _qm --config PATH [--force] [--foreground]`."""
    args = list(argv)
    force = "--force" in args
    foreground = "--foreground" in args
    try:
        config_path = args[args.index("--config") + 1]
    except (ValueError, IndexError):
        print("usage: refsuite-qm --config PATH [--force]", file=sys.stderr)
        return 64
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"refsuite: {exc}", file=sys.stderr)
        return 78
    proc.become("qm", cfg.path)
    log = proc.setup_logging(cfg, "refsuite-qm")
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(log.handlers[0].formatter)
        log.addHandler(handler)
    try:
        lock_fd = acquire_lock(cfg)
    except LockHeld as exc:
        log.error("refused to start: %s", exc)
        print(f"refsuite: {exc}", file=sys.stderr)
        return 2
    try:
        db = StateDB(cfg.state_db)
        refusals, cleared = preflight(cfg, db, force)
        for note in cleared:
            log.info("%s", note)
        if refusals:
            for message in refusals:
                log.error("refused to start: %s", message)
                print(f"refsuite: {message}", file=sys.stderr)
            return 2
        return QueueManager(cfg, force, log).run()
    finally:
        os.close(lock_fd)
