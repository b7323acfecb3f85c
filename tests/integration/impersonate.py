# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real processes that look like a vendor suite's daemons, for integration tests.

Each impersonated process is a small Python program started with ``argv[0]`` set to the
daemon's name (``subprocess.Popen([name, ...], executable=sys.executable)``), so
``/proc/PID/cmdline`` (what ``ps -ef`` shows and what profiles match) starts with that name.
Its kernel ``comm`` is set to the name too (``prctl(PR_SET_NAME)``, cut to 15 characters like a
real daemon's), so ``ps -e`` and ``psutil.Process.name()`` show it. It listens on the given TCP
ports (IPv4 or IPv6), keeps accepted client connections open until the client closes them
(or sends ``QUIT``, then the server closes first), answers ``GET`` with ``HTTP/1.0 200``,
and starts its own children, so whole process trees (``sm_qm_main`` -> ``sm_stpd_main`` ->
``sm_stpd_utl_main``) are reproduced.

The program is fed to Python on standard input, so a process without arguments has exactly
``[name]`` as its command line; with arguments it is ``[name, "-", *args]`` (``-`` tells Python
that the program comes from standard input and ends its option parsing). Match rules anchored at
the start of the command line (``^sm_stpd_main( |$)``) see the real name either way.

Use it through the ``impersonate`` fixture (tests/integration/conftest.py) or directly::

    tree = ImpersonatedTree(
        Proc("sm_qm_main", children=[Proc("sm_stpd_main", ports=[0, ("::1", 0)])]),
        workdir=tmp_path,
    ).start()
    tree.pid("sm_stpd_main"); tree.ports("sm_stpd_main")  # -> [("127.0.0.1", 40123), ("::1", 40124)]
    tree.kill("sm_stpd_main"); tree.stop()

This file is also the program the impersonated processes run (``__main__`` branch below); it uses
only the standard library.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

SPEC_ENV = "DAEMONOPS_IMPERSONATE_SPEC"
PROGRAM_ENV = "DAEMONOPS_IMPERSONATE_PROGRAM"
READY_ENV = "DAEMONOPS_IMPERSONATE_READY"
PYTHON_ENV = "DAEMONOPS_IMPERSONATE_PYTHON"

PortSpec = Union[int, tuple[str, int]]


@dataclass
class Proc:
    """One process to impersonate.

    ``name``: argv[0] (``sm_stpd_main``, ``/opt/seon/bin/seonrd``, ``nginx: master``...).
    ``args``: further arguments shown in the command line (after ``-``).
    ``ports``: ports to listen on: a number (on 127.0.0.1) or ``(address, port)``; port 0 picks a
    free port (read it back with ``ImpersonatedTree.ports``). ``children``: processes this one
    starts (its children in the process tree). ``threads``: idle threads to start.
    """

    name: str
    args: Sequence[str] = ()
    ports: Sequence[PortSpec] = ()
    children: Sequence[Proc] = ()
    threads: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "args": list(self.args),
            "ports": [_port_pair(p) for p in self.ports],
            "children": [child.to_json() for child in self.children],
            "threads": self.threads,
        }

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children)


@dataclass
class Started:
    """A running impersonated process, as it reported itself when ready."""

    name: str
    pid: int
    ppid: int
    ports: list[tuple[str, int]] = field(default_factory=list)


def _port_pair(port: PortSpec) -> list[Any]:
    if isinstance(port, int):
        return ["127.0.0.1", port]
    address, number = port
    return [str(address), int(number)]


def argv_for(name: str, args: Sequence[str]) -> list[str]:
    """The argv an impersonated process gets (see the module docstring)."""
    return [name, "-", *args] if args else [name]


def spawn(
    spec: dict[str, Any], ready_dir: str, program: str, new_session: bool
) -> subprocess.Popen:
    """Start one impersonated process running ``program`` (this file) with ``spec``."""
    env = dict(os.environ)
    env[SPEC_ENV] = json.dumps(spec)
    env[PROGRAM_ENV] = program
    env[READY_ENV] = ready_dir
    # argv[0] is not the interpreter, so sys.executable cannot be trusted in the children
    python = env.setdefault(PYTHON_ENV, sys.executable)
    # Python looks for its standard library next to argv[0] when argv[0] is a program on PATH
    # (``sleep``, ``su``, ``/bin/sh``): point it at the right one
    env.setdefault("PYTHONHOME", sys.base_prefix)
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.Popen(
        argv_for(spec["name"], spec["args"]),
        executable=python,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(ready_dir, f"stderr-{time.monotonic_ns()}.log"), "wb"),
        env=env,
        start_new_session=new_session,
        close_fds=True,
    )
    with open(program, "rb") as handle:
        assert proc.stdin is not None
        proc.stdin.write(handle.read())
        proc.stdin.close()
    return proc


class ImpersonatedTree:
    """Start process trees, wait until every process listens, and clean them up.

    All processes of a tree share one new session/process group, so ``stop()`` (SIGKILL to the
    group) also ends children whose parent was killed."""

    def __init__(
        self,
        roots: Union[Proc, Sequence[Proc]],
        workdir: Union[str, Path],
        timeout: float = 20.0,
    ) -> None:
        self.roots: list[Proc] = [roots] if isinstance(roots, Proc) else list(roots)
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.ready_dir = self.workdir / f"impersonate-{os.getpid()}-{time.monotonic_ns()}"
        self.popens: list[subprocess.Popen] = []
        self.started: list[Started] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ImpersonatedTree:
        self.ready_dir.mkdir(parents=True)
        program = str(Path(__file__).resolve())
        for root in self.roots:
            self.popens.append(spawn(root.to_json(), str(self.ready_dir), program, True))
        expected = sum(root.count() for root in self.roots)
        deadline = time.monotonic() + self.timeout
        while True:
            reports = sorted(self.ready_dir.glob("ready-*.json"))
            if len(reports) >= expected:
                break
            dead = [p for p in self.popens if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                errors = self._stderr()
                self.stop()
                why = "a process exited" if dead else f"timed out after {self.timeout} s"
                raise RuntimeError(
                    f"impersonated tree not ready ({why}; {len(reports)}/{expected} ready): {errors}"
                )
            time.sleep(0.02)
        self.started = []
        for path in reports:
            data = json.loads(path.read_text())
            self.started.append(
                Started(
                    name=data["name"],
                    pid=data["pid"],
                    ppid=data["ppid"],
                    ports=[(a, int(p)) for a, p in data["ports"]],
                )
            )
        self.started.sort(key=lambda s: s.pid)
        return self

    def stop(self) -> None:
        """SIGKILL every process group of the tree and reap the roots."""
        for popen in self.popens:
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for popen in self.popens:
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        for popen in self.popens:
            if popen.stderr:
                popen.stderr.close()

    def __enter__(self) -> ImpersonatedTree:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries --------------------------------------------------------------------------

    def procs(self, name: str) -> list[Started]:
        return [s for s in self.started if s.name == name]

    def pids(self, name: str) -> list[int]:
        return [s.pid for s in self.procs(name)]

    def pid(self, name: str) -> int:
        """The pid of the one process called ``name`` (error if none or several)."""
        pids = self.pids(name)
        if len(pids) != 1:
            raise LookupError(f"{len(pids)} impersonated processes are called {name!r}: {pids}")
        return pids[0]

    def ports(self, name: str) -> list[tuple[str, int]]:
        """(address, port) listened on by the process called ``name``, in spec order."""
        procs = self.procs(name)
        if len(procs) != 1:
            raise LookupError(f"{len(procs)} impersonated processes are called {name!r}")
        return list(procs[0].ports)

    def port(self, name: str, index: int = 0) -> int:
        return self.ports(name)[index][1]

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 5.0) -> int:
        """Signal the one process called ``name`` and wait until it is gone (its parent reaps
        it). Its children stay, re-parented, as after a real crash."""
        pid = self.pid(name)
        os.kill(pid, sig)
        if not wait_gone(pid, timeout):
            raise RuntimeError(f"{name}[{pid}] still exists {timeout} s after signal {sig}")
        return pid

    def _stderr(self) -> str:
        texts = []
        for path in sorted(self.ready_dir.glob("stderr-*.log")):
            text = path.read_text(errors="replace").strip()
            if text:
                texts.append(text[-2000:])
        return "\n".join(texts) or "(no stderr)"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer exists or is a zombie."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def mention(*words: str) -> subprocess.Popen:
    """A real process that only *mentions* daemon names in its arguments:
    ``grep -e word1 -e word2 ...`` waiting on an open pipe (like ``ps -ef | grep sm_stpd_main``).
    Stop it with ``.kill()``/``.wait()`` (the ``impersonate`` fixture offers ``mention``)."""
    return subprocess.Popen(
        ["grep", *(arg for word in words for arg in ("-e", word))],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# ------------------------------------------------------------------------------------------
# The program the impersonated processes run
# ------------------------------------------------------------------------------------------


def _set_comm(name: str) -> None:
    """Set the kernel's process name (``comm``, 15 characters) like the real daemon has."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        comm = os.path.basename(name.split(" ", 1)[0]) or name
        libc.prctl(15, ctypes.c_char_p(comm.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):  # pragma: no cover - best effort
        pass


def _listen(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def _serve(listeners: list[socket.socket]) -> None:  # pragma: no cover - runs in the child
    import selectors

    selector = selectors.DefaultSelector()
    for sock in listeners:
        selector.register(sock, selectors.EVENT_READ, "listen")
    while True:
        for key, _mask in selector.select():
            sock = key.fileobj
            if key.data == "listen":
                try:
                    conn, _peer = sock.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                conn.setblocking(False)
                selector.register(conn, selectors.EVENT_READ, "client")
                continue
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data or data.startswith(b"QUIT"):  # QUIT: the server closes first
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
            elif data.startswith(b"GET "):
                body = b"ok\n"
                sock.sendall(  # type: ignore[union-attr]
                    b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )


def child_main() -> None:  # pragma: no cover - runs in the impersonated process
    import threading

    spec = json.loads(os.environ[SPEC_ENV])
    program = os.environ[PROGRAM_ENV]
    ready_dir = os.environ[READY_ENV]
    signal.signal(signal.SIGTERM, lambda *_unused: os._exit(0))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children that die are reaped at once
    _set_comm(spec["name"])
    listeners = [_listen(address, port) for address, port in spec["ports"]]
    bound = [[sock.getsockname()[0], sock.getsockname()[1]] for sock in listeners]
    for child in spec["children"]:
        spawn(child, ready_dir, program, False)
    for _unused in range(spec.get("threads", 0)):
        threading.Thread(target=lambda: time.sleep(10**6), daemon=True).start()
    report = {"name": spec["name"], "pid": os.getpid(), "ppid": os.getppid(), "ports": bound}
    tmp = os.path.join(ready_dir, f".ready-{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    os.rename(tmp, os.path.join(ready_dir, f"ready-{os.getpid()}.json"))
    if listeners:
        _serve(listeners)
    while True:
        time.sleep(3600)


if __name__ == "__main__" and os.environ.get(SPEC_ENV):  # pragma: no cover
    child_main()
