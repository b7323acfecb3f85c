# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks for validating YAML data, shared by the profile (profile_schema.py) and its deploy
section (deploy.py): ``Ctx`` builds every error as ``<source>: <where>: <field>: <problem>`` and
raises ProfileError; one function a kind of value (mapping, string, boolean, integer, ...).

Runs on targets: standard library only.
"""

from __future__ import annotations

import re
import reprlib
import typing as t

try:  # the regex parser: re._parser from Python 3.11, sre_parse before
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    type_name,
)

_ROLE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")

MAX_MESSAGE = 2000  # characters of one validation message; values in it are shortened first

_SHOW = reprlib.Repr()
_SHOW.maxlevel = 3
_SHOW.maxdict = _SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxset = 5
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlong = 40


class Ctx:
    """Builds error messages: '<source>: <where>: <prefix><field>: <problem>'.

    ``prefix`` names the section every field lies in (``deploy.``); a failure without a field
    names the section alone (``p.yml: deploy: must be a mapping``).
    """

    def __init__(self, source: str, where: str = "", prefix: str = "") -> None:
        self.source = source
        self.where = where
        self.prefix = prefix

    def at(self, where: str) -> Ctx:
        return Ctx(self.source, where, self.prefix)

    def fail(self, field: str, problem: str) -> t.NoReturn:
        parts = [self.source]
        if self.where:
            parts.append(self.where)
        if field:
            parts.append(self.prefix + field)
        elif self.prefix:
            parts.append(self.prefix.rstrip("."))
        parts.append(problem)
        message = ": ".join(parts)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"... ({len(message)} characters)"
        raise ProfileError(message)


def show(value: t.Any) -> str:
    """A value quoted in an error: bounded in size and cost however large the value is (a YAML
    alias expanded many times over is never rendered whole)."""
    return _SHOW.repr(value)


def mapping(ctx: Ctx, field: str, value: t.Any, allowed: t.Sequence[str]) -> dict[str, t.Any]:
    if not isinstance(value, dict):
        ctx.fail(field, f"must be a mapping, got {type_name(value)}")
    for key in value:
        if key not in allowed:
            hint = ""
            import difflib  # only for a message: most loads never need it

            close = difflib.get_close_matches(str(key), allowed, n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
            sub = f"{field}.{key}" if field else str(key)
            ctx.fail(sub, f"unknown key (allowed: {', '.join(allowed)}){hint}")
    return value


def required(ctx: Ctx, data: dict[str, t.Any], prefix: str, key: str) -> t.Any:
    if key not in data or data[key] is None:
        ctx.fail(f"{prefix}{key}", "missing required field")
    return data[key]


def string(ctx: Ctx, field: str, value: t.Any, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        ctx.fail(field, f"must be a string, got {type_name(value)}")
    if not allow_empty and not value.strip():
        ctx.fail(field, "must not be empty")
    return value


def opt_string(ctx: Ctx, field: str, value: t.Any) -> t.Optional[str]:
    return None if value is None else string(ctx, field, value)


def boolean(ctx: Ctx, field: str, value: t.Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        ctx.fail(field, f"must be true or false, got {type_name(value)} {show(value)}")
    return value


def integer(ctx: Ctx, field: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.fail(field, f"must be an integer, got {type_name(value)} {show(value)}")
    return value


def port_number(ctx: Ctx, field: str, value: t.Any) -> int:
    port = integer(ctx, field, value)
    if not 1 <= port <= 65535:
        ctx.fail(field, f"{port} is outside 1-65535")
    return port


def abs_path(ctx: Ctx, field: str, value: t.Any) -> str:
    path = string(ctx, field, value)
    if not path.startswith("/"):
        ctx.fail(field, f"'{path}' must be an absolute path")
    return path


def items(ctx: Ctx, field: str, value: t.Any) -> list[t.Any]:
    """A list field that may be left out (None gives an empty list)."""
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.fail(field, f"must be a list, got {type_name(value)}")
    return value


def string_list(ctx: Ctx, field: str, value: t.Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        ctx.fail(field, f"must be a list, got {type_name(value)}")
    return tuple(string(ctx, f"{field}[{i}]", item) for i, item in enumerate(value))


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _nested_unbounded(nodes: t.Any, inside: bool = False) -> bool:
    """True when an unbounded repeat (``*``, ``+``, ``{n,}``) contains another one: ``(a+)+``,
    ``(a*)*``, ``(.*)+``; such a regex can take time exponential in the input's length."""
    for op, arg in nodes:
        name = str(op)
        subs: list[t.Any] = []
        unbounded = False
        if name in _REPEATS:
            unbounded = arg[1] == _sre_parse.MAXREPEAT
            if unbounded and inside:
                return True
            subs = [arg[2]]
        elif name == "SUBPATTERN":
            subs = [arg[-1]]
        elif name == "BRANCH":
            subs = list(arg[1])
        elif name in ("ASSERT", "ASSERT_NOT"):
            subs = [arg[1]]
        elif name == "ATOMIC_GROUP":
            subs = [arg]
        if any(_nested_unbounded(sub, inside or unbounded) for sub in subs):
            return True
    return False


def regex(ctx: Ctx, field: str, value: t.Any) -> re.Pattern[str]:
    pattern = string(ctx, field, value)
    try:
        compiled = re.compile(pattern)
        nested = _nested_unbounded(_sre_parse.parse(pattern))
    except re.error as exc:
        ctx.fail(field, f"invalid regular expression {show(pattern)}: {exc}")
    if nested:
        ctx.fail(
            field,
            f"regular expression {show(pattern)} repeats a group that itself repeats without "
            "bound (like (a+)+ or (.*)*), which can take exponential time on a hostile command "
            "line; write it without the nesting (a+ instead of (a+)+)",
        )
    return compiled


def role_names(ctx: Ctx, field: str, value: t.Any) -> tuple[str, ...]:
    roles = string_list(ctx, field, value)
    if not roles:
        ctx.fail(field, "must name at least one role")
    seen: set[str] = set()
    for i, role in enumerate(roles):
        if not _ROLE_RE.fullmatch(role):
            ctx.fail(f"{field}[{i}]", f"'{role}' is not a valid role name ([A-Za-z0-9_-]+)")
        if role in seen:
            ctx.fail(f"{field}[{i}]", f"role '{role}' is listed twice")
        seen.add(role)
    return roles


def known_roles(ctx: Ctx, field: str, roles: t.Sequence[str], suite_roles: t.Sequence[str]) -> None:
    """Each of ``roles`` must be one of the suite's roles."""
    for i, role in enumerate(roles):
        if role not in suite_roles:
            ctx.fail(
                f"{field}[{i}]", f"role '{role}' is not in suite.roles ({', '.join(suite_roles)})"
            )
