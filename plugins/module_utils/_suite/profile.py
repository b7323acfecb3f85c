# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The suite profile: loading, complete validation and the Profile/Daemon/Port model.

A profile is data (YAML on the controller, a dict on the target). ``load_profile`` validates it
completely and refuses with a ``ProfileError`` whose message names the source, the daemon and the
field, e.g. ``profiles/sesam.yml: daemon 'stpd': ports[1].port: 70000 is outside 1-65535``.

Runs on targets: standard library only (PyYAML is imported lazily by ``load_profile_file``).
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import os
import re
import reprlib
import typing as t

try:  # the regex parser: re._parser from Python 3.11, sre_parse before
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from ansible_collections.daemonops.suite.plugins.module_utils._suite import fileio
from ansible_collections.daemonops.suite.plugins.module_utils._suite.deploy import validate_deploy
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    SuiteError,
    type_name,
)

PID_STORE_TYPES = ("sqlite", "pidfile", "postgresql")
PID_STORE_COLUMNS = ("name", "pid", "start_time", "boot_id", "host", "exe")
PROBE_TYPES = ("tcp", "http")
CONTROL_ACTIONS = ("start", "stop", "status", "restart")

_TOP_KEYS = ("suite", "daemons", "deploy")
_SUITE_KEYS = (
    "name",
    "description",
    "roles",
    "control",
    "systemd_unit",
    "config_file",
    "version_file",
    "pid_store",
    "cluster_data",
)
DAEMON_CONTROL_ACTIONS = ("start_daemon", "stop_daemon")
_CONTROL_KEYS = (*CONTROL_ACTIONS, *DAEMON_CONTROL_ACTIONS, "force_option")
_PID_STORE_KEYS = ("type", "path", "table", "dsn", "columns", "pattern", "config_key")
_CLUSTER_KEYS = ("path", "depth")
_DAEMON_KEYS = (
    "name",
    "description",
    "roles",
    "match",
    "ancestor",
    "ports",
    "count",
    "essential",
    "enabled",
    "systemd_unit",
    "log_file",
)
_MATCH_KEYS = ("cmdline", "exe", "user")
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")
_PORT_KEYS = ("port", "probe")
_PROBE_KEYS = ("type", "path", "status", "tls", "timeout")
_COUNT_KEYS = ("min", "max")

_SUITE_NAME_RE = re.compile(r"[a-z0-9_]+")
_DAEMON_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ROLE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_SQL_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_COLUMN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATTERN_FIELDS = ("name", "port")


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Port:
    """A TCP port a daemon listens on, with an optional probe.

    ``probe`` is None or a normalised dict: ``{type: tcp, timeout}`` or
    ``{type: http, path, status, tls, timeout}``.
    """

    port: int
    probe: t.Optional[dict[str, t.Any]] = None

    def to_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"port": self.port}
        if self.probe is not None:
            result["probe"] = dict(self.probe)
        return result


@dataclasses.dataclass(frozen=True)
class Daemon:
    """One daemon of a suite and how to recognise it in the process table."""

    name: str
    description: str
    roles: tuple[str, ...]
    cmdline_regex: re.Pattern[str]
    exe_regex: t.Optional[re.Pattern[str]]
    ancestor: t.Optional[str]
    ports: tuple[Port, ...]
    count_min: int = 1
    count_max: t.Optional[int] = None
    essential: bool = False
    enabled: bool = True
    #: the daemon's own systemd unit, where the product ships one per daemon (Debian's Bacula)
    systemd_unit: t.Optional[str] = None
    log_file: t.Optional[str] = None
    user: t.Optional[t.Union[int, str]] = None  # match.user: uid number or user name

    @property
    def port_numbers(self) -> list[int]:
        return [p.port for p in self.ports]

    def matches(
        self,
        cmdline: t.Sequence[str],
        exe: t.Optional[str] = None,
        instance: t.Optional[str] = None,
    ) -> bool:
        """True if a process with this cmdline (and exe) is an instance of this daemon.

        ``cmdline_regex`` is searched in the space-joined cmdline (Linux cuts ``comm`` to 15
        characters, the cmdline is complete). ``exe_regex``, when the profile sets one, must
        match ``exe`` if ``exe`` is known (None = unreadable, not held against the process).
        ``instance``, when given, must appear as a substring of the joined cmdline. The
        regexes are applied to the first ``MAX_MATCHED_CHARS`` characters only.
        """
        if not cmdline:
            return False
        joined = " ".join(cmdline)
        # local users choose their command lines: the regex sees a bounded prefix only
        if not self.cmdline_regex.search(joined[:MAX_MATCHED_CHARS]):
            return False
        if (
            self.exe_regex is not None
            and exe is not None
            and not self.exe_regex.search(exe[:MAX_MATCHED_CHARS])
        ):
            return False
        return not (instance and instance not in joined)

    def to_dict(self) -> dict[str, t.Any]:
        match: dict[str, str] = {"cmdline": self.cmdline_regex.pattern}
        if self.exe_regex is not None:
            match["exe"] = self.exe_regex.pattern
        if self.user is not None:
            match["user"] = self.user  # type: ignore[assignment]
        result: dict[str, t.Any] = {
            "name": self.name,
            "description": self.description,
            "roles": list(self.roles),
            "match": match,
        }
        if self.ancestor is not None:
            result["ancestor"] = self.ancestor
        result["ports"] = [p.to_dict() for p in self.ports]
        result["count"] = {"min": self.count_min, "max": self.count_max}
        result["essential"] = self.essential
        result["enabled"] = self.enabled
        if self.systemd_unit is not None:
            result["systemd_unit"] = self.systemd_unit
        if self.log_file is not None:
            result["log_file"] = self.log_file
        return result


@dataclasses.dataclass(frozen=True)
class Control:
    """The suite's own control command (argv lists)."""

    start: tuple[str, ...]
    stop: tuple[str, ...]
    status: t.Optional[tuple[str, ...]] = None
    restart: t.Optional[tuple[str, ...]] = None
    force_option: t.Optional[str] = None
    start_daemon: t.Optional[tuple[str, ...]] = None
    stop_daemon: t.Optional[tuple[str, ...]] = None

    def to_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {}
        for action in (*CONTROL_ACTIONS, *DAEMON_CONTROL_ACTIONS):
            argv = getattr(self, action)
            if argv is not None:
                result[action] = list(argv)
        if self.force_option is not None:
            result["force_option"] = self.force_option
        return result


@dataclasses.dataclass(frozen=True)
class PidStore:
    """Where the suite records its daemons' PIDs.

    ``columns`` maps the logical fields (name, pid, start_time, boot_id, host, exe) to column
    names; only the fields the store has are present (name and pid always). ``pattern`` is the
    pidfile name inside ``path`` for the pidfile type (``{name}`` and ``{port}`` = the daemon's
    first port are replaced).
    """

    type: str
    path: t.Optional[str] = None
    table: t.Optional[str] = None
    dsn: t.Optional[str] = None
    columns: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"name": "name", "pid": "pid"}
    )
    pattern: t.Optional[str] = None
    #: ``section.key`` of the suite INI that sets ``path`` for an instance (refsuite:
    #: ``suite.state_db``); ``apply_config`` follows it.
    config_key: t.Optional[str] = None

    def pidfile_name(self, daemon: Daemon) -> str:
        """The pidfile name of ``daemon`` (pidfile stores only)."""
        pattern = self.pattern or "{name}.pid"
        port = daemon.ports[0].port if daemon.ports else ""
        return pattern.format(name=daemon.name, port=port)

    def to_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"type": self.type}
        for key in ("path", "table", "dsn", "pattern", "config_key"):
            value = getattr(self, key)
            if value is not None:
                result[key] = value
        if self.type != "pidfile":
            result["columns"] = dict(self.columns)
        return result


@dataclasses.dataclass(frozen=True)
class ClusterData:
    """A cluster data tree: files at ``depth`` levels below ``path`` (like /var/cluster/sms/*/*)."""

    path: str
    depth: int = 1

    def to_dict(self) -> dict[str, t.Any]:
        return {"path": self.path, "depth": self.depth}


@dataclasses.dataclass(frozen=True)
class Profile:
    """A validated suite profile. Build it with ``load_profile``/``load_profile_file``."""

    name: str
    description: str
    roles: tuple[str, ...]
    control: t.Optional[Control]
    systemd_unit: t.Optional[str]
    config_file: t.Optional[str]
    pid_store: t.Optional[PidStore]
    cluster_data: t.Optional[ClusterData]
    daemons: tuple[Daemon, ...]
    source: str = dataclasses.field(default="<inline>", compare=False)
    #: a file whose first line is the installed suite's version (health_info reports it)
    version_file: t.Optional[str] = None
    #: the normalised ``deploy`` section (see deploy.py), None when the profile has none
    deploy: t.Optional[dict[str, t.Any]] = None
    #: the profile's folder (profiles/<suite>/, holding templates/) when loaded from one
    folder: t.Optional[str] = dataclasses.field(default=None, compare=False)

    @property
    def daemon_names(self) -> list[str]:
        return [d.name for d in self.daemons]

    def daemon(self, name: str) -> Daemon:
        """The daemon called ``name``; ProfileError naming the known daemons otherwise."""
        for daemon in self.daemons:
            if daemon.name == name:
                return daemon
        raise ProfileError(
            f"profile '{self.name}' has no daemon '{name}'; "
            f"known daemons: {', '.join(self.daemon_names)}"
        )

    def daemons_for_roles(self, roles: t.Iterable[str]) -> list[Daemon]:
        """Daemons that run on a host with any of ``roles``, in profile order.

        An unknown role is refused (ProfileError naming the suite's roles); this is the one
        place the roles of a host are checked against the profile.
        """
        wanted = list(roles)
        unknown = [r for r in wanted if r not in self.roles]
        if unknown:
            raise ProfileError(
                f"roles: {', '.join(unknown)} not a role of suite {self.name}; "
                f"use some of {', '.join(self.roles)}"
            )
        return [d for d in self.daemons if any(r in d.roles for r in wanted)]

    def control_command(
        self, action: str, force: bool = False, config_file: t.Optional[str] = None
    ) -> list[str]:
        """argv of the suite's control command for ``action`` (start/stop/status/restart).

        ``force`` appends ``control.force_option``. ``config_file``, when given, replaces every
        argument equal to the profile's ``suite.config_file`` (so a second instance's config is
        used). Raises ProfileError if the profile has no such command.
        """
        if action not in CONTROL_ACTIONS:
            raise ProfileError(
                f"unknown control action '{action}'; use one of {', '.join(CONTROL_ACTIONS)}"
            )
        argv = getattr(self.control, action) if self.control is not None else None
        if argv is None:
            raise ProfileError(
                f"profile '{self.name}' defines no suite.control.{action} command; "
                "add it to the profile or use the systemd backend"
            )
        result = list(argv)
        if config_file and self.config_file:
            result = [config_file if arg == self.config_file else arg for arg in result]
        if force:
            if not self.control or not self.control.force_option:
                raise ProfileError(
                    f"profile '{self.name}' has no suite.control.force_option; "
                    "a forced start is not available for this suite"
                )
            result.append(self.control.force_option)
        return result

    def daemon_command(
        self,
        action: str,
        daemon: str,
        force: bool = False,
        config_file: t.Optional[str] = None,
    ) -> t.Optional[list[str]]:
        """argv of ``control.start_daemon``/``stop_daemon`` for one daemon, or None if unset.

        ``{daemon}`` is replaced by the daemon's name; ``config_file`` and ``force`` as in
        ``control_command``.
        """
        if action not in DAEMON_CONTROL_ACTIONS:
            raise ProfileError(
                f"unknown per-daemon control action '{action}'; "
                f"use one of {', '.join(DAEMON_CONTROL_ACTIONS)}"
            )
        argv = getattr(self.control, action) if self.control is not None else None
        if argv is None:
            return None
        result = [daemon if arg == "{daemon}" else arg for arg in argv]
        if config_file and self.config_file:
            result = [config_file if arg == self.config_file else arg for arg in result]
        if force and self.control is not None and self.control.force_option:
            result.append(self.control.force_option)
        return result

    def with_config(self, overrides: t.Mapping[str, t.Mapping[str, t.Any]]) -> Profile:
        """A copy with daemons' ``enabled`` and port numbers replaced.

        ``overrides`` maps daemon names to ``{enabled: bool, ports: [int, ...]}`` (either key
        optional). ``ports`` replaces the port numbers in order; probes stay with their
        position; extra ports get no probe. The result is validated again (ports 1-65535,
        no port on two daemons).
        """
        return _with_config(self, overrides, self.source, {})

    def to_dict(self) -> dict[str, t.Any]:
        """A plain dict (JSON-safe) that ``load_profile`` accepts and that gives an equal Profile."""
        suite: dict[str, t.Any] = {
            "name": self.name,
            "description": self.description,
            "roles": list(self.roles),
        }
        if self.control is not None:
            suite["control"] = self.control.to_dict()
        if self.systemd_unit is not None:
            suite["systemd_unit"] = self.systemd_unit
        if self.config_file is not None:
            suite["config_file"] = self.config_file
        if self.version_file is not None:
            suite["version_file"] = self.version_file
        if self.pid_store is not None:
            suite["pid_store"] = self.pid_store.to_dict()
        if self.cluster_data is not None:
            suite["cluster_data"] = self.cluster_data.to_dict()
        result: dict[str, t.Any] = {"suite": suite, "daemons": [d.to_dict() for d in self.daemons]}
        if self.deploy is not None:
            result["deploy"] = self.deploy
        return result


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


class _Ctx:
    """Builds error messages: '<source>: <where>: <field>: <problem>'."""

    def __init__(self, source: str, where: str = "") -> None:
        self.source = source
        self.where = where

    def at(self, where: str) -> _Ctx:
        return _Ctx(self.source, where)

    def fail(self, field: str, problem: str) -> t.NoReturn:
        parts = [self.source]
        if self.where:
            parts.append(self.where)
        if field:
            parts.append(field)
        parts.append(problem)
        message = ": ".join(parts)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"... ({len(message)} characters)"
        raise ProfileError(message)


MAX_MATCHED_CHARS = 2048  # of a command line (or exe) that a match regex is applied to
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # the suite's INI file; a larger one is refused unread
MAX_MESSAGE = 2000  # characters of one validation message; values in it are shortened first

_SHOW = reprlib.Repr()
_SHOW.maxlevel = 3
_SHOW.maxdict = _SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxset = 5
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlong = 40


def _show(value: t.Any) -> str:
    """A value quoted in an error: bounded in size and cost however large the value is (a YAML
    alias expanded many times over is never rendered whole)."""
    return _SHOW.repr(value)


def _mapping(ctx: _Ctx, field: str, value: t.Any, allowed: t.Sequence[str]) -> dict[str, t.Any]:
    if not isinstance(value, dict):
        ctx.fail(field, f"must be a mapping, got {type_name(value)}")
    for key in value:
        if key not in allowed:
            hint = ""
            close = difflib.get_close_matches(str(key), allowed, n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
            sub = f"{field}.{key}" if field else str(key)
            ctx.fail(sub, f"unknown key (allowed: {', '.join(allowed)}){hint}")
    return value


def _required(ctx: _Ctx, data: dict[str, t.Any], prefix: str, key: str) -> t.Any:
    if key not in data or data[key] is None:
        ctx.fail(f"{prefix}{key}", "missing required field")
    return data[key]


def _string(ctx: _Ctx, field: str, value: t.Any, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        ctx.fail(field, f"must be a string, got {type_name(value)}")
    if not allow_empty and not value.strip():
        ctx.fail(field, "must not be empty")
    return value


def _opt_string(ctx: _Ctx, field: str, value: t.Any) -> t.Optional[str]:
    return None if value is None else _string(ctx, field, value)


def _bool(ctx: _Ctx, field: str, value: t.Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        ctx.fail(field, f"must be true or false, got {type_name(value)} {_show(value)}")
    return value


def _int(ctx: _Ctx, field: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.fail(field, f"must be an integer, got {type_name(value)} {_show(value)}")
    return value


def _port_number(ctx: _Ctx, field: str, value: t.Any) -> int:
    port = _int(ctx, field, value)
    if not 1 <= port <= 65535:
        ctx.fail(field, f"{port} is outside 1-65535")
    return port


def _abs_path(ctx: _Ctx, field: str, value: t.Any) -> str:
    path = _string(ctx, field, value)
    if not path.startswith("/"):
        ctx.fail(field, f"'{path}' must be an absolute path")
    return path


def _string_list(ctx: _Ctx, field: str, value: t.Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        ctx.fail(field, f"must be a list, got {type_name(value)}")
    return tuple(_string(ctx, f"{field}[{i}]", item) for i, item in enumerate(value))


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _nested_unbounded(items: t.Any, inside: bool = False) -> bool:
    """True when an unbounded repeat (``*``, ``+``, ``{n,}``) contains another one: ``(a+)+``,
    ``(a*)*``, ``(.*)+``; such a regex can take time exponential in the input's length."""
    for op, arg in items:
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


def _regex(ctx: _Ctx, field: str, value: t.Any) -> re.Pattern[str]:
    pattern = _string(ctx, field, value)
    try:
        compiled = re.compile(pattern)
        nested = _nested_unbounded(_sre_parse.parse(pattern))
    except re.error as exc:
        ctx.fail(field, f"invalid regular expression {_show(pattern)}: {exc}")
    if nested:
        ctx.fail(
            field,
            f"regular expression {_show(pattern)} repeats a group that itself repeats without "
            "bound (like (a+)+ or (.*)*), which can take exponential time on a hostile command "
            "line; write it without the nesting (a+ instead of (a+)+)",
        )
    return compiled


def _roles(ctx: _Ctx, field: str, value: t.Any) -> tuple[str, ...]:
    roles = _string_list(ctx, field, value)
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


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _control(ctx: _Ctx, value: t.Any) -> t.Optional[Control]:
    if value is None:
        return None
    data = _mapping(ctx, "control", value, _CONTROL_KEYS)
    argvs: dict[str, t.Optional[tuple[str, ...]]] = {}
    for action in CONTROL_ACTIONS:
        if action in ("start", "stop"):
            _required(ctx, data, "control.", action)
        if data.get(action) is None:
            argvs[action] = None
            continue
        argv = _string_list(ctx, f"control.{action}", data[action])
        if not argv:
            ctx.fail(f"control.{action}", "must be a non-empty argv list, e.g. [/path/cmd, start]")
        argvs[action] = argv
    start = argvs["start"]
    stop = argvs["stop"]
    if start is None or stop is None:  # ctx.fail raised already; this keeps type checkers sure
        raise AssertionError("control.start and control.stop are required")
    return Control(
        start=start,
        stop=stop,
        status=argvs["status"],
        restart=argvs["restart"],
        force_option=_opt_string(ctx, "control.force_option", data.get("force_option")),
        **_daemon_control(ctx, data),
    )


def _daemon_control(ctx: _Ctx, data: dict[str, t.Any]) -> dict[str, t.Optional[tuple[str, ...]]]:
    """``control.start_daemon`` / ``control.stop_daemon``: argv lists with a ``{daemon}`` item."""
    result: dict[str, t.Optional[tuple[str, ...]]] = {}
    for action in DAEMON_CONTROL_ACTIONS:
        if data.get(action) is None:
            result[action] = None
            continue
        argv = _string_list(ctx, f"control.{action}", data[action])
        if not argv or "{daemon}" not in argv:
            ctx.fail(
                f"control.{action}",
                "must be an argv list with a '{daemon}' item, e.g. [/path/cmd, start, '{daemon}']",
            )
        result[action] = argv
    return result


def _pid_store(ctx: _Ctx, value: t.Any) -> t.Optional[PidStore]:
    if value is None:
        return None
    data = _mapping(ctx, "pid_store", value, _PID_STORE_KEYS)
    store_type = _string(ctx, "pid_store.type", _required(ctx, data, "pid_store.", "type"))
    if store_type not in PID_STORE_TYPES:
        ctx.fail("pid_store.type", f"'{store_type}' is not one of {', '.join(PID_STORE_TYPES)}")
    path = table = dsn = pattern = None
    columns = {"name": "name", "pid": "pid"}

    def refuse(key: str, only: str) -> None:
        if data.get(key) is not None:
            ctx.fail(f"pid_store.{key}", f"only applies to pid_store type {only}")

    if store_type in ("sqlite", "pidfile"):
        path = _abs_path(ctx, "pid_store.path", _required(ctx, data, "pid_store.", "path"))
    else:
        refuse("path", "sqlite or pidfile")
    if store_type in ("sqlite", "postgresql"):
        table = _string(ctx, "pid_store.table", _required(ctx, data, "pid_store.", "table"))
        if not _SQL_IDENT_RE.fullmatch(table):
            ctx.fail("pid_store.table", f"'{table}' is not a plain table name ([schema.]table)")
        if data.get("columns") is not None:
            cols = _mapping(ctx, "pid_store.columns", data["columns"], PID_STORE_COLUMNS)
            columns = {}
            for key in PID_STORE_COLUMNS:
                if key in ("name", "pid"):
                    _required(ctx, cols, "pid_store.columns.", key)
                if cols.get(key) is None:
                    continue
                column = _string(ctx, f"pid_store.columns.{key}", cols[key])
                if not _COLUMN_RE.fullmatch(column):
                    ctx.fail(f"pid_store.columns.{key}", f"'{column}' is not a plain column name")
                columns[key] = column
    else:
        refuse("table", "sqlite or postgresql")
        refuse("columns", "sqlite or postgresql")
    if store_type == "postgresql":
        dsn = _opt_string(ctx, "pid_store.dsn", data.get("dsn"))
    else:
        refuse("dsn", "postgresql")
    if store_type == "pidfile":
        pattern = _opt_string(ctx, "pid_store.pattern", data.get("pattern"))
        if pattern is not None:
            if "/" in pattern:
                ctx.fail("pid_store.pattern", f"'{pattern}' must be a file name, not a path")
            try:
                pattern.format(name="x", port=1)
            except (KeyError, IndexError, ValueError) as exc:
                ctx.fail(
                    "pid_store.pattern",
                    f"'{pattern}' may only use the fields {{name}} and {{port}} ({exc!r})",
                )
            if "{name}" not in pattern:
                ctx.fail("pid_store.pattern", f"'{pattern}' must contain {{name}}")
    else:
        refuse("pattern", "pidfile")
    config_key = _opt_string(ctx, "pid_store.config_key", data.get("config_key"))
    if config_key is not None:
        if store_type == "postgresql":
            ctx.fail("pid_store.config_key", "only applies to pid_store type sqlite or pidfile")
        if not re.match(r"^[^.\s\[\]]+\.[^.\s\[\]]+$", config_key):
            ctx.fail(
                "pid_store.config_key",
                f"'{config_key}' must be section.key of the suite INI, such as suite.state_db",
            )
    return PidStore(
        type=store_type,
        path=path,
        table=table,
        dsn=dsn,
        columns=columns,
        pattern=pattern,
        config_key=config_key,
    )


def _cluster_data(ctx: _Ctx, value: t.Any) -> t.Optional[ClusterData]:
    if value is None:
        return None
    data = _mapping(ctx, "cluster_data", value, _CLUSTER_KEYS)
    path = _abs_path(ctx, "cluster_data.path", _required(ctx, data, "cluster_data.", "path"))
    depth = 1
    if data.get("depth") is not None:
        depth = _int(ctx, "cluster_data.depth", data["depth"])
        if depth < 1:
            ctx.fail("cluster_data.depth", f"{depth} must be 1 or more")
    return ClusterData(path=os.path.normpath(path), depth=depth)


def _probe(ctx: _Ctx, field: str, value: t.Any) -> t.Optional[dict[str, t.Any]]:
    if value is None:
        return None
    data = _mapping(ctx, field, value, _PROBE_KEYS)
    probe_type = _string(ctx, f"{field}.type", _required(ctx, data, f"{field}.", "type"))
    if probe_type not in PROBE_TYPES:
        ctx.fail(f"{field}.type", f"'{probe_type}' is not one of {', '.join(PROBE_TYPES)}")
    timeout: t.Any = data.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        ctx.fail(f"{field}.timeout", f"must be a positive number of seconds, got {_show(timeout)}")
    probe: dict[str, t.Any] = {"type": probe_type, "timeout": float(timeout)}
    if probe_type == "tcp":
        for key in ("path", "status", "tls"):
            if data.get(key) is not None:
                ctx.fail(f"{field}.{key}", "only applies to probe type http")
        return probe
    path = _string(ctx, f"{field}.path", data.get("path", "/"))
    if not path.startswith("/"):
        ctx.fail(f"{field}.path", f"'{path}' must start with '/'")
    status = _int(ctx, f"{field}.status", data.get("status", 200))
    if not 100 <= status <= 599:
        ctx.fail(f"{field}.status", f"{status} is not an HTTP status (100-599)")
    probe.update(path=path, status=status, tls=_bool(ctx, f"{field}.tls", data.get("tls"), False))
    return probe


def _daemon(ctx: _Ctx, index: int, value: t.Any, suite_roles: tuple[str, ...]) -> Daemon:
    where = f"daemons[{index}]"
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        where = f"daemon '{value['name']}'"
    dctx = ctx.at(where)
    data = _mapping(dctx, "", value, _DAEMON_KEYS)
    name = _string(dctx, "name", _required(dctx, data, "", "name"))
    if not _DAEMON_NAME_RE.fullmatch(name):
        dctx.fail("name", f"'{name}' is not a valid daemon name ([A-Za-z0-9][A-Za-z0-9_.-]*)")
    roles = _roles(dctx, "roles", _required(dctx, data, "", "roles"))
    for i, role in enumerate(roles):
        if role not in suite_roles:
            dctx.fail(
                f"roles[{i}]",
                f"role '{role}' is not in suite.roles ({', '.join(suite_roles)})",
            )
    match = _mapping(dctx, "match", _required(dctx, data, "", "match"), _MATCH_KEYS)
    cmdline_regex = _regex(dctx, "match.cmdline", _required(dctx, match, "match.", "cmdline"))
    exe_regex = None
    if match.get("exe") is not None:
        exe_regex = _regex(dctx, "match.exe", match["exe"])
    user = _match_user(dctx, match.get("user"))
    ancestor = _opt_string(dctx, "ancestor", data.get("ancestor"))
    ports_value = data.get("ports")
    ports: list[Port] = []
    if ports_value is not None:
        if not isinstance(ports_value, list):
            dctx.fail("ports", f"must be a list, got {type_name(ports_value)}")
        seen: dict[int, int] = {}
        for i, item in enumerate(ports_value):
            field = f"ports[{i}]"
            pdata = _mapping(dctx, field, item, _PORT_KEYS)
            number = _port_number(
                dctx, f"{field}.port", _required(dctx, pdata, f"{field}.", "port")
            )
            if number in seen:
                dctx.fail(f"{field}.port", f"{number} is already listed as ports[{seen[number]}]")
            seen[number] = i
            ports.append(
                Port(port=number, probe=_probe(dctx, f"{field}.probe", pdata.get("probe")))
            )
    count_min, count_max = 1, None
    if data.get("count") is not None:
        count = _mapping(dctx, "count", data["count"], _COUNT_KEYS)
        if count.get("min") is not None:
            count_min = _int(dctx, "count.min", count["min"])
            if count_min < 0:
                dctx.fail("count.min", f"{count_min} must be 0 or more")
        if count.get("max") is not None:
            count_max = _int(dctx, "count.max", count["max"])
            if count_max < 1:
                dctx.fail("count.max", f"{count_max} must be 1 or more")
            if count_max < count_min:
                dctx.fail("count", f"min {count_min} is greater than max {count_max}")
    return Daemon(
        name=name,
        description=_string(dctx, "description", data.get("description") or "", allow_empty=True),
        roles=roles,
        cmdline_regex=cmdline_regex,
        exe_regex=exe_regex,
        ancestor=ancestor,
        ports=tuple(ports),
        count_min=count_min,
        count_max=count_max,
        essential=_bool(dctx, "essential", data.get("essential"), False),
        enabled=_bool(dctx, "enabled", data.get("enabled"), True),
        systemd_unit=_opt_string(dctx, "systemd_unit", data.get("systemd_unit")),
        log_file=(
            _abs_path(dctx, "log_file", data["log_file"])
            if data.get("log_file") is not None
            else None
        ),
        user=user,
    )


def _match_user(ctx: _Ctx, value: t.Any) -> t.Optional[t.Union[int, str]]:
    """``match.user``: a uid (0 or more) or a user name; None when not set."""
    if value is None:
        return None
    if isinstance(value, bool):
        ctx.fail("match.user", f"must be a uid number or a user name, got {type_name(value)}")
    if isinstance(value, int):
        if value < 0:
            ctx.fail("match.user", f"uid {value} must be 0 or more")
        return value
    name = _string(ctx, "match.user", value)
    if name.isdigit():
        return int(name)
    if not _USER_RE.fullmatch(name):
        ctx.fail("match.user", f"{name!r} is not a user name ([A-Za-z_][A-Za-z0-9_.-]*$?)")
    return name


def _check_ancestry(ctx: _Ctx, daemons: t.Sequence[Daemon]) -> None:
    by_name = {d.name: d for d in daemons}
    for daemon in daemons:
        if daemon.ancestor is not None and daemon.ancestor not in by_name:
            ctx.at(f"daemon '{daemon.name}'").fail(
                "ancestor",
                f"'{daemon.ancestor}' is not a daemon of this profile "
                f"(known: {', '.join(by_name)})",
            )
    for daemon in daemons:
        chain = [daemon.name]
        current = daemon
        while current.ancestor is not None:
            if current.ancestor in chain:
                cycle = [*chain[chain.index(current.ancestor) :], current.ancestor]
                ctx.at(f"daemon '{daemon.name}'").fail(
                    "ancestor", f"ancestry cycle {' -> '.join(cycle)}"
                )
            chain.append(current.ancestor)
            current = by_name[current.ancestor]


def _check_ports_unique(
    ctx: _Ctx, daemons: t.Sequence[Daemon], lines: t.Optional[dict[str, int]] = None
) -> None:
    owner: dict[int, str] = {}
    for daemon in daemons:
        for i, port in enumerate(daemon.ports):
            other = owner.get(port.port)
            if other is not None and other != daemon.name:
                where = f"daemon '{daemon.name}'"
                if lines and daemon.name in lines:
                    where = f"line {lines[daemon.name]}: {where}"
                ctx.at(where).fail(
                    f"ports[{i}].port",
                    f"{port.port} is also a port of daemon '{other}'; one port belongs to one daemon",
                )
            owner[port.port] = daemon.name


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_profile(data: t.Any, source: str = "<inline>", folder: t.Optional[str] = None) -> Profile:
    """Validate ``data`` (the parsed YAML of a profile) completely and return a Profile.

    ``folder`` is the profile's folder (``profiles/<suite>/``) when it was read from one: the
    templates named in ``deploy`` must exist in its ``templates/``.
    Raises ProfileError naming ``source``, the daemon and the field on any problem.
    """
    ctx = _Ctx(source)
    top = _mapping(ctx, "", data, _TOP_KEYS)
    suite = _mapping(ctx, "suite", _required(ctx, top, "", "suite"), _SUITE_KEYS)
    sctx = ctx
    name = _string(sctx, "suite.name", _required(sctx, suite, "suite.", "name"))
    if not _SUITE_NAME_RE.fullmatch(name):
        sctx.fail("suite.name", f"'{name}' must match [a-z0-9_]+")
    roles = _roles(sctx, "suite.roles", _required(sctx, suite, "suite.", "roles"))
    description = _string(
        sctx, "suite.description", suite.get("description") or "", allow_empty=True
    )
    control = _control(ctx.at("suite"), suite.get("control"))
    systemd_unit = _opt_string(sctx, "suite.systemd_unit", suite.get("systemd_unit"))
    config_file = None
    if suite.get("config_file") is not None:
        config_file = _abs_path(sctx, "suite.config_file", suite["config_file"])
    version_file = None
    if suite.get("version_file") is not None:
        version_file = _abs_path(sctx, "suite.version_file", suite["version_file"])
    pid_store = _pid_store(ctx.at("suite"), suite.get("pid_store"))
    cluster = _cluster_data(ctx.at("suite"), suite.get("cluster_data"))

    daemons_value = _required(ctx, top, "", "daemons")
    if not isinstance(daemons_value, list):
        ctx.fail("daemons", f"must be a list, got {type_name(daemons_value)}")
    if not daemons_value:
        ctx.fail("daemons", "must list at least one daemon")
    daemons: list[Daemon] = []
    index_of: dict[str, int] = {}
    for i, item in enumerate(daemons_value):
        daemon = _daemon(ctx, i, item, roles)
        if daemon.name in index_of:
            ctx.at(f"daemon '{daemon.name}'").fail(
                "name", f"duplicate daemon name (also daemons[{index_of[daemon.name]}])"
            )
        index_of[daemon.name] = i
        daemons.append(daemon)
    _check_ancestry(ctx, daemons)
    _check_ports_unique(ctx, daemons)
    deploy = None
    if top.get("deploy") is not None:
        deploy = validate_deploy(top["deploy"], source, roles, [d.name for d in daemons], folder)
    return Profile(
        name=name,
        description=description,
        roles=roles,
        control=control,
        systemd_unit=systemd_unit,
        config_file=config_file,
        version_file=version_file,
        pid_store=pid_store,
        cluster_data=cluster,
        daemons=tuple(daemons),
        source=source,
        deploy=deploy,
        folder=folder,
    )


def load_profile_file(path: str) -> Profile:
    """Read a YAML profile file and validate it (controller side; needs PyYAML).

    A file named ``profile.yml`` is a folder profile (``profiles/<suite>/profile.yml`` with
    ``templates/`` beside it): its folder is remembered and its templates are checked.
    """
    import yaml  # lazily: targets receive profile data, not files

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    folder = (
        os.path.dirname(os.path.abspath(path)) if os.path.basename(path) == "profile.yml" else None
    )
    return load_profile(data, source=path, folder=folder)


def _with_config(
    profile: Profile,
    overrides: t.Mapping[str, t.Mapping[str, t.Any]],
    source: str,
    lines: dict[str, int],
) -> Profile:
    ctx = _Ctx(source)
    known = set(profile.daemon_names)
    for name in overrides:
        if name not in known:
            ctx.fail(f"[{name}]", f"no daemon '{name}' in profile '{profile.name}'")
    daemons: list[Daemon] = []
    for daemon in profile.daemons:
        override = overrides.get(daemon.name)
        if not override:
            daemons.append(daemon)
            continue
        where = f"daemon '{daemon.name}'"
        if daemon.name in lines:
            where = f"line {lines[daemon.name]}: {where}"
        dctx = ctx.at(where)
        for key in override:
            if key not in ("enabled", "ports"):
                dctx.fail(key, "unknown override (allowed: enabled, ports)")
        changes: dict[str, t.Any] = {}
        if override.get("enabled") is not None:
            changes["enabled"] = _bool(dctx, "enabled", override["enabled"], daemon.enabled)
        if override.get("ports") is not None:
            numbers = override["ports"]
            if not isinstance(numbers, (list, tuple)):
                dctx.fail("ports", f"must be a list of port numbers, got {type_name(numbers)}")
            new_ports: list[Port] = []
            for i, number in enumerate(numbers):
                number = _port_number(dctx, f"ports[{i}]", number)
                if number in [p.port for p in new_ports]:
                    dctx.fail(f"ports[{i}]", f"{number} is listed twice")
                probe = daemon.ports[i].probe if i < len(daemon.ports) else None
                new_ports.append(Port(port=number, probe=probe))
            changes["ports"] = tuple(new_ports)
        daemons.append(dataclasses.replace(daemon, **changes))
    _check_ports_unique(ctx, daemons, lines)
    return dataclasses.replace(profile, daemons=tuple(daemons))


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def read_config_overrides(
    path: str, daemon_names: t.Iterable[str]
) -> tuple[dict[str, dict[str, t.Any]], dict[str, int]]:
    """Parse the suite INI at ``path``: per daemon section, ``enabled``/``port``/``ports``.

    Returns (overrides, section line numbers). Sections that are not daemons (``[suite]``) and
    other keys are ignored. A missing file gives no overrides; an unreadable file or a bad
    value raises ProfileError naming the file and the line.
    """
    names = set(daemon_names)
    try:
        # only a regular file (a FIFO would block for ever), at most MAX_CONFIG_BYTES
        text = fileio.read_regular(path, MAX_CONFIG_BYTES, "suite configuration file").decode(
            "utf-8"
        )
    except FileNotFoundError:
        return {}, {}
    except SuiteError as exc:
        raise ProfileError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the suite configuration file: {exc}") from exc
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";", "#"), interpolation=None, strict=True
    )
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        lineno = getattr(exc, "lineno", None)
        where = f"{path}: line {lineno}" if lineno else path
        detail = str(exc).splitlines()[0]
        raise ProfileError(f"{where}: not a valid INI file: {detail}") from exc

    # configparser does not keep line numbers: find them (section header, key) ourselves.
    section_lines: dict[str, int] = {}
    key_lines: dict[tuple[str, str], int] = {}
    current = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and "]" in line:
            current = line[1 : line.index("]")].strip()
            section_lines.setdefault(current, number)
        elif current is not None and line and line[0] not in ";#":
            key = re.split(r"[=:]", line, maxsplit=1)[0].strip().lower()
            key_lines.setdefault((current, key), number)

    overrides: dict[str, dict[str, t.Any]] = {}
    for section in parser.sections():
        if section not in names:
            continue
        entry: dict[str, t.Any] = {}

        def bad(key: str, problem: str, section: str = section) -> t.NoReturn:
            line = key_lines.get((section, key), section_lines.get(section))
            raise ProfileError(f"{path}: line {line}: [{section}] {key}: {problem}")

        values = parser[section]
        if "enabled" in values:
            raw = values["enabled"].strip().lower()
            if raw in _TRUE:
                entry["enabled"] = True
            elif raw in _FALSE:
                entry["enabled"] = False
            else:
                bad("enabled", f"'{values['enabled']}' is not true or false")
        if "port" in values and "ports" in values:
            bad("ports", "set either port or ports, not both")
        for key in ("port", "ports"):
            if key not in values:
                continue
            items = [item.strip() for item in values[key].split(",")]
            if key == "port" and len(items) != 1:
                bad(key, f"'{values[key]}' must be one port number (use ports = a,b,c)")
            numbers = []
            for item in items:
                if not item.isdigit() or not 1 <= int(item) <= 65535:
                    bad(key, f"'{item}' is not a port number 1-65535")
                numbers.append(int(item))
            if len(set(numbers)) != len(numbers):
                bad(key, f"'{values[key]}' lists a port twice")
            entry["ports"] = numbers
        if entry:
            overrides[section] = entry
    return overrides, section_lines


def apply_config(profile: Profile, ini_path: t.Optional[str] = None) -> Profile:
    """The profile with the suite INI's ``enabled``/``port``/``ports`` applied.

    ``ini_path`` defaults to ``suite.config_file``; no path or a missing file returns the
    profile unchanged. Bad content raises ProfileError naming the file and line.
    """
    path = ini_path or profile.config_file
    if not path:
        return profile
    overrides, lines = read_config_overrides(path, profile.daemon_names)
    if overrides:
        profile = _with_config(profile, overrides, path, lines)
    store = profile.pid_store
    if store is not None and store.config_key:
        store_path = read_config_value(path, store.config_key)
        if store_path:
            if not os.path.isabs(store_path):
                raise ProfileError(
                    f"{path}: {store.config_key} = {store_path}: the PID store path must be "
                    "absolute"
                )
            profile = dataclasses.replace(
                profile, pid_store=dataclasses.replace(store, path=store_path)
            )
    return profile


def read_config_value(path: str, config_key: str) -> t.Optional[str]:
    """The value of ``section.key`` in the INI at ``path``; None when the file, the section or
    the key is missing (a file that cannot be parsed raises ProfileError)."""
    section, key = config_key.split(".", 1)
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";", "#"), interpolation=None, strict=False
    )
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ProfileError(f"{path}: cannot read {config_key}: {exc}") from exc
    value = parser.get(section, key, fallback=None)
    return value.strip() if value and value.strip() else None


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
