# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is this process that daemon?  Is a PID record still its daemon's?

Process identity (``Identifier``): a process is a *member* of a daemon only when it passes
every rule of that daemon: its name (``match.cmdline``, and the ``instance`` text), its
executable (``match.exe``, read from ``/proc/PID/exe``; a binary replaced on disk while running
is still itself), its user (``match.user``) and its ancestry (``ancestor``: a descendant of a
member of that daemon).  A process that has the name but fails a rule is an *impostor*: it is
never counted, and is reported with what it is (``ProcInfo.identity``).  A rule that cannot be
checked (the executable of another user's process without root) does not reject the process; it
is reported as a note.

Record identity (``judge(record, daemon) -> Verdict``): a record is ``stale`` only when that is
proven: the process is gone or a zombie, the record was written in another boot, or the process
at that PID is provably another program. Start times are compared as boot-relative facts: the
start in clock ticks since boot (``/proc/PID/stat`` field 22) with the boot id, which a wall-clock
step (NTP, VM resume) does not change. Records written in the older form (an epoch start time
only) are compared with a tolerance of ``START_TIME_TOLERANCE`` seconds. A different executable,
or - when only a PID was recorded - a process that does not pass the daemon's rules, is another
program too. When the facts cannot be read (permission denied, a record written on another
host, no daemon to compare with) the verdict is ``unknown``: callers leave such records alone.
``invalid`` records (see pidstore.parse_pid) are never looked up as a PID at all.

Nothing here sends a signal.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

try:
    import pwd
except ImportError:  # pragma: no cover - not POSIX
    pwd = None  # type: ignore[assignment]

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.states import (
    INVALID,
    LIVE,
    STALE,
    UNKNOWN,
)

if TYPE_CHECKING:  # pragma: no cover - records come from pidstore, imported where they are read
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.pidstore import PidRecord

START_TIME_TOLERANCE = 1.0
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str


@dataclass(frozen=True)
class ProcessFacts:
    """What could be read about the process at a PID. ``None`` means "could not be read"."""

    pid: int
    exists: bool
    zombie: bool = False
    create_time: Optional[float] = None
    exe: Optional[str] = None
    cmdline: Optional[tuple[str, ...]] = None  # argv
    exe_denied: bool = False
    cmdline_denied: bool = False
    start_ticks: Optional[int] = None  # clock ticks since boot (/proc/PID/stat field 22)


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    boot_id: Optional[str]

    @classmethod
    def local(cls) -> HostFacts:
        try:
            with open(BOOT_ID_PATH, encoding="ascii") as handle:
                boot_id: Optional[str] = handle.read().strip() or None
        except OSError:
            boot_id = None
        return cls(hostname=socket.gethostname(), boot_id=boot_id)

    def is_this_host(self, host: str) -> bool:
        def short(name: str) -> str:
            return name.strip().lower().split(".", 1)[0]

        return short(host) in (short(self.hostname), "localhost")


def psutil_missing() -> SuiteError:
    """The error for a target without /proc and without psutil, naming its interpreter."""
    return SuiteError(
        f"cannot read processes on this target: there is no Linux /proc and the psutil Python "
        f"library is not installed for {sys.executable or 'the Python interpreter'}; install "
        f"it for that interpreter (python3-psutil, or {sys.executable or 'python3'} -m pip "
        "install psutil) or set ansible_python_interpreter to a Python that has it"
    )


def facts_from_psutil(pid: int) -> ProcessFacts:
    """Read one process with psutil (no scan of the whole table)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - depends on the target
        raise psutil_missing() from None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            create_time = proc.create_time()
            try:
                cmdline: Optional[tuple[str, ...]] = tuple(proc.cmdline())
                cmdline_denied = False
            except psutil.AccessDenied:
                cmdline, cmdline_denied = None, True
            try:
                exe: Optional[str] = proc.exe() or None
                exe_denied = False
            except psutil.AccessDenied:
                exe, exe_denied = None, True
    except psutil.NoSuchProcess:
        return ProcessFacts(pid=pid, exists=False)
    except psutil.AccessDenied:
        return ProcessFacts(pid=pid, exists=True, exe_denied=True, cmdline_denied=True)
    return ProcessFacts(
        pid=pid,
        exists=True,
        zombie=status == psutil.STATUS_ZOMBIE,
        create_time=create_time,
        exe=exe,
        cmdline=cmdline,
        exe_denied=exe_denied,
        cmdline_denied=cmdline_denied,
    )


def facts_from_table(proc_table: Any, pid: int) -> ProcessFacts:
    """Facts from a scanned table (``proctable.ProcessTable``: ``.get(pid)`` -> ProcInfo)."""
    proc = proc_table.get(pid)
    if proc is None:
        return ProcessFacts(pid=pid, exists=False)
    cmdline = tuple(getattr(proc, "cmdline", ()) or ())
    return ProcessFacts(
        pid=pid,
        exists=True,
        zombie=getattr(proc, "status", None) == "zombie",
        create_time=getattr(proc, "create_time", None),
        exe=getattr(proc, "exe", None) if getattr(proc, "exe_read", True) else None,
        cmdline=cmdline or None,
        exe_denied=getattr(proc, "exe", None) is None or not getattr(proc, "exe_read", True),
        cmdline_denied=not cmdline,
        start_ticks=getattr(proc, "start_ticks", None),
    )


def _same_exe(recorded: str, actual: str) -> bool:
    def clean(path: str) -> str:
        path = path.strip()
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        return os.path.normpath(path)

    return clean(recorded) == clean(actual)


def _describe(facts: ProcessFacts) -> str:
    if facts.cmdline:
        text = " ".join(facts.cmdline)
        text = text if len(text) <= 80 else text[:77] + "..."
        return f"PID {facts.pid} ({text!r})"
    return f"PID {facts.pid}"


def judge(
    record: PidRecord,
    daemon: Any = None,
    proc_table: Any = None,
    *,
    instance: Optional[str] = None,
    host: Optional[HostFacts] = None,
) -> Verdict:
    """Judge one record. ``daemon`` is the profile's Daemon the record belongs to (or None).

    ``proc_table`` (optional) is a scanned ProcessTable; without it the PID is read with psutil.
    ``instance``: a string the daemon's command line must contain (several instances per host).
    """
    if record.error:
        return Verdict(UNKNOWN, record.error)
    if record.pid is None:
        return Verdict(INVALID, record.invalid_reason or "no usable PID recorded")
    host = host or HostFacts.local()
    if record.host and not host.is_this_host(record.host):
        return Verdict(
            UNKNOWN, f"recorded on host {record.host!r}, this is {host.hostname!r}; not judged here"
        )
    if record.boot_id and host.boot_id and record.boot_id != host.boot_id:
        return Verdict(
            STALE, f"recorded in another boot (boot id {record.boot_id}, now {host.boot_id})"
        )
    if proc_table is not None:
        facts = facts_from_table(proc_table, record.pid)
    else:
        facts = facts_from_psutil(record.pid)
    if not facts.exists:
        return Verdict(STALE, f"no process with PID {record.pid}")
    if facts.zombie:
        return Verdict(STALE, f"PID {record.pid} is a zombie (the process has exited)")
    ticks_judged = False
    same_boot = not (record.boot_id and host.boot_id and record.boot_id != host.boot_id)
    if record.start_ticks is not None and same_boot and facts.start_ticks is not None:
        ticks_judged = True
        if facts.start_ticks != record.start_ticks:
            return Verdict(
                STALE,
                f"{_describe(facts)} started {facts.start_ticks} clock ticks after boot, the "
                f"record says {record.start_ticks}: the PID was reused by another process",
            )
    elif record.start_ticks is not None and record.start_time is None:
        return Verdict(UNKNOWN, f"cannot read the start (clock ticks) of PID {record.pid}")
    if record.start_time is not None and not ticks_judged:
        if facts.create_time is None:
            return Verdict(UNKNOWN, f"cannot read the start time of PID {record.pid}")
        delta = facts.create_time - record.start_time
        if abs(delta) > START_TIME_TOLERANCE:
            return Verdict(
                STALE,
                f"{_describe(facts)} started at {facts.create_time:.2f}, the record says "
                f"{record.start_time:.2f} ({delta:+.1f} s): the PID was reused by another process",
            )
    if record.exe:
        if facts.exe is None:
            why = "permission denied" if facts.exe_denied else "no executable"
            return Verdict(UNKNOWN, f"cannot read the executable of PID {record.pid} ({why})")
        if not _same_exe(record.exe, facts.exe):
            return Verdict(
                STALE,
                f"{_describe(facts)} runs {facts.exe}, the record says {record.exe}: "
                "another program",
            )
    if record.only_pid:
        if daemon is None:
            return Verdict(
                UNKNOWN,
                f"only a PID was recorded and no daemon named {record.name!r} is in the profile "
                f"to compare PID {record.pid} with",
            )
        if facts.cmdline is None:
            why = "permission denied" if facts.cmdline_denied else "empty command line"
            return Verdict(UNKNOWN, f"cannot read the command line of PID {record.pid} ({why})")
        proc = proc_table.get(record.pid) if proc_table is not None else None
        failed = rule_failure(daemon, proc)[0] if proc is not None else None
        if failed is not None or not daemon.matches(list(facts.cmdline), None, instance):
            where = f" of instance {instance!r}" if instance else ""
            why = f" ({failed})" if failed else ""
            return Verdict(
                STALE,
                f"{_describe(facts)} does not match the rule of daemon "
                f"{daemon.name!r}{where}{why}: the PID was reused by another program",
            )
        return Verdict(LIVE, f"{_describe(facts)} matches daemon {daemon.name!r}")
    return Verdict(LIVE, f"{_describe(facts)} is the recorded process")


def daemon_for(name: str, daemons: dict[str, Any]) -> Any:
    """The daemon a record name belongs to: the exact name, else the longest daemon name that
    the record name starts with followed by one of ``. _ - : @`` and a suffix (``data_server.1``)."""
    if name in daemons:
        return daemons[name]
    best = None
    for daemon_name, daemon in daemons.items():
        if (
            name.startswith(daemon_name)
            and len(name) > len(daemon_name)
            and name[len(daemon_name)] in "._-:@"
            and (best is None or len(daemon_name) > len(best[0]))
        ):
            best = (daemon_name, daemon)
    return best[1] if best else None


# ----------------------------------------------------------------------------- process identity


def _uid_of(user: Any) -> Optional[int]:
    if isinstance(user, int):
        return user
    if pwd is None:  # pragma: no cover
        return None
    try:
        return pwd.getpwnam(str(user)).pw_uid
    except KeyError:
        return None


def rule_failure(daemon: Any, proc: Any) -> tuple[Optional[str], list[str]]:
    """``(reason, notes)`` for the ``exe`` and ``user`` rules of ``daemon`` on ``proc`` (a
    ``ProcInfo``): ``reason`` names the first rule the process fails (None: it passes), ``notes``
    the rules that could not be checked (the process is not held responsible for those)."""
    notes: list[str] = []
    exe_regex = getattr(daemon, "exe_regex", None)
    if exe_regex is not None:
        exe = proc.exe if getattr(proc, "exe_read", True) else None
        if exe is None:
            notes.append(
                f"PID {proc.pid}: executable unreadable (another user's process; run with "
                "become: true), match.exe not verified"
            )
        elif not exe_regex.search(exe):
            deleted = " (deleted)" if getattr(proc, "exe_deleted", False) else ""
            return (
                f"executable {exe}{deleted} does not match match.exe {exe_regex.pattern!r}",
                notes,
            )
    user = getattr(daemon, "user", None)
    if user is not None:
        uid = getattr(proc, "uid", None)
        username = getattr(proc, "username", None)
        if uid is None and username is None:
            notes.append(f"PID {proc.pid}: user unreadable, match.user not verified")
        else:
            wanted = _uid_of(user)
            if uid is None:  # psutil gives the user name only
                uid = _uid_of(username)
            if wanted is not None and uid is not None:
                ok = uid == wanted
            else:  # a user name unknown on this host: compare names
                ok = username is not None and str(username) == str(user)
            if not ok:
                who = (
                    f"{username} (uid {uid})"
                    if username and str(username) != str(uid)
                    else (f"uid {uid}")
                )
                return f"runs as {who}, match.user is {user!r}", notes
    return None, notes


def impostor_entry(proc: Any, reason: str) -> dict[str, Any]:
    """``{pid, exe, exe_deleted, comm, argv0, reason}`` of a process that has a daemon's name
    but is not that daemon."""
    entry = dict(proc.identity)
    entry["reason"] = reason
    return entry


@dataclass
class _Judged:
    members: list = field(default_factory=list)
    impostors: list = field(default_factory=list)
    notes: list = field(default_factory=list)


class Identifier:
    """Which processes of a scanned ``ProcessTable`` are members of which daemon.

    ``daemons``: every daemon of the profile by name (ancestors are looked up here).
    ``instance``: a text every daemon's command line must contain (several suite instances on
    one host). Each daemon is judged once; ancestors first (recursively, the profile forbids
    cycles)."""

    def __init__(self, table: Any, daemons: dict[str, Any], instance: Optional[str] = None):
        self.table = table
        self.daemons = daemons
        self.instance = instance or None
        self._judged: dict[str, _Judged] = {}
        self._busy: set[str] = set()

    def _judge(self, daemon: Any) -> _Judged:
        done = self._judged.get(daemon.name)
        if done is not None:
            return done
        judged = _Judged()
        self._busy.add(daemon.name)
        try:
            ancestor_name = getattr(daemon, "ancestor", None)
            ancestor = self.daemons.get(ancestor_name) if ancestor_name else None
            ancestor_pids: Optional[set[int]] = None
            if ancestor_name:
                ancestor_pids = set()
                if ancestor is not None and ancestor.name not in self._busy:
                    ancestor_pids = {proc.pid for proc in self._judge(ancestor).members}
            for proc in self.table.named(daemon, self.instance):
                reason, notes = rule_failure(daemon, proc)
                if reason is None and ancestor_pids is not None:
                    chain = self.table.ancestors(proc.pid)
                    if not any(pid in ancestor_pids for pid in chain):
                        where = "" if ancestor_pids else f" ({ancestor_name} not running)"
                        reason = f"not a descendant of {ancestor_name}{where}"
                if reason is None:
                    judged.members.append(proc)
                    judged.notes.extend(notes)
                    if getattr(proc, "exe_deleted", False) and proc.exe:
                        judged.notes.append(
                            f"PID {proc.pid} runs {proc.exe} (deleted): the binary was replaced "
                            "or removed on disk since it started (restart it to run the new one)"
                        )
                else:
                    judged.impostors.append(proc_reason(proc, reason))
        finally:
            self._busy.discard(daemon.name)
        self._judged[daemon.name] = judged
        return judged

    def members(self, daemon: Any) -> list:
        """Every process passing all rules of ``daemon`` (forked workers included)."""
        return list(self._judge(daemon).members)

    def impostors(self, daemon: Any) -> list[tuple[Any, str]]:
        """``(ProcInfo, reason)`` of the processes that have the name but fail a rule."""
        return list(self._judge(daemon).impostors)

    def notes(self, daemon: Any) -> list[str]:
        """Rules that could not be checked on counted processes."""
        return list(self._judge(daemon).notes)

    def is_member(self, daemon: Any, pid: Optional[int]) -> bool:
        return pid is not None and any(proc.pid == pid for proc in self._judge(daemon).members)


def proc_reason(proc: Any, reason: str) -> tuple[Any, str]:
    return (proc, reason)
