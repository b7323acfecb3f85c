# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a PID record still its daemon's?  ``judge(record, daemon) -> Verdict``.

A record is ``stale`` only when that is proven: the process is gone or a zombie, the record was
written in another boot, or the process at that PID is provably another program (its start time
differs from the recorded one by more than ``START_TIME_TOLERANCE`` seconds, its executable
differs from the recorded one, or - when only a PID was recorded - it does not satisfy the
daemon's match rule).  When the facts cannot be read (permission denied, a record written on
another host, no daemon to compare with) the verdict is ``unknown``: callers leave such records
alone.  ``invalid`` records (see pidstore.parse_pid) are never looked up as a PID at all.

Nothing here sends a signal.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Optional

try:
    import psutil
except ImportError:  # pragma: no cover - reported by the module when it needs it
    psutil = None  # type: ignore[assignment]

from ansible_collections.daemonops.suite.plugins.module_utils._suite.pidstore import PidRecord

LIVE = "live"
STALE = "stale"
INVALID = "invalid"
UNKNOWN = "unknown"
STATUSES = (LIVE, STALE, INVALID, UNKNOWN)

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


def facts_from_psutil(pid: int) -> ProcessFacts:
    """Read one process with psutil (no scan of the whole table)."""
    if psutil is None:  # pragma: no cover
        raise RuntimeError("the psutil Python library is required on the target")
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
        exe=getattr(proc, "exe", None),
        cmdline=cmdline or None,
        exe_denied=getattr(proc, "exe", None) is None,
        cmdline_denied=not cmdline,
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
    if record.start_time is not None:
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
        if not daemon.matches(list(facts.cmdline), facts.exe, instance):
            where = f" of instance {instance!r}" if instance else ""
            return Verdict(
                STALE,
                f"{_describe(facts)} does not match the rule of daemon "
                f"{daemon.name!r}{where}: the PID was reused by another program",
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
