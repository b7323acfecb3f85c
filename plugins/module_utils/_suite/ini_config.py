# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``config`` module's logic: edit the suite INI key by key, validate, write atomically.

The file is read, edited and validated with ``suite_ini`` (one reader, one rule set for every
module); the editor keeps comments, blank lines and the order of sections and keys, so that a
diff shows only the keys that really changed.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from typing import Any

from ansible_collections.daemonops.suite.plugins.module_utils._suite import fileio
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import (
    IniDocument,
    ProfileFacts,
    check_syntax,
    file_origin,
    read_text,
    validate,
)

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
        before = read_text(self.path) or ""
        on_disk = IniDocument(before)
        check_syntax(self.path, on_disk)
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

        in_file = file_origin(self.path, on_disk)

        def origin(section: str, key: str) -> str:
            if section in wanted and (not key or key in wanted[section]):
                return f"settings.{section}" + (f".{key}" if key else "")
            return in_file(section, key)

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
