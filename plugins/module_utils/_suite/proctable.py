# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass over the process table: who runs, with which command line, under which parent.

``ProcessTable.scan()`` reads every process once and keeps a snapshot indexed by pid. On Linux
it reads ``/proc`` directly (``stat``, ``cmdline``, ``status`` and the ``exe`` link of each
process, once each), giving the same values as psutil's ``name()``, ``cmdline()``, ``exe()``,
``create_time()``, ``status()`` and ``username()``; elsewhere it uses ``psutil.process_iter``.
Everything else (matching daemons, ancestor chains, descendants) works on that snapshot, so a
health check costs one pass however many daemons a profile has.

``ProcessTable.scan_named()`` is the narrow pass a health check uses: it reads only the command
line of each process, and the rest of ``/proc/PID`` (stat, status, exe) only for the processes
asked for: those whose command line matches a daemon, and their ancestors, socket owners and PID
records as they are looked up. It answers every question the full table answers; a question
about all processes (``children``, iteration) reads all of them first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    SuiteError,
    load_psutil,
)

try:
    import pwd
except ImportError:  # pragma: no cover - not POSIX: the psutil path is used
    pwd = None  # type: ignore[assignment]

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import Daemon

SCAN_ATTRS = ["pid", "ppid", "name", "cmdline", "exe", "create_time", "status", "username"]

ZOMBIE = "zombie"

PROC = "/proc"

# /proc/PID/stat state letters, named as psutil names them (psutil._pslinux.PROC_STATUSES).
PROC_STATUSES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": ZOMBIE,
    "X": "dead",
    "x": "dead",
    "K": "wake-kill",
    "W": "waking",
    "I": "idle",
    "P": "parked",
}

# psutil decodes /proc text with the file system encoding and its error handler.
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()
_READ_SIZE = 16384
_GONE = (FileNotFoundError, ProcessLookupError)


class _Vanished(Exception):
    """The process exited while it was being read: leave it out of the snapshot."""


def procfs_available(proc: str = PROC) -> bool:
    """Whether ``proc`` is a Linux-like procfs the direct reader understands."""
    return os.path.exists(f"{proc}/self/stat") and os.path.exists(f"{proc}/stat")


def _read(path: str) -> bytes:
    """The whole content of a /proc file (one open, reads until EOF). A read shorter than asked
    is the end: these files are filled to the size asked for (seq_file, cmdline), so most are
    read with one ``read`` instead of two (a second one costs a quarter of the file's cost)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) < _READ_SIZE:
            return data
        chunks = [data]
        while True:
            chunk = os.read(fd, _READ_SIZE)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_stat(data: bytes) -> tuple[str, str, int, int]:
    """``(comm, state letter, ppid, starttime in clock ticks)`` from ``/proc/PID/stat``.

    The name sits between the first ``(`` and the *last* ``)``: it may itself hold spaces and
    parentheses (psutil parses it the same way)."""
    rpar = data.rfind(b")")
    comm = data[data.find(b"(") + 1 : rpar].decode(_FS_ENCODING, _FS_ERRORS)
    fields = data[rpar + 2 :].split()
    return comm, fields[0].decode("ascii", "replace"), int(fields[1]), int(fields[19])


def parse_cmdline(data: bytes) -> list[str]:
    """The argument list from ``/proc/PID/cmdline``, split exactly as psutil splits it.

    Arguments are NUL-separated with a trailing NUL. A process that rewrote its command line
    (setproctitle, or daemons that write over their argv memory) often leaves it without NUL
    separators: when the data does not end with NUL it is split on spaces, and when it ends with
    NUL but holds a single NUL-free part containing spaces, that part is split on spaces too."""
    text = data.decode(_FS_ENCODING, _FS_ERRORS)
    if "\r" in text:  # psutil reads the file in text mode (universal newlines)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return []
    sep = "\x00" if text.endswith("\x00") else " "
    if text.endswith(sep):
        text = text[:-1]
    parts = text.split(sep)
    if sep == "\x00" and len(parts) == 1 and " " in text:
        parts = text.split(" ")
    return parts


def joined_cmdline(data: bytes) -> str:
    """``" ".join(parse_cmdline(data))`` without building the list (what a daemon's ``match``
    regex reads, for every process)."""
    text = data.decode(_FS_ENCODING, _FS_ERRORS)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\x00"):
        return text[:-1].replace("\x00", " ")
    return text[:-1] if text.endswith(" ") else text


def parse_real_uid(status: bytes) -> int | None:
    """The real uid (first number of the ``Uid:`` line) of ``/proc/PID/status``."""
    start = status.find(b"\nUid:")
    if start < 0:
        return None
    fields = status[start + 5 : status.find(b"\n", start + 5)].split()
    return int(fields[0]) if fields else None


DELETED_SUFFIX = " (deleted)"


def clean_exe_link(link: str) -> str:
    """The ``/proc/PID/exe`` link target as psutil returns it: anything after a NUL is cut and a
    `` (deleted)`` suffix is dropped unless a file of that exact name exists."""
    return split_exe_link(link)[0]


def split_exe_link(link: str) -> tuple[str, bool]:
    """``(path, deleted)`` of a ``/proc/PID/exe`` link target: ``deleted`` is True when the
    kernel marked the binary `` (deleted)`` (removed or replaced on disk while the process runs,
    e.g. by a package upgrade); the path is the one the process was started from."""
    link = link.split("\x00")[0]
    if link.endswith(DELETED_SUFFIX) and not os.path.exists(link):
        return link[: -len(DELETED_SUFFIX)], True
    return link, False


def extend_name(comm: str, cmdline: Iterable[str] | None) -> str:
    """psutil's ``name()``: the kernel cuts ``comm`` to 15 characters; when it is that long and
    the base name of argv[0] starts with it, the base name is the name."""
    if len(comm) >= 15 and cmdline:
        first = next(iter(cmdline))
        extended = os.path.basename(first)
        if extended.startswith(comm):
            return extended
    return comm


def boot_time(proc: str = PROC) -> float:
    """System boot time in epoch seconds: the ``btime`` line of ``/proc/stat`` (psutil's
    source for ``create_time()``)."""
    for line in _read(f"{proc}/stat").splitlines():
        if line.startswith(b"btime"):
            return float(line.strip().split()[1])
    raise SuiteError(f"no btime line in {proc}/stat: cannot compute process start times")


def _guess_exe(cmdline: tuple[str, ...]) -> str | None:
    """psutil's fallback when the exe link cannot be read: argv[0] if it is an absolute path to
    an executable file."""
    if cmdline:
        first = cmdline[0]
        if os.path.isabs(first) and os.path.isfile(first) and os.access(first, os.X_OK):
            return first
    return None


class _ProcReader:
    """Reads processes from a procfs; one instance per scan (boot time and user names cached)."""

    def __init__(self, proc: str = PROC) -> None:
        self.proc = proc
        self.boot_time = boot_time(proc)
        self.clock_ticks = os.sysconf("SC_CLK_TCK")
        self.users: dict[int, str] = {}

    def username(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        name = self.users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self.users[uid] = name
        return name

    @staticmethod
    def _field(path: str) -> bytes | None:
        """A per-process file, ``None`` when access is denied; raises _Vanished when gone."""
        try:
            return _read(path)
        except _GONE as exc:
            raise _Vanished(path) from exc
        except OSError:
            return None

    def joined_cmdlines(self) -> dict[int, str]:
        """``{pid: space-joined command line}`` of every process ("" when unreadable)."""
        joined: dict[int, str] = {}
        proc = self.proc
        for entry in os.listdir(proc):
            if entry.isdigit():
                try:
                    raw = _read(f"{proc}/{entry}/cmdline")
                except _GONE:
                    continue
                except OSError:
                    raw = b""
                joined[int(entry)] = joined_cmdline(raw) if raw else ""
        return joined

    def read(self, pid: int) -> ProcInfo:
        base = f"{self.proc}/{pid}"
        stat = self._field(base + "/stat")
        comm: str | None = None
        letter: str | None = None
        ppid: int | None = None
        create_time: float | None = None
        start_ticks: int | None = None
        if stat is not None:
            comm, letter, ppid, start_ticks = parse_stat(stat)
            create_time = start_ticks / self.clock_ticks + self.boot_time
        raw_cmdline = self._field(base + "/cmdline")
        cmdline = tuple(parse_cmdline(raw_cmdline)) if raw_cmdline is not None else ()
        status_file = self._field(base + "/status")
        uid = parse_real_uid(status_file) if status_file is not None else None
        exe, exe_read, exe_deleted = self._exe(base, cmdline, letter)
        return ProcInfo(
            pid=pid,
            ppid=ppid,
            name=extend_name(comm, cmdline) if comm is not None else "",
            cmdline=cmdline,
            exe=exe or None,
            create_time=create_time,
            status=PROC_STATUSES.get(letter, "?") if letter is not None else None,
            username=self.username(uid),
            uid=uid,
            comm=comm,
            start_ticks=start_ticks,
            exe_read=exe_read,
            exe_deleted=exe_deleted,
        )

    @staticmethod
    def _exe(
        base: str, cmdline: tuple[str, ...], letter: str | None
    ) -> tuple[str | None, bool, bool]:
        """``(exe, read, deleted)``: ``read`` is False when the link could not be read and
        ``exe`` is psutil's guess from argv[0] (which a process chooses itself)."""
        try:
            path, deleted = split_exe_link(os.readlink(base + "/exe"))
            return path, True, deleted
        except _GONE as exc:
            if not os.path.lexists(base):
                raise _Vanished(base) from exc
            if letter == "Z":
                return None, False, False
            return _guess_exe(cmdline), False, False  # kernel threads: no exe, no cmdline
        except OSError:  # access denied
            return _guess_exe(cmdline), False, False

    def scan(self) -> list[ProcInfo]:
        processes = []
        for entry in os.listdir(self.proc):
            if not entry.isdigit():
                continue
            try:
                processes.append(self.read(int(entry)))
            except _Vanished:
                continue
        return processes


def scan_procfs(proc: str = PROC) -> list[ProcInfo]:
    """Every process of ``proc`` read directly (see ``_ProcReader``)."""
    return _ProcReader(proc).scan()


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
    uid: int | None = None
    comm: str | None = None  # the kernel's name (15 characters at most), None if unknown
    start_ticks: int | None = None  # start time in clock ticks since boot (/proc/PID/stat 22)
    exe_read: bool = True  # False: exe is unknown or only guessed from argv[0]
    exe_deleted: bool = False  # the binary was removed or replaced on disk since it started

    @property
    def argv0(self) -> str | None:
        """argv[0] as the process shows it (its own choice: may be any text)."""
        if self.cmdline and self.cmdline[0]:
            return self.cmdline[0]
        return None

    @property
    def identity(self) -> dict[str, Any]:
        """What the process *is*, for reports: ``{pid, exe, comm, argv0}``. ``exe`` is None when
        the executable link cannot be read (then it is never guessed from argv[0]); ``argv0`` is
        None when it names the same program as ``exe`` (nothing to add)."""
        exe = self.exe if self.exe_read else None
        argv0 = self.argv0
        if argv0 is not None and exe is not None:
            first = argv0.split(" ", 1)[0]
            if first == exe or os.path.basename(first) == os.path.basename(exe):
                argv0 = None
        return {
            "pid": self.pid,
            "exe": exe,
            "exe_deleted": self.exe_deleted,
            "comm": self.comm if self.comm is not None else (self.name or None),
            "argv0": argv0,
        }

    @property
    def true_label(self) -> str:
        """``/usr/bin/python3.11[4242] (argv[0] bacula-sd)``: the process named by its executable
        (or comm when the executable cannot be read), with argv[0] when that differs."""
        ident = self.identity
        what = ident["exe"] or ident["comm"] or "?"
        if ident["exe"] and ident["exe_deleted"]:
            what += " (deleted)"
        extra = []
        if ident["exe"] is None and self.exe_read is False:
            extra.append("executable unreadable")
        if ident["argv0"] is not None and os.path.basename(ident["argv0"]) != what:
            extra.append(f"argv[0] {ident['argv0']}")
        return f"{what}[{self.pid}]" + (f" ({', '.join(extra)})" if extra else "")

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
            uid=info.get("uid"),
            comm=info.get("comm"),
            start_ticks=info.get("start_ticks"),
            exe_read=bool(info.get("exe")),
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
        self._candidates_by_instance: dict[str | None, list[tuple[int, str]]] = {}
        self.excluded: frozenset[int] = frozenset([self.self_pid, *self.ancestors(self.self_pid)])

    @classmethod
    def scan(cls, self_pid: int | None = None, use_procfs: bool | None = None) -> ProcessTable:
        """Read every process once. Processes that vanish during the scan are skipped; fields
        that cannot be read (AccessDenied) are ``None``.

        ``use_procfs``: None (default) reads ``/proc`` directly when it is a Linux procfs and
        uses psutil otherwise; False forces psutil; True forces ``/proc``."""
        if use_procfs is None:
            use_procfs = pwd is not None and procfs_available(PROC)
        if use_procfs:
            return cls(scan_procfs(PROC), self_pid=self_pid)
        return cls(cls._scan_psutil(), self_pid=self_pid)

    @classmethod
    def scan_named(cls, self_pid: int | None = None) -> ProcessTable:
        """A table that reads each process's command line now and the rest on first use (see
        the module's docstring); the full ``scan`` where ``/proc`` is not a Linux procfs."""
        if pwd is not None and procfs_available(PROC):
            return _NamedProcessTable(_ProcReader(PROC), self_pid=self_pid)
        return cls.scan(self_pid=self_pid)

    @staticmethod
    def _scan_psutil() -> list[ProcInfo]:
        psutil = load_psutil()
        processes = []
        for proc in psutil.process_iter(SCAN_ATTRS, ad_value=None):
            try:
                info = proc.info
            except (psutil.NoSuchProcess, psutil.AccessDenied):  # pragma: no cover
                continue
            if info.get("pid") is None:  # pragma: no cover
                continue
            processes.append(ProcInfo.from_info(info))
        return processes

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
        proc = self.get(pid)
        while proc is not None and proc.ppid:
            parent = proc.ppid
            if parent in seen:
                break
            chain.append(parent)
            seen.add(parent)
            proc = self.get(parent)
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
        return self._select(daemon, True, instance)

    def named(self, daemon: Daemon, instance: str | None = None) -> list[ProcInfo]:
        """The live processes that carry ``daemon``'s name: its ``match.cmdline`` regex (and
        ``instance`` in the command line), whatever their executable, user or ancestry; the
        other rules are judged by ``identity.Identifier``. Same exclusions and order as
        ``matching``."""
        return self._select(daemon, False, instance)

    def _command_lines(self) -> Iterable[tuple[int, str]]:
        """``(pid, space-joined command line)`` of every process."""
        return ((proc.pid, proc.cmdline_str) for proc in self._by_pid.values())

    def _candidates(self, instance: str | None) -> list[tuple[int, str]]:
        """``_command_lines`` that may be a daemon's: not empty, holding ``instance``, not this
        process or its ancestors. Kept per instance: every daemon of a profile asks."""
        found = self._candidates_by_instance.get(instance)
        if found is None:
            excluded = self.excluded
            found = self._candidates_by_instance[instance] = [
                (pid, joined)
                for pid, joined in self._command_lines()
                if joined and (not instance or instance in joined) and pid not in excluded
            ]
        return found

    def _select(self, daemon: Daemon, exe: bool, instance: str | None) -> list[ProcInfo]:
        found = []
        for pid, joined in self._candidates(instance):
            # the joined command line as a one-part argv: Daemon.matches joins it unchanged
            if not daemon.matches((joined,), None, instance):
                continue
            proc = self.get(pid)
            if proc is None or proc.is_zombie or not proc.cmdline:
                continue
            if exe and not daemon.matches(proc.cmdline, proc.exe, instance):
                continue
            if not self.in_nested_pid_ns(pid):
                found.append(proc)
        found.sort(key=lambda proc: (proc.create_time or 0.0, proc.pid))
        return found


class _NamedProcessTable(ProcessTable):
    """``ProcessTable.scan_named()``: the command lines of all processes, the other fields read
    when a process is first looked up (and kept: one read per process at most)."""

    def __init__(self, reader: _ProcReader, self_pid: int | None = None) -> None:
        self._reader = reader
        self._joined = reader.joined_cmdlines()
        self._loaded: dict[int, ProcInfo | None] = {}
        self._complete = False
        super().__init__((), self_pid=self_pid)

    def _load(self, pid: int) -> ProcInfo | None:
        if pid in self._loaded:
            return self._loaded[pid]
        proc = None
        if pid in self._joined:
            try:
                proc = self._reader.read(pid)
            except _Vanished:
                proc = None
        self._loaded[pid] = proc
        if proc is not None:
            self._by_pid[pid] = proc
        return proc

    def _load_all(self) -> None:
        if not self._complete:
            for pid in self._joined:
                self._load(pid)
            self._by_pid = {pid: proc for pid, proc in self._loaded.items() if proc is not None}
            self._complete = True

    def __len__(self) -> int:
        self._load_all()
        return len(self._by_pid)

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and self.get(pid) is not None

    def __iter__(self) -> Iterator[ProcInfo]:
        self._load_all()
        return iter(self._by_pid.values())

    def get(self, pid: int | None) -> ProcInfo | None:
        if pid is None:
            return None
        return self._load(pid)

    def children(self, pid: int) -> list[int]:
        self._load_all()
        return super().children(pid)

    def _command_lines(self) -> Iterable[tuple[int, str]]:
        return self._joined.items()
