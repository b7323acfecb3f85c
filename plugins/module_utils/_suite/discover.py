# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Discover: propose a suite profile from the process tree that runs on a host now.

``Discovery(procs, socks).propose(hints)`` walks the processes under the hints (a name pattern,
a systemd unit glob, listened ports, a PID), groups them into programs (one per process title
and executable), finds their listeners (from the ``SocketTable`` scan), their pidfiles (open
files, the process's working directory and directory arguments, the usual run directories) and
their systemd units (``/proc/PID/cgroup``), and returns a profile that ``load_profile`` accepts,
together with the same profile as YAML text whose comments mark every guess.

The pure pieces (titles, names, regexes, the worker-pool guess, the YAML writer, merging the
proposals of several hosts) are in ``proposal.py``.

Runs on targets: standard library only.
"""

from __future__ import annotations

import fnmatch
import os
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proposal import (
    Title,
    count_for,
    daemon_names,
    exe_regex,
    instance_guess,
    looks_like_pool,
    parse_cgroup_unit,
    pidfile_pattern,
    program_title,
    render_yaml,
    slug,
    suite_name_guess,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
        ProcessTable,
        ProcInfo,
    )
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
        SocketTable,
    )

PROC = "/proc"
RUN_DIRS = ("/run", "/var/run")
"""Where pidfiles usually are: these directories and their direct subdirectories."""

_MAX_PIDFILE = 4096


# --------------------------------------------------------------------------------------------
# Reading the host (beyond the process and socket scans)
# --------------------------------------------------------------------------------------------


def read_unit(pid: int, proc: str = PROC) -> t.Optional[str]:
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
            return parse_cgroup_unit(handle.read())
    except OSError:
        return None


def read_pidfile(path: str) -> tuple[t.Optional[int], bool]:
    """``(pid on the first line, whether the file holds only that line)``; (None, False) when
    it is not a small readable regular file starting with a number."""
    try:
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags)
    except OSError:
        return None, False
    try:
        if not os.path.isfile(path):
            return None, False
        data = os.read(fd, _MAX_PIDFILE + 1)
    except OSError:
        return None, False
    finally:
        os.close(fd)
    if len(data) > _MAX_PIDFILE:
        return None, False
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    if not lines or not lines[0].isdigit():
        return None, False
    return int(lines[0]), not any(lines[1:])


def _candidate_files(directory: str) -> list[str]:
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, e) for e in sorted(entries) if e.endswith(".pid")]


def _open_files(pid: int, proc: str) -> list[str]:
    base = f"{proc}/{pid}/fd"
    try:
        fds = os.listdir(base)
    except OSError:
        return []
    found = []
    for fd in fds:
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target.startswith("/") and target.endswith(".pid"):
            found.append(target)
    return found


def _process_dirs(proc_info: ProcInfo, proc: str) -> list[str]:
    """The working directory of a process and the directories its arguments name
    (``-D /var/lib/postgresql/15/main``)."""
    dirs = []
    try:
        dirs.append(os.readlink(f"{proc}/{proc_info.pid}/cwd"))
    except OSError:
        pass
    for arg in proc_info.cmdline[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value.startswith("/") and os.path.isdir(value):
            dirs.append(value)
    return [d for d in dirs if d != "/"]


def run_dirs(bases: t.Sequence[str] = RUN_DIRS) -> list[str]:
    """The run directories and their direct subdirectories (``/run/postgresql``)."""
    found: list[str] = []
    for base in bases:
        if not os.path.isdir(base):
            continue
        found.append(base)
        try:
            entries = sorted(os.listdir(base))
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(base, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                found.append(path)
    return found


# --------------------------------------------------------------------------------------------
# The discovery
# --------------------------------------------------------------------------------------------


@dataclass
class Hints:
    """Where the suite is: any combination; each adds the processes it finds as roots."""

    pid: t.Optional[int] = None
    name: t.Optional[str] = None
    unit: t.Optional[str] = None
    ports: t.Sequence[int] = ()

    def describe(self) -> str:
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.name:
            parts.append(f"name {self.name!r}")
        if self.unit:
            parts.append(f"unit {self.unit!r}")
        if self.ports:
            parts.append(f"ports {', '.join(str(p) for p in self.ports)}")
        return ", ".join(parts)


@dataclass
class Program:
    """One distinct program of the tree: a title and an executable."""

    title: Title
    exe: t.Optional[str]
    procs: list[ProcInfo] = field(default_factory=list)  # every process, workers included
    # the processes none of whose ancestors is of the same program (``procs`` without the
    # workers they forked); not to be confused with a suite instance (the ``instance`` option)
    heads: list[ProcInfo] = field(default_factory=list)
    name: str = ""
    ancestor: t.Optional[str] = None
    ports: list[int] = field(default_factory=list)
    addresses: dict[int, list[str]] = field(default_factory=dict)
    pidfiles: list[dict[str, t.Any]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)


@dataclass
class _Notes:
    """What the proposal says beside the data: YAML comments by dotted key, review lines, and
    what is gathered for one review line (interpreters, unreadable executables)."""

    comments: dict[str, str] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)
    interpreted: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


class Discovery:
    """Propose a profile from one scan of processes and sockets (see the module docstring)."""

    def __init__(
        self,
        procs: ProcessTable,
        socks: SocketTable,
        role: str = "server",
        suite_name: t.Optional[str] = None,
        pidfile_dirs: t.Sequence[str] = (),
        proc: str = PROC,
        system_run_dirs: t.Sequence[str] = RUN_DIRS,
        host: str = "",
    ) -> None:
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$", role or ""):
            raise SuiteError(f"role: {role!r} is not a role name ([A-Za-z0-9_-]+, e.g. server)")
        if suite_name is not None and not re.match(r"^[a-z0-9_]+$", suite_name):
            raise SuiteError(
                f"suite_name: {suite_name!r} must match [a-z0-9_]+ (e.g. {slug(suite_name).lower()})"
            )
        self.procs = procs
        self.socks = socks
        self.role = role
        self.suite_name = suite_name
        self.pidfile_dirs = list(pidfile_dirs)
        self.proc = proc
        self.system_run_dirs = list(system_run_dirs)
        self.host = host
        self._prefix = ""

    # ------------------------------------------------------------------ the tree

    def _eligible(self, info: ProcInfo) -> bool:
        return (
            info.pid not in self.procs.excluded
            and not info.is_zombie
            and bool(info.cmdline)
            and info.pid != 1
            and not self.procs.in_nested_pid_ns(info.pid)
        )

    def roots(self, hints: Hints) -> list[int]:
        """The processes the hints point at, without those below another such process."""
        found: set[int] = set()
        if hints.pid is not None:
            info = self.procs.get(hints.pid)
            if info is None or not self._eligible(info):
                raise SuiteError(
                    f"pid: no process {hints.pid} runs here (or it is this module's own chain or "
                    "PID 1); give the PID of the suite's master process (ps -ef)"
                )
            found.add(info.pid)
        if hints.name:
            try:
                pattern = re.compile(hints.name)
            except re.error as exc:
                raise SuiteError(
                    f"name: {hints.name!r} is not a valid regular expression: {exc}"
                ) from exc
            matched = {
                info.pid
                for info in self.procs
                if self._eligible(info)
                and (pattern.search(info.display_name) or pattern.search(info.name))
            }
            if not matched:
                raise SuiteError(
                    f"name: no process is called like {hints.name!r} (searched in the base "
                    "name of argv[0] and the kernel's process name); check with ps -e"
                )
            found |= matched
        if hints.unit:
            matched = {
                info.pid
                for info in self.procs
                if self._eligible(info)
                and fnmatch.fnmatchcase(read_unit(info.pid, self.proc) or "", hints.unit)
            }
            if not matched:
                raise SuiteError(
                    f"unit: no process runs in a systemd unit matching {hints.unit!r} (read from "
                    "/proc/PID/cgroup; without systemd there are no units: use name, pid or "
                    "ports)"
                )
            found |= matched
        for port in hints.ports:
            holders = [lst.pid for lst in self.socks.listeners(port) if lst.pid is not None]
            if not holders:
                why = f" ({self.socks.error})" if not self.socks.available else ""
                raise SuiteError(
                    f"ports: nothing listens on port {port} here, or its owner cannot be "
                    f"seen{why}; run with become: true or check with ss -ltnp"
                )
            for pid in holders:
                found.add(self._top_of_same_exe(pid))
        return sorted(
            pid for pid in found if not any(a in found for a in self.procs.ancestors(pid))
        )

    def _top_of_same_exe(self, pid: int) -> int:
        """Climb from a listener to the topmost ancestor running the same executable (the
        master of a pre-forked pool holds the port its workers inherited)."""
        info = self.procs.get(pid)
        top = pid
        for ancestor in self.procs.ancestors(pid):
            parent = self.procs.get(ancestor)
            if parent is None or info is None or not self._eligible(parent):
                break
            if parent.exe != info.exe or parent.exe is None:
                break
            top = ancestor
        return top

    def tree(self, roots: t.Sequence[int]) -> list[ProcInfo]:
        """The roots and all their descendants, in start order."""
        seen: set[int] = set()
        todo = list(roots)
        found: list[ProcInfo] = []
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            info = self.procs.get(pid)
            if info is None or not self._eligible(info):
                continue
            found.append(info)
            todo.extend(self.procs.children(pid))
        found.sort(key=lambda p: (p.create_time or 0.0, p.pid))
        return found

    # ------------------------------------------------------------------ programs

    def programs(self, tree: t.Sequence[ProcInfo]) -> list[Program]:
        by_key: dict[tuple[Title, t.Optional[str]], Program] = {}
        for info in tree:
            title = program_title(info.cmdline)
            key = (title, info.exe)
            program = by_key.get(key)
            if program is None:
                program = by_key[key] = Program(title=title, exe=info.exe)
            program.procs.append(info)
        programs = list(by_key.values())
        for program in programs:
            pids = {p.pid for p in program.procs}
            program.heads = [
                p for p in program.procs if not any(a in pids for a in self.procs.ancestors(p.pid))
            ]
        names, self._prefix = daemon_names([p.title.base for p in programs])
        for program, name in zip(programs, names):
            program.name = name
        return programs

    def _ancestry(self, programs: list[Program]) -> None:
        owner = {p.pid: prog.name for prog in programs for p in prog.procs}
        for program in programs:
            chains = []
            for head in program.heads:
                chain = []
                for pid in self.procs.ancestors(head.pid):
                    name = owner.get(pid)
                    if name is not None and name != program.name and name not in chain:
                        chain.append(name)
                chains.append(chain)
            if not chains or not chains[0]:
                continue
            common = [name for name in chains[0] if all(name in chain for chain in chains[1:])]
            program.ancestor = common[0] if common else None

    def _ports(self, programs: list[Program]) -> dict[int, str]:
        """Listened ports of the tree's processes, by program; a pool's port goes to the
        ancestor daemon (the pool's parent holds the socket the workers inherited)."""
        owner = {p.pid: prog for prog in programs for p in prog.procs}
        by_name = {prog.name: prog for prog in programs}
        moved: dict[int, str] = {}
        for port in sorted(self.socks.listening):
            for listener in self.socks.listeners(port):
                program = owner.get(listener.pid) if listener.pid is not None else None
                if program is None:
                    continue
                parents = [p.ppid for p in program.heads]
                if looks_like_pool(parents) and program.ancestor in by_name:
                    moved[port] = program.name
                    program = by_name[program.ancestor]
                if not any(port in other.ports for other in programs):
                    program.ports.append(port)
                addresses = program.addresses.setdefault(port, [])
                if listener.address not in addresses:
                    addresses.append(listener.address)
        return moved

    def _pidfiles(self, programs: list[Program]) -> None:
        owner = {p.pid: prog for prog in programs for p in prog.heads}
        paths: dict[str, str] = {}  # real path -> where it was found (/var/run is /run)
        for prog in programs:
            for info in prog.heads:
                for path in _open_files(info.pid, self.proc):
                    paths.setdefault(os.path.realpath(path), f"open by {info.label}")
                for directory in _process_dirs(info, self.proc):
                    for path in _candidate_files(directory):
                        paths.setdefault(os.path.realpath(path), f"in a directory of {info.label}")
        for directory in self.pidfile_dirs + run_dirs(self.system_run_dirs):
            for path in _candidate_files(directory):
                paths.setdefault(os.path.realpath(path), f"in {directory}")
        for path, where in sorted(paths.items()):
            pid, one_line = read_pidfile(path)
            program = owner.get(pid) if pid is not None else None
            if program is not None and all(f["path"] != path for f in program.pidfiles):
                program.pidfiles.append(
                    {"path": path, "pid": pid, "one_line": one_line, "found": where}
                )

    def _units(self, programs: list[Program]) -> None:
        for prog in programs:
            for info in prog.procs:
                unit = read_unit(info.pid, self.proc)
                if unit and unit not in prog.units:
                    prog.units.append(unit)

    # ------------------------------------------------------------------ the proposal

    def propose(self, hints: Hints) -> dict[str, t.Any]:
        roots = self.roots(hints)
        if not roots:
            raise SuiteError("no process found for the hints; give pid, name, unit or ports")
        tree = self.tree(roots)
        programs = self.programs(tree)
        self._ancestry(programs)
        moved = self._ports(programs)
        self._pidfiles(programs)
        self._units(programs)
        return self._build(hints, roots, programs, moved)

    def _pid_store(self, programs: list[Program]) -> tuple[t.Optional[dict[str, t.Any]], str]:
        files = [(prog, f) for prog in programs for f in prog.pidfiles]
        if not files:
            return None, (
                "no pidfile of these processes was found (open files, working and argument "
                "directories, /run); if the suite records PIDs in a database, add pid_store"
            )
        usable = [(prog, f) for prog, f in files if f["one_line"]]
        if len(usable) < len(files):
            odd = ", ".join(f["path"] for _p, f in files if not f["one_line"])
            return None, (
                f"pidfile(s) {odd} hold more than a PID; the pidfile store reads one-line "
                "pidfiles only, so no pid_store is proposed"
            )
        directories = {os.path.dirname(f["path"]) for _p, f in usable}
        patterns = {
            pidfile_pattern(os.path.basename(f["path"]), prog.name, (prog.ports or [None])[0])
            for prog, f in usable
        }
        if len(directories) == 1 and len(patterns) == 1 and None not in patterns:
            store = {"type": "pidfile", "path": directories.pop(), "pattern": patterns.pop()}
            named = ", ".join(sorted(prog.name for prog, _f in usable))
            return store, f"guess: from the pidfiles of {named}; daemons without one are 'missing'"
        listed = ", ".join(f["path"] for _p, f in usable)
        return None, (
            f"pidfiles {listed} follow no single directory and name pattern; set pid_store by hand"
        )

    def _build(
        self, hints: Hints, roots: list[int], programs: list[Program], moved: dict[int, str]
    ) -> dict[str, t.Any]:
        notes = _Notes()
        root_programs = [prog for prog in programs if any(p.pid in roots for p in prog.heads)]
        suite = self._suite_entry(hints, roots, programs, root_programs, notes)
        daemons = [
            self._daemon_entry(prog, prog in root_programs, moved, notes) for prog in programs
        ]
        self._read_limits(notes)
        proposal = {"suite": suite, "daemons": daemons}
        profile = load_profile(proposal, source="discover proposal")  # must load as it is
        instance = instance_guess([p for prog in programs for p in prog.procs])
        self._outside(profile, proposal, programs, instance, notes)
        header = [
            f"Suite profile proposed by daemonops.suite.discover on {self.host or 'this host'}",
            f"from {hints.describe()}: {len(tree_pids(programs))} processes, "
            f"{len(programs)} programs.",
            "Comments marked 'guess' need a look: names, counts, ancestors and roles are read from",
            "what runs now. Check it with daemonops.suite.health_info before relying on it.",
        ]
        if instance:
            notes.review.append(
                f"every process of the tree has {instance!r} on its command line: give it as "
                "instance to health_info and the other modules to tell this suite apart"
            )
            header.append(
                f"Every process has {instance} on its command line: pass it as the instance "
                "option to tell this installation from others on the host."
            )
        return {
            "proposal": proposal,
            "proposal_yaml": render_yaml(proposal, notes.comments, header=header),
            "instance": instance,
            "roots": roots,
            "programs": [_program_facts(prog) for prog in programs],
            "review": notes.review,
        }

    def _suite_entry(
        self,
        hints: Hints,
        roots: list[int],
        programs: list[Program],
        root_programs: list[Program],
        notes: _Notes,
    ) -> dict[str, t.Any]:
        comments, review = notes.comments, notes.review
        root_name = root_programs[0].name if root_programs else programs[0].name
        suite_name = self.suite_name or suite_name_guess(self._prefix, root_name)
        suite: dict[str, t.Any] = {
            "name": suite_name,
            "description": f"Proposed by daemonops.suite.discover from {hints.describe()}",
            "roles": [self.role],
        }
        if not self.suite_name:
            comments["suite.name"] = (
                f"guess: from the programs' common prefix {self._prefix!r}"
                if self._prefix
                else f"guess: from the root program {root_name}"
            )
            review.append(f"suite.name '{suite_name}' is a guess")
        if len(roots) > 1:
            review.append(
                f"the hints found {len(roots)} separate trees ({', '.join(map(str, roots))}); "
                "if they are several instances of one suite, discover one by its pid"
            )
        comments["suite.roles"] = (
            "the discover role; merge proposals of other hosts (discover_merge) for more roles"
        )
        units: list[str] = []
        for prog in root_programs + programs:
            units.extend(unit for unit in prog.units if unit not in units)
        if units:
            suite["systemd_unit"] = units[0]
            note = f"from /proc/PID/cgroup of {root_name}"
            if len(units) > 1:
                note += f"; the tree also runs in {', '.join(units[1:])}"
                review.append(f"processes run in several systemd units: {', '.join(units)}")
            comments["suite.systemd_unit"] = note
        store, store_note = self._pid_store(programs)
        if store is not None:
            suite["pid_store"] = store
            comments["suite.pid_store"] = store_note
        review.append(store_note if store is None else f"pid_store: {store_note}")
        return suite

    def _daemon_entry(
        self, prog: Program, is_root: bool, moved: dict[int, str], notes: _Notes
    ) -> dict[str, t.Any]:
        comments, key = notes.comments, f"daemons.{prog.name}"
        daemon: dict[str, t.Any] = {"name": prog.name, "roles": [self.role]}
        first = prog.heads[0]
        users = sorted({p.username or "?" for p in prog.heads})
        parent = self.procs.get(first.ppid)
        name_note = (
            f"guess: named after {prog.title.base!r}; runs as {', '.join(users)}; "
            f"parent {parent.label if parent else first.ppid}"
        )
        for pidfile in prog.pidfiles:
            extra = "" if pidfile["one_line"] else " (holds more than the PID)"
            name_note += f"; pidfile {pidfile['path']}{extra}"
        comments[f"{key}.name"] = name_note
        match = {"cmdline": prog.title.cmdline_regex()}
        comments[f"{key}.match.cmdline"] = "argv[0] as it runs now" + (
            f", then the program {prog.title.script}" if prog.title.script else ""
        )
        if prog.exe:
            regex, loosened = exe_regex(prog.exe)
            match["exe"] = regex
            if loosened:
                comments[f"{key}.match.exe"] = (
                    f"guess: {prog.exe} is an interpreter; the rule pins it, version open"
                )
                notes.interpreted.setdefault(prog.exe, []).append(prog.name)
            else:
                comments[f"{key}.match.exe"] = "the executable as it runs now"
        else:
            comments[f"{key}.match.cmdline"] += "; exe unreadable (run with become: true)"
            notes.unreadable.append(prog.name)
        daemon["match"] = match
        if prog.ancestor:
            daemon["ancestor"] = prog.ancestor
        if prog.ports:
            daemon["ports"] = [{"port": port, "probe": {"type": "tcp"}} for port in prog.ports]
            for port in prog.ports:
                where = ", ".join(prog.addresses.get(port, []))
                note = f"listening on {where}" if where else "listening"
                if moved.get(port):
                    note += f" (held by the pool {moved[port]}; guess: the port of its parent)"
                comments[f"{key}.ports.{port}"] = note
        count, why = count_for([p.ppid for p in prog.heads])
        daemon["count"] = count
        comments[f"{key}.count"] = why
        if "max" not in count:
            notes.review.append(f"{prog.name}: {why}")
        if is_root:
            daemon["essential"] = True
            comments[f"{key}.essential"] = "guess: the root of the tree"
        return daemon

    def _read_limits(self, notes: _Notes) -> None:
        """Review lines for what could not be read: interpreters, executables, socket owners."""
        for exe, names in notes.interpreted.items():
            notes.review.append(
                f"{', '.join(names)}: {exe} is an interpreter; the exe rule pins the interpreter "
                "(version left open), the cmdline rule the program"
            )
        if notes.unreadable:
            notes.review.append(
                f"{', '.join(notes.unreadable)}: executable unreadable, no exe rule (run with "
                "become: true; in a container root needs SYS_PTRACE)"
            )
        hidden = sorted(
            {lst.port for lsts in self.socks.listening.values() for lst in lsts if lst.pid is None}
        )
        if hidden:
            notes.review.append(
                f"the owner of port(s) {', '.join(map(str, hidden))} cannot be seen; they may "
                "belong to the suite (run with become: true)"
            )
        if not self.socks.available:
            notes.review.append(f"no ports proposed: {self.socks.error}")

    def _outside(
        self,
        profile: t.Any,
        proposal: dict[str, t.Any],
        programs: list[Program],
        instance: t.Optional[str],
        notes: _Notes,
    ) -> None:
        """Drop ``count.max`` of a daemon whose rules also match processes outside the walked
        tree (another instance of the suite): what runs there is not known to be bounded."""
        inside = set(tree_pids(programs))
        for daemon, data in zip(profile.daemons, proposal["daemons"]):
            outside = [p.pid for p in self.procs.matching(daemon, instance) if p.pid not in inside]
            if not outside:
                continue
            data["count"].pop("max", None)
            note = (
                f"guess: {len(outside)} more process(es) outside the walked tree match "
                f"({', '.join(str(pid) for pid in outside[:5])}; another instance?): no max"
            )
            notes.comments[f"daemons.{daemon.name}.count"] = note
            notes.review.append(f"{daemon.name}: {note}")


def tree_pids(programs: t.Sequence[Program]) -> list[int]:
    return sorted(p.pid for prog in programs for p in prog.procs)


def _program_facts(prog: Program) -> dict[str, t.Any]:
    first = prog.heads[0]
    return {
        "daemon": prog.name,
        "argv0": first.cmdline[0] if first.cmdline else "",
        "title": " ".join(prog.title.words),
        "script": prog.title.script,
        "exe": prog.exe,
        "users": sorted({p.username or "?" for p in prog.heads}),
        "pids": [p.pid for p in prog.heads],
        "workers": [p.pid for p in prog.procs if p not in prog.heads],
        "parents": sorted({p.ppid for p in prog.heads if p.ppid is not None}),
        "ancestor": prog.ancestor,
        "ports": [{"port": port, "addresses": prog.addresses.get(port, [])} for port in prog.ports],
        "pidfiles": prog.pidfiles,
        "units": prog.units,
    }
