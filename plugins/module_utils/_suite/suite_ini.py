# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The suite's INI file: one reader, one rule set, the profile overrides it carries.

``IniDocument`` holds the file as lines (so the ``config`` module edits one key without touching
comments or order, and every error names its line). ``validate`` is the one rule set, used by
the ``config`` module before it writes and by ``apply_config`` (health_info, service,
stale_pids, cluster_data) before the file changes a profile:

- sections are ``[suite]`` and the profile's daemons; any other section is refused;
- ``[suite] role`` is one of the profile's roles;
- ``enabled`` is a boolean word (``BOOL_TRUE``/``BOOL_FALSE``);
- ``port`` (one) or ``ports`` (comma-separated), not both, only for a daemon that has ports in
  the profile and exactly as many as the profile lists; a port belongs to one daemon.

Runs on targets: standard library only.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing as t

from ansible_collections.daemonops.suite.plugins.module_utils._suite import fileio
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    SuiteError,
)

if t.TYPE_CHECKING:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import Profile

SUITE_SECTION = "suite"
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a suite INI file is a few kB; a larger one is refused unread
PORT_KEYS = ("port", "ports")
BOOL_TRUE = ("1", "yes", "true", "on")
BOOL_FALSE = ("0", "no", "false", "off")

_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*(?:[;#].*)?$")
_KEY_RE = re.compile(r"^\s*([^=:\s;#\[][^=:]*?)\s*[=:]\s?(.*)$")
_INLINE_COMMENT_RE = re.compile(r"\s+[;#].*$")

#: names an option in an error message: origin(section, key) -> "settings.ui.port" or
#: "/etc/refsuite/refsuite.ini: line 7: [ui] port"
Origin = t.Callable[[str, str], str]


def _strip_comment(raw: str) -> str:
    return _INLINE_COMMENT_RE.sub("", raw).strip()


class IniDocument:
    """An INI file as lines; edits touch only the line of the key they change."""

    def __init__(self, text: str = "") -> None:
        self.lines: list[str] = text.splitlines()

    # -- reading -------------------------------------------------------------------------
    def _entries(self) -> t.Iterator[tuple[int, t.Optional[str], t.Optional[str], bool]]:
        """(line index, section, key, is_header) for every line that is not blank or a comment.

        A header gives its section and key None; a key line the section it is in (None before
        the first header) and its lower-cased key; any other line section None and key None.
        """
        section: t.Optional[str] = None
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped[0] in ";#":
                continue
            header = _SECTION_RE.match(line)
            if header:
                section = header.group(1).strip()
                yield index, section, None, True
                continue
            match = _KEY_RE.match(line)
            if match:
                yield index, section, match.group(1).strip().lower(), False
            else:
                yield index, None, None, False

    def _scan(self) -> list[tuple[t.Optional[str], t.Optional[str], int]]:
        """(section, key, line index) for every section header (key None) and key line."""
        return [
            (section, key, index)
            for index, section, key, is_header in self._entries()
            if section is not None and (is_header or key is not None)
        ]

    def syntax_error(self) -> t.Optional[tuple[int, str]]:
        """(line number, problem) of the first line a strict INI reader refuses, else None.

        Refused: a line that is no header, key or comment; a key before the first section; a
        section header or a key that appears twice (the suite's own reader refuses both).
        """
        headers: dict[str, int] = {}
        keys: dict[tuple[str, str], int] = {}
        for index, section, key, is_header in self._entries():
            number = index + 1
            if is_header and section is not None:
                if section in headers:
                    return number, (
                        f"section [{section}] appears again (first on line {headers[section]}); "
                        "merge the two sections into one"
                    )
                headers[section] = number
            elif key is None:
                return number, (
                    f"{self.lines[index].strip()[:60]!r} is not a [section] header, a key = "
                    "value line or a comment; fix or remove the line"
                )
            elif section is None:
                return number, f"key '{key}' comes before any [section] header; move it into one"
            elif (section, key) in keys:
                return number, (
                    f"[{section}] {key} is set again (first on line {keys[(section, key)]}); "
                    "keep one of the two"
                )
            else:
                keys[(section, key)] = number
        return None

    def line(self, section: str, key: str = "") -> t.Optional[int]:
        """The line number of ``key`` in ``section`` (its last setting), or of the section's
        header when ``key`` is empty; None when absent."""
        found = [i for s, k, i in self._scan() if s == section and k == (key.lower() or None)]
        if not found:
            return None
        return (found[-1] if key else found[0]) + 1

    def sections(self) -> dict[str, dict[str, str]]:
        """{section: {key: value}} with inline comments removed (the last duplicate key wins)."""
        result: dict[str, dict[str, str]] = {}
        for section, key, index in self._scan():
            if section is None:
                continue
            result.setdefault(section, {})
            match = _KEY_RE.match(self.lines[index]) if key is not None else None
            if key is not None and match is not None:
                result[section][key] = _strip_comment(match.group(2))
        return result

    def get(self, section: str, key: str) -> t.Optional[str]:
        return self.sections().get(section, {}).get(key.lower())

    def render(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")

    # -- editing -------------------------------------------------------------------------
    def set(self, section: str, key: str, value: str) -> bool:
        """Set ``key`` in ``section``; True when the text changed."""
        key = key.lower()
        entries = self._scan()
        key_lines = [i for s, k, i in entries if s == section and k == key]
        if key_lines:
            index = key_lines[-1]
            match = _KEY_RE.match(self.lines[index])
            raw = match.group(2) if match is not None else ""
            if _strip_comment(raw) == value:
                return False
            comment = _INLINE_COMMENT_RE.search(raw)
            suffix = comment.group(0) if comment else ""
            self.lines[index] = f"{key} = {value}{suffix}"
            return True
        headers = [i for s, k, i in entries if s == section and k is None]
        if not headers:
            if self.lines and self.lines[-1].strip():
                self.lines.append("")
            self.lines.extend([f"[{section}]", f"{key} = {value}"])
            return True
        # insert after the last key line of the (first) section, else right after its header
        header = headers[0]
        last = header
        for s, k, i in entries:
            if i > header and k is None:
                break
            if i > header and s == section:
                last = i
        self.lines.insert(last + 1, f"{key} = {value}")
        return True

    def remove(self, section: str, key: str) -> bool:
        key = key.lower()
        indexes = [i for s, k, i in self._scan() if s == section and k == key]
        for index in reversed(indexes):
            del self.lines[index]
        return bool(indexes)


def read_text(path: str) -> t.Optional[str]:
    """The text of the suite INI at ``path``; None when there is no such file.

    Only a regular file is opened (a FIFO would block for ever) and at most
    ``MAX_CONFIG_BYTES`` are read; anything else raises ProfileError naming the file.
    """
    try:
        data = fileio.read_regular(path, MAX_CONFIG_BYTES, "suite configuration file")
    except FileNotFoundError:
        return None
    except SuiteError as exc:
        raise ProfileError(str(exc)) from exc
    except OSError as exc:
        raise ProfileError(
            f"{path}: cannot read the suite configuration file: {exc.strerror or exc}"
        ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"{path}: cannot read the suite configuration file: it is not UTF-8 text "
            f"({exc.reason} at byte {exc.start}); fix or remove the file"
        ) from exc


def check_syntax(path: str, document: IniDocument) -> None:
    """ProfileError naming ``path`` and the line when ``document`` is not strict INI."""
    problem = document.syntax_error()
    if problem is not None:
        raise ProfileError(f"{path}: line {problem[0]}: not a valid INI file: {problem[1]}")


def file_origin(path: str, document: IniDocument) -> Origin:
    """Names an option of the file at ``path`` as ``<path>: line <n>: [section] key``."""

    def origin(section: str, key: str) -> str:
        number = document.line(section, key) or document.line(section)
        where = f"{path}: line {number}" if number else path
        return f"{where}: [{section}]" + (f" {key}" if key else "")

    return origin


class ProfileFacts:
    """What the INI validation needs from a profile: roles, daemon names and default ports."""

    def __init__(self, name: str, roles: list[str], ports: dict[str, list[int]]) -> None:
        self.name = name
        self.roles = list(roles)
        self.ports = ports  # daemon name -> default port numbers, in the profile's order

    @property
    def daemons(self) -> list[str]:
        return list(self.ports)

    @classmethod
    def from_profile(cls, profile: Profile) -> ProfileFacts:
        ports = {d.name: d.port_numbers for d in profile.daemons}
        return cls(name=profile.name, roles=list(profile.roles), ports=ports)


def parse_bool(option: str, raw: str) -> bool:
    """A boolean word (``BOOL_TRUE``/``BOOL_FALSE``, any case); errors name ``option``."""
    word = raw.strip().lower()
    if word in BOOL_TRUE:
        return True
    if word in BOOL_FALSE:
        return False
    raise SuiteError(
        f"{option}: '{raw}' is not a boolean: use true or false (yes/no, on/off, 1/0 also work)"
    )


def parse_ports(option: str, raw: str) -> list[int]:
    """'11000, 11001' -> [11000, 11001]; errors name ``option``."""
    numbers: list[int] = []
    for item in [part.strip() for part in str(raw).split(",")]:
        if not item:
            continue
        try:
            number = int(item)
        except ValueError:
            raise SuiteError(f"{option}: '{item}' is not a port number (give integers 1-65535)")
        if not 1 <= number <= 65535:
            raise SuiteError(f"{option}: port {number} is outside 1-65535")
        if number in numbers:
            raise SuiteError(
                f"{option}: '{raw}' lists a port twice ({number}); give each port once"
            )
        numbers.append(number)
    return numbers


def validate(
    sections: dict[str, dict[str, str]], facts: ProfileFacts, origin: Origin
) -> dict[str, dict[str, t.Any]]:
    """Check a whole file against the profile (the rules in the module docstring).

    Returns the overrides it sets: {daemon: {"enabled": bool, "ports": [int, ...]}} (either key
    only when set). Raises SuiteError whose message starts with ``origin(section, key)``.
    """
    known = [SUITE_SECTION, *facts.daemons]
    overrides: dict[str, dict[str, t.Any]] = {}
    for section, keys in sections.items():
        if section not in known:
            raise SuiteError(
                f"{origin(section, '')}: unknown section '{section}'; the {facts.name} profile "
                f"knows {', '.join(known)} (daemon names or 'suite'): rename or remove it"
            )
        if keys.get("enabled") is not None:
            enabled = parse_bool(origin(section, "enabled"), keys["enabled"])
            if section != SUITE_SECTION:
                overrides.setdefault(section, {})["enabled"] = enabled
    role = sections.get(SUITE_SECTION, {}).get("role")
    if role is not None and role not in facts.roles:
        raise SuiteError(
            f"{origin(SUITE_SECTION, 'role')}: unknown role '{role}'; the {facts.name} profile "
            f"knows {', '.join(facts.roles)}"
        )
    owner: dict[int, tuple[str, str]] = {}
    for daemon, defaults in facts.ports.items():
        keys = sections.get(daemon, {})
        given = [k for k in PORT_KEYS if k in keys]
        numbers = list(defaults)
        source = ""
        if len(given) > 1:
            raise SuiteError(f"{origin(daemon, 'ports')}: set either port or ports, not both")
        if given:
            key = given[-1]
            source = origin(daemon, key)
            numbers = parse_ports(source, keys[key])
            if key == "port" and len(numbers) != 1:
                raise SuiteError(f"{source}: give one port number (use ports = a,b,c for several)")
            if not defaults:
                raise SuiteError(
                    f"{source}: daemon {daemon} has no ports in the {facts.name} profile; "
                    "remove the key"
                )
            if len(numbers) != len(defaults):
                raise SuiteError(
                    f"{source}: {len(numbers)} port(s) given, the {facts.name} profile defines "
                    f"{len(defaults)} for {daemon} ({', '.join(str(p) for p in defaults)}); "
                    "give one number for each"
                )
            overrides.setdefault(daemon, {})["ports"] = numbers
        for number in numbers:
            if number in owner and owner[number][0] != daemon:
                other, other_source = owner[number]
                where = source or other_source or f"{daemon} (profile default)"
                raise SuiteError(
                    f"{where}: port {number} is used by both {other} and {daemon}; "
                    "give each daemon its own ports"
                )
            owner[number] = (daemon, source)
    return overrides


def apply_config(profile: Profile, ini_path: t.Optional[str] = None) -> Profile:
    """The profile with the suite INI's ``enabled``/``port``/``ports`` (and the PID store's
    ``config_key``) applied.

    ``ini_path`` defaults to ``suite.config_file``; no path or a missing file returns the
    profile unchanged. A file that breaks a rule of ``validate`` raises ProfileError naming the
    file, the line, the section and the key. A port keeps its probe (the counts are equal).
    """
    path = ini_path or profile.config_file
    if not path:
        return profile
    text = read_text(path)
    if text is None:
        return profile
    document = IniDocument(text)
    check_syntax(path, document)
    try:
        overrides = validate(
            document.sections(), ProfileFacts.from_profile(profile), file_origin(path, document)
        )
    except ProfileError:
        raise
    except SuiteError as exc:
        raise ProfileError(str(exc)) from exc
    if overrides:
        daemons = []
        for daemon in profile.daemons:
            override = overrides.get(daemon.name, {})
            changes: dict[str, t.Any] = {}
            if "enabled" in override:
                changes["enabled"] = override["enabled"]
            if "ports" in override:
                changes["ports"] = tuple(
                    dataclasses.replace(port, port=number)
                    for port, number in zip(daemon.ports, override["ports"])
                )
            daemons.append(dataclasses.replace(daemon, **changes) if changes else daemon)
        profile = dataclasses.replace(profile, daemons=tuple(daemons))
    store = profile.pid_store
    if store is not None and store.config_key:
        section, key = store.config_key.split(".", 1)
        store_path = document.get(section, key)
        if store_path:
            if not os.path.isabs(store_path):
                raise ProfileError(
                    f"{file_origin(path, document)(section, key)}: {store_path}: the PID store "
                    "path must be absolute; give a path that starts with /"
                )
            profile = dataclasses.replace(
                profile, pid_store=dataclasses.replace(store, path=store_path)
            )
    return profile


def with_pid_store_path(profile: Profile, path: str) -> Profile:
    """The profile with its PID store at ``path``, which no INI setting overrides."""
    if profile.pid_store is None:
        raise ProfileError(
            f"pid_store_path: profile '{profile.name}' has no suite.pid_store to relocate"
        )
    if profile.pid_store.type == "postgresql":
        raise ProfileError(
            "pid_store_path: the PID store is a PostgreSQL table, it has no path; "
            "leave pid_store_path unset"
        )
    if not os.path.isabs(path):
        raise ProfileError(f"pid_store_path: {path} is not an absolute path")
    store = dataclasses.replace(profile.pid_store, path=path, config_key=None)
    return dataclasses.replace(profile, pid_store=store)
