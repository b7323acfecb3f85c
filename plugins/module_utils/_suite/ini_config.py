# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The suite's INI configuration: a line-based editor, validation against the profile, atomic write.

The editor keeps comments, blank lines and the order of sections and keys, so that a diff shows only
the keys that really changed. Values are compared without their inline comment (``; ...``).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from typing import Any, Callable, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite import fileio
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

SUITE_SECTION = "suite"
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a suite INI file is a few kB; a larger one is refused
PORT_KEYS = ("port", "ports")
BOOL_TRUE = ("1", "yes", "true", "on")
BOOL_FALSE = ("0", "no", "false", "off")

_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*(?:[;#].*)?$")
_KEY_RE = re.compile(r"^\s*([^=:\s;#\[][^=:]*?)\s*[=:]\s?(.*)$")
_INLINE_COMMENT_RE = re.compile(r"\s+[;#].*$")
# C0 and C1 controls, DEL and the Unicode line/paragraph separators (str.splitlines splits there)
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def format_value(value: Any) -> str:
    """Turn a YAML value into its INI text: lists are comma-joined, booleans are true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(item) for item in value)
    if value is None:
        return ""
    return str(value).strip()


def _strip_comment(raw: str) -> str:
    return _INLINE_COMMENT_RE.sub("", raw).strip()


class IniDocument:
    """An INI file as lines; edits touch only the line of the key they change."""

    def __init__(self, text: str = "") -> None:
        self.lines: list[str] = text.splitlines()

    # -- reading -------------------------------------------------------------------------
    def _scan(self) -> list[tuple[Optional[str], Optional[str], int]]:
        """(section, key, line index) for every section header (key None) and key line."""
        entries: list[tuple[Optional[str], Optional[str], int]] = []
        section: Optional[str] = None
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped[0] in ";#":
                continue
            header = _SECTION_RE.match(line)
            if header:
                section = header.group(1).strip()
                entries.append((section, None, index))
                continue
            match = _KEY_RE.match(line)
            if match and section is not None:
                entries.append((section, match.group(1).strip().lower(), index))
        return entries

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

    def get(self, section: str, key: str) -> Optional[str]:
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
    def from_profile(cls, profile: Any) -> ProfileFacts:
        suite = getattr(profile, "suite", profile)
        name = getattr(suite, "name", None) or getattr(profile, "name", "suite")
        roles = list(getattr(suite, "roles", None) or getattr(profile, "roles", []) or [])
        ports: dict[str, list[int]] = {}
        for daemon in profile.daemons:
            numbers = []
            for port in getattr(daemon, "ports", None) or []:
                numbers.append(int(getattr(port, "port", port)))
            ports[daemon.name] = numbers
        return cls(name=name, roles=roles, ports=ports)


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
        numbers.append(number)
    return numbers


def validate(
    sections: dict[str, dict[str, str]],
    facts: ProfileFacts,
    origin: Callable[[str, str], str],
) -> None:
    """Validate a whole resulting file; ``origin(section, key)`` names the option for messages."""
    known = [SUITE_SECTION, *facts.daemons]
    for section, keys in sections.items():
        if section not in known:
            raise SuiteError(
                f"{origin(section, '')}: unknown section '{section}'; the {facts.name} profile "
                f"knows {', '.join(known)} (daemon names or 'suite')"
            )
        enabled = keys.get("enabled")
        if enabled is not None and enabled.lower() not in BOOL_TRUE + BOOL_FALSE:
            raise SuiteError(
                f"{origin(section, 'enabled')}: '{enabled}' is not a boolean (true/false)"
            )
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
                    f"{source}: daemon {daemon} has no ports in the {facts.name} profile"
                )
            if len(numbers) != len(defaults):
                raise SuiteError(
                    f"{source}: {len(numbers)} port(s) given, the {facts.name} profile defines "
                    f"{len(defaults)} for {daemon} ({', '.join(str(p) for p in defaults)})"
                )
        for number in numbers:
            if number in owner and owner[number][0] != daemon:
                other, other_source = owner[number]
                where = source or other_source or f"{daemon} (profile default)"
                raise SuiteError(
                    f"{where}: port {number} is used by both {other} and {daemon}; "
                    "give each daemon its own ports"
                )
            if number in owner:
                raise SuiteError(f"{source or daemon}: port {number} is listed twice for {daemon}")
            owner[number] = (daemon, source)


def atomic_write(path: str, text: str, default_mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically (``fileio.atomic_write``), creating its directory.

    An existing file keeps its mode and owner.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fileio.atomic_write(path, text.encode("utf-8"), default_mode=default_mode)


def backup_file(path: str) -> str:
    """Copy ``path`` to ``path.<timestamp>.<random>~`` and return the name.

    The backup is created with ``tempfile.mkstemp`` in the file's own directory, that is with
    ``O_CREAT | O_EXCL | O_NOFOLLOW`` and an unpredictable name: a symlink or file planted in a
    directory that a less privileged account can write is never followed nor overwritten. The
    copy gets the original's mode, owner (as root) and times.
    """
    directory, name = os.path.split(os.path.abspath(path))
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S")
    source = fileio.open_regular(path, what="config_file")
    try:
        st = os.fstat(source)
        fd, dest = tempfile.mkstemp(dir=directory, prefix=f"{name}.{stamp}.", suffix="~")
        try:
            with os.fdopen(fd, "wb") as handle:
                while True:
                    block = os.read(source, 1 << 20)
                    if not block:
                        break
                    handle.write(block)
                handle.flush()
                os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode))
                if os.geteuid() == 0:
                    os.fchown(handle.fileno(), st.st_uid, st.st_gid)
                os.utime(handle.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
        except BaseException:
            os.unlink(dest)
            raise
    finally:
        os.close(source)
    return dest


def parse_mode(value: Any, allow_special_bits: bool = False) -> int:
    """The ``mode`` option: an octal string ('0640') or a number, 0 to 0o7777; the setuid,
    setgid and sticky bits only with ``allow_special_bits``."""
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        mode = int(str(value), 8) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise SuiteError(f"mode: {str(value)[:40]!r} is not an octal mode such as '0644'")
    if not 0 <= mode <= 0o7777:
        raise SuiteError(
            f"mode: {str(value)[:40]!r} is outside 0000-7777; give an octal mode such as '0644'"
        )
    if mode & 0o7000 and not allow_special_bits:
        raise SuiteError(
            f"mode: {mode:04o} sets the setuid, setgid or sticky bit; a configuration file needs "
            "none of them (give '0644' or '0640'), or set allow_special_bits: true"
        )
    return mode


def _refuse_control(option: str, what: str, text: str) -> None:
    """A control character (carriage return, newline, tab, NUL, ...) in an INI section name, key
    or value would split the line or hide text from one of the readers: refuse it."""
    found = _CONTROL_RE.search(text)
    if found:
        raise SuiteError(
            f"{option}: the {what} contains the control character {found.group(0)!r} at "
            f"position {found.start()}; an INI {what} must be a single line of printable "
            "characters: remove it"
        )


class IniConfig:
    """The config module's logic: apply ``settings`` with ``state`` to the file at ``path``."""

    def __init__(
        self,
        path: str,
        settings: dict[str, Any],
        state: str,
        facts: ProfileFacts,
        backup: bool = False,
        check_mode: bool = False,
        mode: int = 0o644,
    ) -> None:
        self.path = path
        self.settings = settings or {}
        self.state = state
        self.facts = facts
        self.backup = backup
        self.check_mode = check_mode
        self.mode = mode

    def _read(self) -> str:
        """The current text; only a regular file is opened (a FIFO would block for ever) and
        at most ``MAX_CONFIG_BYTES`` are read."""
        try:
            data = fileio.read_regular(self.path, MAX_CONFIG_BYTES, what="config_file")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise SuiteError(f"config_file: cannot read {self.path}: {exc.strerror}")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SuiteError(f"config_file: {self.path} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start}); fix or remove the file")  # fmt: skip

    def _normalised_settings(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        if not isinstance(self.settings, dict):
            raise SuiteError("settings: give a mapping {section: {key: value}}")
        for section, keys in self.settings.items():
            section = str(section)
            _refuse_control(f"settings.{section!r}", "section name", section)
            if not isinstance(keys, dict):
                raise SuiteError(
                    f"settings.{section}: give a mapping of keys to values, got {type(keys).__name__}"
                )
            result[section] = {}
            for key, value in keys.items():
                _refuse_control(f"settings.{section}.{str(key)!r}", "key", str(key))
                key = str(key).strip().lower()
                if not key or not re.fullmatch(r"[a-z0-9_.-]+", key):
                    raise SuiteError(
                        f"settings.{section}.{key}: invalid key name (letters, digits, _ . -)"
                    )
                text = format_value(value)
                _refuse_control(f"settings.{section}.{key}", "value", text)
                result[section][key] = text
        return result

    def run(self) -> dict[str, Any]:
        wanted = self._normalised_settings()
        before = self._read()
        document = IniDocument(before)
        changed_keys: list[str] = []
        for section, keys in wanted.items():
            for key, value in keys.items():
                if self.state == "present":
                    touched = document.set(section, key, value)
                else:
                    touched = document.remove(section, key)
                if touched:
                    changed_keys.append(f"{section}.{key}")

        def origin(section: str, key: str) -> str:
            if section in wanted and (not key or key in wanted[section]):
                return f"settings.{section}" + (f".{key}" if key else "")
            return f"{self.path} [{section}]" + (f" {key}" if key else "")

        # the resulting file is validated as a whole; sections named in settings are checked
        # even when state=absent leaves them empty
        resulting = {section: {} for section in wanted}
        resulting.update(document.sections())
        validate(resulting, self.facts, origin)
        after = document.render()
        changed = after != before
        result: dict[str, Any] = {
            "changed": changed,
            "path": self.path,
            "changed_keys": changed_keys,
            "diff": {
                "before": before,
                "after": after,
                "before_header": self.path,
                "after_header": self.path,
            },
        }
        if changed and not self.check_mode:
            if self.backup and os.path.exists(self.path):
                result["backup_file"] = backup_file(self.path)
            atomic_write(self.path, after, default_mode=self.mode)
        return result
