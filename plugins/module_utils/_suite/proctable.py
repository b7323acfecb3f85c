# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass over the process table: who runs, with which command line, under which parent.

``ProcessTable.scan()`` reads every process once with ``psutil.process_iter`` and keeps a
snapshot indexed by pid. Everything else (matching daemons, ancestor chains, descendants) works
on that snapshot, so a health check costs one pass however many daemons a profile has.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

PSUTIL_MISSING = (
    "the psutil Python library is required on the target: install python3-psutil (or pip "
    "install psutil) for the interpreter Ansible uses there"
)

try:
    import psutil
except ImportError:  # pragma: no cover - reported by module_kit when a module needs it
    psutil = None  # type: ignore[assignment]

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import Daemon

SCAN_ATTRS = ["pid", "ppid", "name", "cmdline", "exe", "create_time", "status", "username"]

ZOMBIE = "zombie"


def pid_ns_depth(pid: int | str) -> int | None:
    """How many PID namespaces ``pid`` is seen in (entries of ``NSpid:``), or None if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return len(line.split()) - 1
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class ProcInfo:
    """A snapshot of one process. Fields psutil could not read are ``None`` (or empty)."""

    pid: int
    ppid: int | None
    name: str
    cmdline: tuple[str, ...]
    exe: str | None
    create_time: float | None
    status: str | None
    username: str | None

    @property
    def cmdline_str(self) -> str:
        """The command line joined with single spaces, as ``/proc/PID/cmdline`` reads in ``ps``."""
        return " ".join(self.cmdline)

    @property
    def display_name(self) -> str:
        """A readable process name: the base name of argv[0] (not cut to 15 characters like the
        kernel's ``comm``), falling back to psutil's name."""
        if self.cmdline and self.cmdline[0]:
            first = self.cmdline[0].split(" ", 1)[0]
            base = os.path.basename(first.rstrip("/"))
            if base:
                return base
        return self.name or "?"

    @property
    def label(self) -> str:
        """``name[pid]``, the way problems name a process."""
        return f"{self.display_name}[{self.pid}]"

    @property
    def is_zombie(self) -> bool:
        return self.status == ZOMBIE

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> ProcInfo:
        cmdline = info.get("cmdline") or ()
        return cls(
            pid=int(info["pid"]),
            ppid=info.get("ppid"),
            name=info.get("name") or "",
            cmdline=tuple(str(part) for part in cmdline),
            exe=info.get("exe") or None,
            create_time=info.get("create_time"),
            status=info.get("status"),
            username=info.get("username"),
        )


class ProcessTable:
    """A snapshot of the process table, indexed by pid.

    ``self_pid`` is the pid of the process doing the check (the Ansible module); it and its
    ancestors (the shell chain Ansible started it from) are never reported as daemon instances,
    so a command line like ``ansible ... -a 'name=sm_qm_main'`` cannot match a profile.
    """

    def __init__(self, processes: Iterable[ProcInfo], self_pid: int | None = None) -> None:
        self._by_pid: dict[int, ProcInfo] = {proc.pid: proc for proc in processes}
        self.self_pid = os.getpid() if self_pid is None else self_pid
        self._children: dict[int, list[int]] | None = None
        self._own_ns_depth: int | None = None
        self.excluded: frozenset[int] = frozenset([self.self_pid, *self.ancestors(self.self_pid)])

    @classmethod
    def scan(cls, self_pid: int | None = None) -> ProcessTable:
        """Read every process once. Processes that vanish during the scan are skipped; fields
        that cannot be read (AccessDenied) are ``None``."""
        if psutil is None:  # pragma: no cover
            raise SuiteError(PSUTIL_MISSING)
        processes = []
        for proc in psutil.process_iter(SCAN_ATTRS, ad_value=None):
            try:
                info = proc.info
            except (psutil.NoSuchProcess, psutil.AccessDenied):  # pragma: no cover
                continue
            if info.get("pid") is None:  # pragma: no cover
                continue
            processes.append(ProcInfo.from_info(info))
        return cls(processes, self_pid=self_pid)

    def __len__(self) -> int:
        return len(self._by_pid)

    def __contains__(self, pid: object) -> bool:
        return pid in self._by_pid

    def __iter__(self) -> Iterator[ProcInfo]:
        return iter(self._by_pid.values())

    def in_nested_pid_ns(self, pid: int) -> bool:
        """Whether ``pid`` lives in a PID namespace nested below ours (a container's process seen
        from its host): such a process belongs to that container's suite, not to this host's.
        Read from the ``NSpid:`` line of ``/proc/PID/status`` (no ptrace needed); only called
        for processes that match a daemon, so the scan itself stays one pass."""
        if self._own_ns_depth is None:
            self._own_ns_depth = pid_ns_depth("self") or 1
        depth = pid_ns_depth(pid)
        return depth is not None and depth > self._own_ns_depth

    def get(self, pid: int | None) -> ProcInfo | None:
        if pid is None:
            return None
        return self._by_pid.get(pid)

    def ancestors(self, pid: int) -> list[int]:
        """The parent, grandparent, ... of ``pid`` up to the root (pid 1 or a process whose
        parent is unknown). ``pid`` itself is not included. Loops are cut."""
        chain: list[int] = []
        seen = {pid}
        proc = self._by_pid.get(pid)
        while proc is not None and proc.ppid:
            parent = proc.ppid
            if parent in seen:
                break
            chain.append(parent)
            seen.add(parent)
            proc = self._by_pid.get(parent)
        return chain

    def children(self, pid: int) -> list[int]:
        if self._children is None:
            children: dict[int, list[int]] = {}
            for proc in self._by_pid.values():
                if proc.ppid is not None:
                    children.setdefault(proc.ppid, []).append(proc.pid)
            self._children = children
        return sorted(self._children.get(pid, []))

    def is_descendant_or_self(self, pid: int, of: Iterable[int]) -> bool:
        """True when ``pid`` is one of ``of`` or a descendant of one of them."""
        roots = set(of)
        if pid in roots:
            return True
        return any(ancestor in roots for ancestor in self.ancestors(pid))

    def matching(self, daemon: Daemon, instance: str | None = None) -> list[ProcInfo]:
        """The live processes that are instances of ``daemon`` (its anchored ``match`` regexes on
        the space-joined command line and optionally the executable; ``instance`` must appear in
        the command line). Excludes zombies, this process and its ancestors. Sorted by start time,
        then pid, so the first entry is the oldest instance."""
        found = []
        for proc in self._by_pid.values():
            if proc.pid in self.excluded or proc.is_zombie or not proc.cmdline:
                continue
            if daemon.matches(proc.cmdline, proc.exe, instance) and not self.in_nested_pid_ns(
                proc.pid
            ):
                found.append(proc)
        found.sort(key=lambda proc: (proc.create_time or 0.0, proc.pid))
        return found
