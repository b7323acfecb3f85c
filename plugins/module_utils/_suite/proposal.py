# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure pieces of a discovered profile (see ``discover.py``): process titles, daemon and
suite names, anchored regexes, the worker-pool guess, the systemd unit of a cgroup, the pidfile
pattern, the YAML text with comments, and merging the proposals of several hosts.

Runs on targets: standard library only (no YAML library: the YAML text is written here).
"""

from __future__ import annotations

import json
import os
import re
import typing as t
from dataclasses import dataclass

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
        ProcInfo,
    )

INTERPRETERS = ("python", "perl", "ruby", "java", "node", "php", "sh", "bash", "dash", "tclsh")
"""Base names (without version digits) of executables that run another program: their
``exe`` rule pins the interpreter, not the program, and leaves the version open."""

_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
"""A word of a process title (``checkpointer``, ``15/main:``); a path, an option, an address
(``127.0.0.1(5432)``) or a login (``root@pts/0``) ends the title."""
_NAME_CLEAN_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_SEPARATORS = "-_."
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
            if not _WORD_RE.fullmatch(word):
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
    the trailing version digits are left open (``^/usr/bin/python3(\\.[0-9]+)?$``)."""
    directory, base = os.path.split(exe)
    if is_interpreter(exe):
        stem = re.sub(r"[0-9][0-9.]*$", "", base)
        if stem != base:
            major = base[len(stem) :].split(".")[0]
            return f"^{regex_escape(os.path.join(directory, stem + major))}(\\.[0-9]+)?$", True
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

_PLAIN_RE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*")
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
    if _PLAIN_RE.fullmatch(text) and text.lower() not in _YAML_WORDS:
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
