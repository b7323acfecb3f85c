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

The pure pieces (titles, names, regexes, the worker-pool guess, the YAML writer, merging
proposals of several hosts) are functions so they are tested on their own.

Runs on targets: standard library only (no YAML library; the YAML text is written here).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import load_profile

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

INTERPRETERS = ("python", "perl", "ruby", "java", "node", "php", "sh", "bash", "dash", "tclsh")
"""Base names (without version digits) of executables that run another program: their
``exe`` rule pins the interpreter, not the program, and leaves the version open."""

_WORD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
"""A word of a process title (``checkpointer``, ``15/main:``); a path, an option, an address
(``127.0.0.1(5432)``) or a login (``root@pts/0``) ends the title."""
_NAME_CLEAN_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_SEPARATORS = "-_."
_MAX_PIDFILE = 4096
_OPTIONS_WITH_VALUE = ("-cp", "-classpath", "--class-path", "-X", "-W", "-e", "-c")


# --------------------------------------------------------------------------------------------
# Pure pieces: titles, names, regexes
# --------------------------------------------------------------------------------------------


_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def regex_escape(text: str) -> str:
    """``text`` as a regex that matches it literally, escaping only what is special outside a
    character class (so ``refsuite-qm`` and ``postgres: checkpointer`` stay readable)."""
    return "".join("\\" + char if char in _REGEX_SPECIAL else char for char in text)


def _strip_version(base: str) -> str:
    """``python3.11`` -> ``python``; ``java`` -> ``java``."""
    return re.sub(r"[0-9.]+$", "", base)


def is_interpreter(path: t.Optional[str]) -> bool:
    return bool(path) and _strip_version(os.path.basename(str(path))) in INTERPRETERS


def _script_argument(args: t.Sequence[str]) -> t.Optional[str]:
    """The program an interpreter runs: the argument after ``-m``/``-jar``, else the first
    argument that is not an option (nor the value of ``-cp`` and the like)."""
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-m", "-jar") and index + 1 < len(args):
            return args[index + 1]
        if arg in _OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


@dataclass(frozen=True)
class Title:
    """What tells one program from another in a command line.

    ``words``: argv[0] (as written, e.g. ``refsuite-qm``, ``/usr/sbin/nginx``) followed, for a
    ``setproctitle`` style title (``postgres: checkpointer``, ``nginx: worker process``), by
    its words. ``script``: what an interpreter runs (``de.sep.Server`` of ``java ... de.sep.Server``).
    """

    words: tuple[str, ...]
    script: t.Optional[str] = None

    @property
    def base(self) -> str:
        """The program's own name: the script's, or argv[0]'s base name, plus title words."""
        if self.script is not None:
            stem = os.path.basename(self.script.rstrip("/"))
            return re.sub(r"\.(py|pl|rb|jar|js|sh)$", "", stem) or stem
        first = os.path.basename(self.words[0].rstrip("/")).rstrip(":") or self.words[0]
        rest = list(self.words[1:])
        labels = [i for i, word in enumerate(rest) if word.endswith(":")]
        if labels and labels[-1] < len(rest) - 1:  # "15/main: checkpointer": a cluster label
            rest = rest[labels[-1] + 1 :]
        return " ".join((first, *rest))

    def cmdline_regex(self) -> str:
        """An anchored regex on the space-joined command line: argv[0] exactly as it runs now
        (and the title words, or ``( .*)? <script>``), followed by a space or the end."""
        head = regex_escape(" ".join(self.words))
        if self.script is not None:
            return f"^{head}( .*)? {regex_escape(self.script)}( |$)"
        return f"^{head}( |$)"


def program_title(cmdline: t.Sequence[str]) -> Title:
    """The ``Title`` of a command line (``cmdline`` as ``ProcInfo.cmdline``: already split)."""
    if cmdline and " " in cmdline[0]:  # a rewritten title kept as one string
        cmdline = [*cmdline[0].split(), *cmdline[1:]]
    if not cmdline:
        return Title(("?",))
    first = cmdline[0]
    if first.endswith(":"):  # setproctitle: "postgres: background writer", "sshd: root@pts/0"
        words = [first]
        for word in cmdline[1:]:
            if not _WORD_RE.match(word):
                break
            words.append(word)
        return Title(tuple(words))
    if is_interpreter(first):
        script = _script_argument(cmdline[1:])
        if script is not None:
            return Title((first,), script)
    return Title((first,))


def exe_regex(exe: str) -> tuple[str, bool]:
    """``(regex, loosened)``: the executable's path anchored at both ends; for an interpreter
    the trailing version digits are left open (``^/usr/bin/python3(\\.[0-9]+)*$``)."""
    directory, base = os.path.split(exe)
    if is_interpreter(exe):
        stem = re.sub(r"[0-9][0-9.]*$", "", base)
        if stem != base:
            major = base[len(stem) :].split(".")[0]
            return f"^{regex_escape(os.path.join(directory, stem + major))}(\\.[0-9]+)*$", True
    return f"^{regex_escape(exe)}$", False


def slug(text: str) -> str:
    """A daemon name from a program's name: runs of other characters become ``_``."""
    name = _NAME_CLEAN_RE.sub("_", text).strip("_.-")
    if not name or not name[0].isalnum():
        name = "d" + name
    return name


def common_prefix(names: t.Sequence[str]) -> str:
    """The longest prefix all ``names`` share that ends with a separator (``- _ .``) and
    leaves every name something after it; ``""`` for fewer than two names."""
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)  # the sorted extremes bound every common prefix
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    prefix = first[:length]
    cut = max((prefix.rfind(sep) for sep in _SEPARATORS), default=-1)
    prefix = prefix[: cut + 1] if cut >= 0 else ""
    if len(prefix) < 2 or any(len(name) == len(prefix) for name in names):
        return ""
    return prefix


def daemon_names(bases: t.Sequence[str]) -> tuple[list[str], str]:
    """``(names, prefix)``: a unique daemon name per program base name, in order; the common
    prefix of the names (``refsuite-``, ``sm_``) is cut (it becomes the suite's name)."""
    slugs = [slug(base) for base in bases]
    prefix = common_prefix(sorted(set(slugs)))
    names: list[str] = []
    for item in slugs:
        name = item[len(prefix) :] if prefix else item
        name = slug(name)
        candidate, number = name, 2
        while candidate in names:
            candidate = f"{name}_{number}"
            number += 1
        names.append(candidate)
    return names, prefix


def suite_name_guess(prefix: str, root_name: str) -> str:
    """``[a-z0-9_]+`` from the common prefix of the programs, else from the root program."""
    text = prefix.strip(_SEPARATORS) or root_name
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return name or "suite"


def looks_like_pool(parent_pids: t.Sequence[t.Optional[int]]) -> bool:
    """Several instances that all share one parent process: a worker pool, whose size is
    configuration or load (no ``count.max``)."""
    return len(parent_pids) >= 2 and len(set(parent_pids)) == 1


def count_for(parent_pids: t.Sequence[t.Optional[int]]) -> tuple[dict[str, int], str]:
    """``(count, why)`` for the instances seen now (given by their parent PIDs)."""
    number = len(parent_pids)
    if looks_like_pool(parent_pids):
        return {"min": 1}, (
            f"guess: {number} instances under one parent look like a worker pool; no max"
        )
    return {"min": 1, "max": max(number, 1)}, f"{number} running now"


def parse_cgroup_unit(text: str) -> t.Optional[str]:
    """The systemd service unit in ``/proc/PID/cgroup`` text (the ``name=systemd`` line of
    cgroup v1, else the ``0::`` line of v2); None without systemd (``0::/``) or for a login
    session (``session-3.scope``) or the per-user manager."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    path = paths.get("name=systemd", paths.get(""))
    if not path:
        return None
    for component in reversed(path.strip("/").split("/")):
        if component.endswith(".service") and not component.startswith("user@"):
            return component.replace("\\x2d", "-")
    return None


def pidfile_pattern(file_name: str, name: str, port: t.Optional[int]) -> t.Optional[str]:
    """The pidfile store ``pattern`` that gives ``file_name`` for a daemon called ``name``
    (with first port ``port``), or None when the file does not carry the daemon's name."""
    pattern = file_name
    if port is not None:
        pattern = re.sub(rf"(?<![0-9]){port}(?![0-9])", "{port}", pattern, count=1)
    index = pattern.rfind(name)
    if index < 0:
        return None
    before, after = pattern[:index], pattern[index + len(name) :]
    if "{" in before.replace("{port}", "") or "}" in after.replace("{port}", ""):
        return None
    return before + "{name}" + after


# --------------------------------------------------------------------------------------------
# YAML text (with comments) for a proposal
# --------------------------------------------------------------------------------------------

_PLAIN_RE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_scalar(value: t.Any) -> str:
    """One scalar as YAML: plain where unambiguous, else single-quoted (regexes read as
    written), or JSON-style double-quoted when it holds control characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN_RE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        return json.dumps(text)
    return "'" + text.replace("'", "''") + "'"


def yaml_flow(value: t.Any) -> str:
    """A value in flow style (``{port: 80, probe: {type: tcp}}``, ``[a, b]``)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    return yaml_scalar(value)


def _comment(text: t.Optional[str]) -> str:
    if not text:
        return ""
    return "  # " + " ".join(str(text).split())


def render_yaml(
    proposal: dict[str, t.Any],
    comments: t.Mapping[str, str],
    header: t.Sequence[str] = (),
    footer: t.Sequence[str] = (),
) -> str:
    """The proposal as YAML text. ``comments`` maps a dotted key (``suite.name``,
    ``daemons.qm.match.exe``, ``daemons.qm.ports.11401``) to the comment for that line."""
    lines = [f"# {' '.join(line.split())}".rstrip() for line in header]
    lines.append("suite:")
    for key, value in proposal["suite"].items():
        if isinstance(value, dict):
            lines.append(f"  {key}:{_comment(comments.get(f'suite.{key}'))}")
            for sub, subvalue in value.items():
                note = _comment(comments.get(f"suite.{key}.{sub}"))
                lines.append(f"    {sub}: {yaml_flow(subvalue)}{note}")
        else:
            lines.append(f"  {key}: {yaml_flow(value)}{_comment(comments.get(f'suite.{key}'))}")
    lines.append("daemons:")
    for daemon in proposal["daemons"]:
        prefix = f"daemons.{daemon['name']}"
        first = True
        for key, value in daemon.items():
            lead = "  - " if first else "    "
            first = False
            note = _comment(comments.get(f"{prefix}.{key}"))
            if key == "match":
                lines.append(f"{lead}match:{note}")
                for sub, subvalue in value.items():
                    subnote = _comment(comments.get(f"{prefix}.match.{sub}"))
                    lines.append(f"      {sub}: {yaml_scalar(subvalue)}{subnote}")
            elif key == "ports":
                lines.append(f"{lead}ports:{note}")
                for port in value:
                    portnote = _comment(comments.get(f"{prefix}.ports.{port['port']}"))
                    lines.append(f"      - {yaml_flow(port)}{portnote}")
            else:
                lines.append(f"{lead}{key}: {yaml_flow(value)}{note}")
    lines.extend(f"# {' '.join(line.split())}".rstrip() for line in footer)
    return "\n".join(lines) + "\n"


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
    instances: list[ProcInfo] = field(default_factory=list)
    name: str = ""
    ancestor: t.Optional[str] = None
    ports: list[int] = field(default_factory=list)
    addresses: dict[int, list[str]] = field(default_factory=dict)
    pidfiles: list[dict[str, t.Any]] = field(default_factory=list)
    units: list[str] = field(default_factory=list)


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
            program.instances = [
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
            for instance in program.instances:
                chain = []
                for pid in self.procs.ancestors(instance.pid):
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
                parents = [p.ppid for p in program.instances]
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
        owner = {p.pid: prog for prog in programs for p in prog.instances}
        paths: dict[str, str] = {}  # real path -> where it was found (/var/run is /run)
        for prog in programs:
            for info in prog.instances:
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
        comments: dict[str, str] = {}
        review: list[str] = []
        root_programs = [prog for prog in programs if any(p.pid in roots for p in prog.instances)]
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
        units = []
        for prog in root_programs + programs:
            for unit in prog.units:
                if unit not in units:
                    units.append(unit)
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

        daemons = []
        interpreted: dict[str, list[str]] = {}
        unreadable: list[str] = []
        for prog in programs:
            key = f"daemons.{prog.name}"
            daemon: dict[str, t.Any] = {"name": prog.name, "roles": [self.role]}
            first = prog.instances[0]
            users = sorted({p.username or "?" for p in prog.instances})
            parent = self.procs.get(first.ppid)
            comments[f"{key}.name"] = (
                f"guess: named after {prog.title.base!r}; runs as {', '.join(users)}; "
                f"parent {parent.label if parent else first.ppid}"
            )
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
                    interpreted.setdefault(prog.exe, []).append(prog.name)
                else:
                    comments[f"{key}.match.exe"] = "the executable as it runs now"
            else:
                comments[f"{key}.match.cmdline"] += "; exe unreadable (run with become: true)"
                unreadable.append(prog.name)
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
            count, why = count_for([p.ppid for p in prog.instances])
            daemon["count"] = count
            comments[f"{key}.count"] = why
            if "max" not in count:
                review.append(f"{prog.name}: {why}")
            if prog in root_programs:
                daemon["essential"] = True
                comments[f"{key}.essential"] = "guess: the root of the tree"
            for pidfile in prog.pidfiles:
                extra = "" if pidfile["one_line"] else " (holds more than the PID)"
                comments[f"{key}.name"] += f"; pidfile {pidfile['path']}{extra}"
            daemons.append(daemon)
        for exe, names in interpreted.items():
            review.append(
                f"{', '.join(names)}: {exe} is an interpreter; the exe rule pins the interpreter "
                "(version left open), the cmdline rule the program"
            )
        if unreadable:
            review.append(
                f"{', '.join(unreadable)}: executable unreadable, no exe rule (run with become: "
                "true; in a container root needs SYS_PTRACE)"
            )
        hidden = sorted(
            {lst.port for lsts in self.socks.listening.values() for lst in lsts if lst.pid is None}
        )
        if hidden:
            review.append(
                f"the owner of port(s) {', '.join(map(str, hidden))} cannot be seen; they may "
                "belong to the suite (run with become: true)"
            )
        if not self.socks.available:
            review.append(f"no ports proposed: {self.socks.error}")
        proposal = {"suite": suite, "daemons": daemons}
        profile = load_profile(proposal, source="discover proposal")  # must load as it is
        instance = instance_guess([p for prog in programs for p in prog.procs])
        self._outside(profile, proposal, programs, instance, comments, review)
        if instance:
            review.append(
                f"every process of the tree has {instance!r} on its command line: give it as "
                "instance to health_info and the other modules to tell this suite apart"
            )
        header = [
            f"Suite profile proposed by daemonops.suite.discover on {self.host or 'this host'}",
            f"from {hints.describe()}: {len(tree_pids(programs))} processes, "
            f"{len(programs)} programs.",
            "Comments marked 'guess' need a look: names, counts, ancestors and roles are read from",
            "what runs now. Check it with daemonops.suite.health_info before relying on it.",
        ]
        if instance:
            header.append(
                f"Every process has {instance} on its command line: pass it as the instance "
                "option to tell this installation from others on the host."
            )
        text = render_yaml(proposal, comments, header=header)
        return {
            "proposal": proposal,
            "proposal_yaml": text,
            "instance": instance,
            "roots": roots,
            "programs": [_program_facts(prog) for prog in programs],
            "review": review,
        }

    def _outside(
        self,
        profile: t.Any,
        proposal: dict[str, t.Any],
        programs: list[Program],
        instance: t.Optional[str],
        comments: dict[str, str],
        review: list[str],
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
            comments[f"daemons.{daemon.name}.count"] = note
            review.append(f"{daemon.name}: {note}")


def instance_guess(procs: t.Sequence[ProcInfo]) -> t.Optional[str]:
    """An absolute path every process of the tree has among its arguments (the suite
    instance's configuration file, ``--config /etc/refsuite/refsuite.ini``), else None."""
    common: t.Optional[set[str]] = None
    for info in procs:
        paths = {arg for arg in info.cmdline[1:] if arg.startswith("/") and len(arg) > 1}
        common = paths if common is None else common & paths
        if not common:
            return None
    return max(sorted(common), key=len) if common else None


def tree_pids(programs: t.Sequence[Program]) -> list[int]:
    return sorted(p.pid for prog in programs for p in prog.procs)


def _program_facts(prog: Program) -> dict[str, t.Any]:
    first = prog.instances[0]
    return {
        "daemon": prog.name,
        "argv0": first.cmdline[0] if first.cmdline else "",
        "title": " ".join(prog.title.words),
        "script": prog.title.script,
        "exe": prog.exe,
        "users": sorted({p.username or "?" for p in prog.instances}),
        "pids": [p.pid for p in prog.instances],
        "workers": [p.pid for p in prog.procs if p not in prog.instances],
        "parents": sorted({p.ppid for p in prog.instances if p.ppid is not None}),
        "ancestor": prog.ancestor,
        "ports": [{"port": port, "addresses": prog.addresses.get(port, [])} for port in prog.ports],
        "pidfiles": prog.pidfiles,
        "units": prog.units,
    }


# --------------------------------------------------------------------------------------------
# Merging proposals of several hosts (one role each) into one profile
# --------------------------------------------------------------------------------------------


def merge_proposals(
    proposals: t.Sequence[t.Mapping[str, t.Any]], name: t.Optional[str] = None
) -> dict[str, t.Any]:
    """One profile from proposals of hosts with different roles (server, RDS, client).

    A daemon found in several proposals (same name, or the same ``match`` under another name,
    as when a host runs fewer programs and no common prefix was cut) gets the union of their
    roles; its
    ``match``, ``ancestor`` and ports must agree (else SuiteError naming the daemon and what
    differs); counts widen (smallest min, largest max, no max if one has none). Suite fields
    come from the first proposal that has them. The result is validated by ``load_profile``."""
    if not proposals:
        raise SuiteError("discover_merge: give a list of at least one proposal")
    suite: dict[str, t.Any] = {}
    roles: list[str] = []
    daemons: dict[str, dict[str, t.Any]] = {}
    for index, proposal in enumerate(proposals):
        if not isinstance(proposal, dict) or "suite" not in proposal or "daemons" not in proposal:
            raise SuiteError(
                f"discover_merge: item {index} is not a proposal (a profile with suite and "
                "daemons, e.g. the proposal value discover returns)"
            )
        load_profile(proposal, source=f"discover_merge item {index}")
        for key, value in proposal["suite"].items():
            if key == "roles":
                roles.extend(role for role in value if role not in roles)
            elif key not in suite:
                suite[key] = value
        by_match = {json.dumps(d["match"], sort_keys=True): n for n, d in daemons.items()}
        renamed = {}
        for daemon in proposal["daemons"]:
            same = by_match.get(json.dumps(daemon["match"], sort_keys=True))
            if same is not None and daemon["name"] not in daemons:
                renamed[daemon["name"]] = same  # one program named differently on two hosts
        for daemon in proposal["daemons"]:
            daemon = json.loads(json.dumps(daemon))
            daemon["name"] = renamed.get(daemon["name"], daemon["name"])
            if daemon.get("ancestor"):
                daemon["ancestor"] = renamed.get(daemon["ancestor"], daemon["ancestor"])
            known = daemons.get(daemon["name"])
            if known is None:
                daemons[daemon["name"]] = daemon
                continue
            _merge_daemon(known, daemon, index)
    if name:
        suite["name"] = name
    suite["roles"] = roles
    ordered = {key: suite[key] for key in ("name", "description", "roles") if key in suite}
    ordered.update((k, v) for k, v in suite.items() if k not in ordered)
    merged = {"suite": ordered, "daemons": list(daemons.values())}
    load_profile(merged, source="discover_merge result")
    return merged


def _merge_daemon(known: dict[str, t.Any], daemon: t.Mapping[str, t.Any], index: int) -> None:
    name = daemon["name"]
    for key in ("match", "ancestor"):
        if known.get(key) != daemon.get(key):
            raise SuiteError(
                f"discover_merge: daemon '{name}': {key} differs between proposals "
                f"({known.get(key)!r} and, in item {index}, {daemon.get(key)!r}); rename one "
                "of them or make them agree before merging"
            )
    ports_a = sorted(p["port"] for p in known.get("ports") or [])
    ports_b = sorted(p["port"] for p in daemon.get("ports") or [])
    if ports_a != ports_b:
        raise SuiteError(
            f"discover_merge: daemon '{name}': ports differ between proposals ({ports_a} and, "
            f"in item {index}, {ports_b}); one profile gives a daemon the same ports on every "
            "host (per-host ports belong in the suite's configuration file)"
        )
    known["roles"] = known["roles"] + [r for r in daemon["roles"] if r not in known["roles"]]
    count_a, count_b = known.get("count") or {}, daemon.get("count") or {}
    count = {"min": min(count_a.get("min", 1), count_b.get("min", 1))}
    if count_a.get("max") is not None and count_b.get("max") is not None:
        count["max"] = max(count_a["max"], count_b["max"])
    known["count"] = count
    if daemon.get("essential"):
        known["essential"] = True
