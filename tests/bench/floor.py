# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor of B1: a minimal reader of the same facts health_info's scan collects, straight
from /proc with nothing but ``os``: per process pid, ppid, state, comm, start time, command line,
executable and uid; per TCP socket (IPv4 and IPv6) state, local and remote address and the pid
that holds it (inode -> pid through every ``/proc/PID/fd``).

``python tests/bench/floor.py`` runs one scan and prints the counts (the "cold" figure).
"""

from __future__ import annotations

import os
import sys

TCP_STATES = {"01": "ESTABLISHED", "0A": "LISTEN"}


def read_processes() -> dict[int, tuple]:
    procs: dict[int, tuple] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        base = "/proc/" + entry
        try:
            with open(base + "/stat", "rb") as handle:
                stat = handle.read()
            with open(base + "/cmdline", "rb") as handle:
                cmdline = handle.read().split(b"\0")
            try:
                exe = os.readlink(base + "/exe")
            except OSError:
                exe = None
            uid = os.stat(base).st_uid
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
        fields = stat[stat.rindex(b")") + 2 :].split()
        procs[int(entry)] = (int(fields[1]), fields[0], comm, int(fields[19]), cmdline, exe, uid)
    return procs


def _addr(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    return host, int(port, 16)


def read_sockets() -> list[tuple]:
    """(state, local, remote, inode, pid) for every TCP socket some process holds."""
    entries: dict[int, tuple] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    parts = line.split()
                    inode = int(parts[9])
                    if inode:
                        entries[inode] = (parts[3], _addr(parts[1]), _addr(parts[2]))
        except OSError:
            continue
    owners: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = "/proc/" + entry + "/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir + "/" + fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in entries:
                    owners[inode] = int(entry)
    return [
        (TCP_STATES.get(s, s), lo, re, inode, owners.get(inode))
        for inode, (s, lo, re) in entries.items()
    ]


def scan() -> tuple[int, int]:
    return len(read_processes()), len(read_sockets())


if __name__ == "__main__":
    procs, socks = scan()
    sys.stdout.write(f"{procs} {socks}\n")
