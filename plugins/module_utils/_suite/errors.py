# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors whose message is meant for the user (module_kit turns them into fail_json(msg=...))."""

from __future__ import annotations

import sys
from typing import Any, Optional

PSUTIL_MISSING = (
    "this target has no Linux /proc to read, so the psutil Python library is required: install "
    f"it for {sys.executable or 'the interpreter Ansible uses there'} (python3-psutil, or "
    f"{sys.executable or 'python3'} -m pip install psutil)"
)


class SuiteError(Exception):
    """An error the user can act on; ``msg`` says what is wrong and how to fix it.

    ``details`` are extra return values of the failed task (for example what was removed before
    a deletion had to stop, or the drain progress of a refused stop)."""

    def __init__(self, msg: str, details: Optional[dict[str, Any]] = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details or {}

    def __str__(self) -> str:
        return self.msg


class ProfileError(SuiteError):
    """A suite profile (or the suite's configuration file) is invalid."""


class UnsafePathError(SuiteError):
    """A path is refused for a destructive operation (deletion root, symlink, other filesystem)."""


def type_name(value: Any) -> str:
    """What kind of value this is, in the words of a YAML author ("a list", "a mapping"...),
    for messages that say what a setting should have been."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def load_psutil() -> Any:
    """The psutil module, imported on first use: the scans read Linux ``/proc`` directly and
    need psutil only where that cannot be read. Raises SuiteError naming the interpreter when it
    is not installed."""
    try:
        import psutil
    except ImportError as exc:  # pragma: no cover - depends on the target
        raise SuiteError(PSUTIL_MISSING) from exc
    return psutil
