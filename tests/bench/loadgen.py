# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load for the benchmarks, in ONE helper process (plus its idle children), bounded in count
and time, on loopback only.

``python tests/bench/loadgen.py --procs N --conns M [--connect 127.0.0.1:PORT] [--max-seconds S]``

- forks ``N`` idle children first (before any socket exists, so they inherit no socket fds;
  each closes every inherited fd and waits in ``pause()``);
- then opens ``M`` ESTABLISHED TCP connections on 127.0.0.1: either pairs over its own listener
  (both ends held here, ``2 M`` sockets) or, with ``--connect``, ``M`` client sockets to a port a
  daemon (an impersonated one) listens on, which holds the server ends;
- prints one line ``READY {json}`` (``pid``, ``children``, ``listen_port``, ``conns``) on stdout
  and holds everything until its standard input is closed, it is killed, its parent dies
  (``PR_SET_PDEATHSIG``) or ``--max-seconds`` pass.

It runs in its own session; ``LoadGen`` in ``benchlib.py`` starts it and kills the whole process
group. RLIMIT_NOFILE is raised as needed (root may raise the hard limit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import socket
import sys
import time

PR_SET_PDEATHSIG = 1
PACE_BATCH = 8
PACE_SLEEP = 0.002


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - best effort
        pass


def raise_nofile(needed: int) -> int:
    """Raise the soft (and if needed, as root, the hard) RLIMIT_NOFILE to ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            needed = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


def idle_child() -> None:  # pragma: no cover - runs in the forked child
    die_with_parent()
    os.closerange(3, 65536)
    signal.signal(signal.SIGTERM, lambda *_unused: os._exit(0))
    while True:
        signal.pause()


def fork_idle(count: int) -> list[int]:
    pids = []
    for _unused in range(count):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                idle_child()
            finally:
                os._exit(0)
        pids.append(pid)
    return pids


def open_pairs(count: int) -> tuple[socket.socket, list[socket.socket]]:
    """``count`` ESTABLISHED connections over our own listener: both ends kept."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    addr = listener.getsockname()
    held = []
    for _unused in range(count):
        client = socket.create_connection(addr, timeout=10)
        server, _peer = listener.accept()
        held.extend((client, server))
    return listener, held


def open_clients(count: int, host: str, port: int, deadline: float) -> list[socket.socket]:
    """``count`` client connections to ``host:port`` (the server keeps the other ends)."""
    held = []
    for index in range(count):
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {index} of {count} connections opened in time")
        held.append(socket.create_connection((host, port), timeout=10))
        if index % PACE_BATCH == PACE_BATCH - 1:
            # let the server accept: a small accept queue (listen(16)) overflows otherwise and
            # each dropped SYN costs a 1 s retransmission
            time.sleep(PACE_SLEEP)
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--procs", type=int, default=0, help="idle child processes (max 5000)")
    parser.add_argument("--conns", type=int, default=0, help="connections (max 20000)")
    parser.add_argument("--connect", default="", help="127.0.0.1:PORT to connect the clients to")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="exit after this")
    args = parser.parse_args(argv)
    if not 0 <= args.procs <= 5000:
        parser.error("--procs: give 0..5000")
    if not 0 <= args.conns <= 20000:
        parser.error("--conns: give 0..20000")
    die_with_parent()
    needed = (args.conns if args.connect else 2 * args.conns) + 64
    available = raise_nofile(needed)
    if available < needed:
        parser.error(
            f"--conns: {args.conns} connections need {needed} file descriptors, RLIMIT_NOFILE "
            f"allows {available}; use fewer connections or --connect (client ends only)"
        )
    children = fork_idle(args.procs)
    started = time.monotonic()
    listener = None
    if args.connect:
        host, _unused, port = args.connect.rpartition(":")
        if host not in ("127.0.0.1", "::1", "localhost"):
            parser.error("--connect: loopback only (127.0.0.1:PORT)")
        held = open_clients(args.conns, host, int(port), started + 120)
    else:
        listener, held = open_pairs(args.conns)
    report = {
        "pid": os.getpid(),
        "children": children,
        "listen_port": listener.getsockname()[1] if listener else None,
        "conns": args.conns,
        "setup_seconds": round(time.monotonic() - started, 3),
    }
    sys.stdout.write("READY " + json.dumps(report) + "\n")
    sys.stdout.flush()
    # hold until stdin closes or the time bound passes
    end = started + args.max_seconds
    while time.monotonic() < end:
        ready, _unused, _unused = select.select(
            [sys.stdin], [], [], min(5.0, end - time.monotonic())
        )
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break
    for sock in held:
        sock.close()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
