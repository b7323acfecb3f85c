# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Loading a suite profile: complete validation of its YAML data into a ``profile.Profile``.

``load_profile`` refuses with a ``ProfileError`` whose message names the source, the daemon and
the field, e.g. ``profiles/sesam.yml: daemon 'stpd': ports[1].port: 70000 is outside 1-65535``.

Runs on targets: standard library only (PyYAML is imported lazily by ``load_profile_file``).
"""

from __future__ import annotations

import importlib
import os
import re
import typing as t

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    type_name,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
    CONTROL_ACTIONS,
    DAEMON_CONTROL_ACTIONS,
    PID_STORE_COLUMNS,
    PID_STORE_TYPES,
    PROBE_TYPES,
    ClusterData,
    Control,
    Daemon,
    PidStore,
    Port,
    Profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.schema import (
    Ctx,
    abs_path,
    boolean,
    integer,
    known_roles,
    mapping,
    opt_string,
    port_number,
    regex,
    required,
    role_names,
    show,
    string,
    string_list,
)

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
_SQL_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_COLUMN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _control(ctx: Ctx, value: t.Any) -> t.Optional[Control]:
    if value is None:
        return None
    data = mapping(ctx, "control", value, _CONTROL_KEYS)
    argvs: dict[str, t.Optional[tuple[str, ...]]] = {}
    for action in CONTROL_ACTIONS:
        if action in ("start", "stop"):
            required(ctx, data, "control.", action)
        if data.get(action) is None:
            argvs[action] = None
            continue
        argv = string_list(ctx, f"control.{action}", data[action])
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
        force_option=opt_string(ctx, "control.force_option", data.get("force_option")),
        **_daemon_control(ctx, data),
    )


def _daemon_control(ctx: Ctx, data: dict[str, t.Any]) -> dict[str, t.Optional[tuple[str, ...]]]:
    """``control.start_daemon`` / ``control.stop_daemon``: argv lists with a ``{daemon}`` item."""
    result: dict[str, t.Optional[tuple[str, ...]]] = {}
    for action in DAEMON_CONTROL_ACTIONS:
        if data.get(action) is None:
            result[action] = None
            continue
        argv = string_list(ctx, f"control.{action}", data[action])
        if not argv or "{daemon}" not in argv:
            ctx.fail(
                f"control.{action}",
                "must be an argv list with a '{daemon}' item, e.g. [/path/cmd, start, '{daemon}']",
            )
        result[action] = argv
    return result


def _pid_store(ctx: Ctx, value: t.Any) -> t.Optional[PidStore]:
    if value is None:
        return None
    data = mapping(ctx, "pid_store", value, _PID_STORE_KEYS)
    store_type = string(ctx, "pid_store.type", required(ctx, data, "pid_store.", "type"))
    if store_type not in PID_STORE_TYPES:
        ctx.fail("pid_store.type", f"'{store_type}' is not one of {', '.join(PID_STORE_TYPES)}")
    path = table = dsn = pattern = None
    columns = {"name": "name", "pid": "pid"}

    def refuse(key: str, only: str) -> None:
        if data.get(key) is not None:
            ctx.fail(f"pid_store.{key}", f"only applies to pid_store type {only}")

    if store_type in ("sqlite", "pidfile"):
        path = abs_path(ctx, "pid_store.path", required(ctx, data, "pid_store.", "path"))
    else:
        refuse("path", "sqlite or pidfile")
    if store_type in ("sqlite", "postgresql"):
        table = string(ctx, "pid_store.table", required(ctx, data, "pid_store.", "table"))
        if not _SQL_IDENT_RE.fullmatch(table):
            ctx.fail("pid_store.table", f"'{table}' is not a plain table name ([schema.]table)")
        if data.get("columns") is not None:
            cols = mapping(ctx, "pid_store.columns", data["columns"], PID_STORE_COLUMNS)
            columns = {}
            for key in PID_STORE_COLUMNS:
                if key in ("name", "pid"):
                    required(ctx, cols, "pid_store.columns.", key)
                if cols.get(key) is None:
                    continue
                column = string(ctx, f"pid_store.columns.{key}", cols[key])
                if not _COLUMN_RE.fullmatch(column):
                    ctx.fail(f"pid_store.columns.{key}", f"'{column}' is not a plain column name")
                columns[key] = column
    else:
        refuse("table", "sqlite or postgresql")
        refuse("columns", "sqlite or postgresql")
    if store_type == "postgresql":
        dsn = opt_string(ctx, "pid_store.dsn", data.get("dsn"))
    else:
        refuse("dsn", "postgresql")
    if store_type == "pidfile":
        pattern = opt_string(ctx, "pid_store.pattern", data.get("pattern"))
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
    config_key = opt_string(ctx, "pid_store.config_key", data.get("config_key"))
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


def _cluster_data(ctx: Ctx, value: t.Any) -> t.Optional[ClusterData]:
    if value is None:
        return None
    data = mapping(ctx, "cluster_data", value, _CLUSTER_KEYS)
    path = abs_path(ctx, "cluster_data.path", required(ctx, data, "cluster_data.", "path"))
    depth = 1
    if data.get("depth") is not None:
        depth = integer(ctx, "cluster_data.depth", data["depth"])
        if depth < 1:
            ctx.fail("cluster_data.depth", f"{depth} must be 1 or more")
    return ClusterData(path=os.path.normpath(path), depth=depth)


def _probe(ctx: Ctx, field: str, value: t.Any) -> t.Optional[dict[str, t.Any]]:
    if value is None:
        return None
    data = mapping(ctx, field, value, _PROBE_KEYS)
    probe_type = string(ctx, f"{field}.type", required(ctx, data, f"{field}.", "type"))
    if probe_type not in PROBE_TYPES:
        ctx.fail(f"{field}.type", f"'{probe_type}' is not one of {', '.join(PROBE_TYPES)}")
    timeout: t.Any = data.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        ctx.fail(f"{field}.timeout", f"must be a positive number of seconds, got {show(timeout)}")
    probe: dict[str, t.Any] = {"type": probe_type, "timeout": float(timeout)}
    if probe_type == "tcp":
        for key in ("path", "status", "tls"):
            if data.get(key) is not None:
                ctx.fail(f"{field}.{key}", "only applies to probe type http")
        return probe
    path = string(ctx, f"{field}.path", data.get("path", "/"))
    if not path.startswith("/"):
        ctx.fail(f"{field}.path", f"'{path}' must start with '/'")
    status = integer(ctx, f"{field}.status", data.get("status", 200))
    if not 100 <= status <= 599:
        ctx.fail(f"{field}.status", f"{status} is not an HTTP status (100-599)")
    probe.update(path=path, status=status, tls=boolean(ctx, f"{field}.tls", data.get("tls"), False))
    return probe


def _daemon(ctx: Ctx, index: int, value: t.Any, suite_roles: tuple[str, ...]) -> Daemon:
    where = f"daemons[{index}]"
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        where = f"daemon '{value['name']}'"
    dctx = ctx.at(where)
    data = mapping(dctx, "", value, _DAEMON_KEYS)
    name = string(dctx, "name", required(dctx, data, "", "name"))
    if not _DAEMON_NAME_RE.fullmatch(name):
        dctx.fail("name", f"'{name}' is not a valid daemon name ([A-Za-z0-9][A-Za-z0-9_.-]*)")
    roles = role_names(dctx, "roles", required(dctx, data, "", "roles"))
    known_roles(dctx, "roles", roles, suite_roles)
    match = mapping(dctx, "match", required(dctx, data, "", "match"), _MATCH_KEYS)
    cmdline_regex = regex(dctx, "match.cmdline", required(dctx, match, "match.", "cmdline"))
    exe_regex = None
    if match.get("exe") is not None:
        exe_regex = regex(dctx, "match.exe", match["exe"])
    user = _match_user(dctx, match.get("user"))
    ancestor = opt_string(dctx, "ancestor", data.get("ancestor"))
    ports_value = data.get("ports")
    ports: list[Port] = []
    if ports_value is not None:
        if not isinstance(ports_value, list):
            dctx.fail("ports", f"must be a list, got {type_name(ports_value)}")
        seen: dict[int, int] = {}
        for i, item in enumerate(ports_value):
            field = f"ports[{i}]"
            pdata = mapping(dctx, field, item, _PORT_KEYS)
            number = port_number(dctx, f"{field}.port", required(dctx, pdata, f"{field}.", "port"))
            if number in seen:
                dctx.fail(f"{field}.port", f"{number} is already listed as ports[{seen[number]}]")
            seen[number] = i
            ports.append(
                Port(port=number, probe=_probe(dctx, f"{field}.probe", pdata.get("probe")))
            )
    count_min, count_max = 1, None
    if data.get("count") is not None:
        count = mapping(dctx, "count", data["count"], _COUNT_KEYS)
        if count.get("min") is not None:
            count_min = integer(dctx, "count.min", count["min"])
            if count_min < 0:
                dctx.fail("count.min", f"{count_min} must be 0 or more")
        if count.get("max") is not None:
            count_max = integer(dctx, "count.max", count["max"])
            if count_max < 1:
                dctx.fail("count.max", f"{count_max} must be 1 or more")
            if count_max < count_min:
                dctx.fail("count", f"min {count_min} is greater than max {count_max}")
    return Daemon(
        name=name,
        description=string(dctx, "description", data.get("description") or "", allow_empty=True),
        roles=roles,
        cmdline_regex=cmdline_regex,
        exe_regex=exe_regex,
        ancestor=ancestor,
        ports=tuple(ports),
        count_min=count_min,
        count_max=count_max,
        essential=boolean(dctx, "essential", data.get("essential"), False),
        enabled=boolean(dctx, "enabled", data.get("enabled"), True),
        systemd_unit=opt_string(dctx, "systemd_unit", data.get("systemd_unit")),
        log_file=(
            abs_path(dctx, "log_file", data["log_file"])
            if data.get("log_file") is not None
            else None
        ),
        user=user,
    )


def _match_user(ctx: Ctx, value: t.Any) -> t.Optional[t.Union[int, str]]:
    """``match.user``: a uid (0 or more) or a user name; None when not set."""
    if value is None:
        return None
    if isinstance(value, bool):
        ctx.fail("match.user", f"must be a uid number or a user name, got {type_name(value)}")
    if isinstance(value, int):
        if value < 0:
            ctx.fail("match.user", f"uid {value} must be 0 or more")
        return value
    name = string(ctx, "match.user", value)
    if name.isdigit():
        return int(name)
    if not _USER_RE.fullmatch(name):
        ctx.fail("match.user", f"{name!r} is not a user name ([A-Za-z_][A-Za-z0-9_.-]*$?)")
    return name


def _check_ancestry(ctx: Ctx, daemons: t.Sequence[Daemon]) -> None:
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


def _check_ports_unique(ctx: Ctx, daemons: t.Sequence[Daemon]) -> None:
    owner: dict[int, str] = {}
    for daemon in daemons:
        for i, port in enumerate(daemon.ports):
            other = owner.get(port.port)
            if other is not None and other != daemon.name:
                ctx.at(f"daemon '{daemon.name}'").fail(
                    f"ports[{i}].port",
                    f"{port.port} is also a port of daemon '{other}'; one port belongs to one daemon",
                )
            owner[port.port] = daemon.name


def _deploy_validator() -> t.Callable[..., dict[str, t.Any]]:
    """``deploy.validate_deploy``, imported by name when a profile has a ``deploy`` section.

    Deploy sections are validated on the controller only (the roles use them; modules receive
    profiles without one, see ``module_kit.profile_from_params``). Importing by name keeps
    deploy.py out of the AnsiballZ payloads, which ship every module_utils file named in an
    import statement.
    """
    package = __name__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.deploy").validate_deploy  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_profile(data: t.Any, source: str = "<inline>", folder: t.Optional[str] = None) -> Profile:
    """Validate ``data`` (the parsed YAML of a profile) completely and return a Profile.

    ``folder`` is the profile's folder (``profiles/<suite>/``) when it was read from one: the
    templates named in ``deploy`` must exist in its ``templates/``.
    Raises ProfileError naming ``source``, the daemon and the field on any problem.
    """
    ctx = Ctx(source)
    top = mapping(ctx, "", data, _TOP_KEYS)
    suite = mapping(ctx, "suite", required(ctx, top, "", "suite"), _SUITE_KEYS)
    sctx = ctx
    name = string(sctx, "suite.name", required(sctx, suite, "suite.", "name"))
    if not _SUITE_NAME_RE.fullmatch(name):
        sctx.fail("suite.name", f"'{name}' must match [a-z0-9_]+")
    roles = role_names(sctx, "suite.roles", required(sctx, suite, "suite.", "roles"))
    description = string(
        sctx, "suite.description", suite.get("description") or "", allow_empty=True
    )
    control = _control(ctx.at("suite"), suite.get("control"))
    systemd_unit = opt_string(sctx, "suite.systemd_unit", suite.get("systemd_unit"))
    config_file = None
    if suite.get("config_file") is not None:
        config_file = abs_path(sctx, "suite.config_file", suite["config_file"])
    version_file = None
    if suite.get("version_file") is not None:
        version_file = abs_path(sctx, "suite.version_file", suite["version_file"])
    pid_store = _pid_store(ctx.at("suite"), suite.get("pid_store"))
    cluster = _cluster_data(ctx.at("suite"), suite.get("cluster_data"))

    daemons_value = required(ctx, top, "", "daemons")
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
        deploy = _deploy_validator()(
            top["deploy"], source, roles, [d.name for d in daemons], folder
        )
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

    # the C loader (libyaml) parses a profile about ten times faster than the Python one
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=loader)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    folder = (
        os.path.dirname(os.path.abspath(path)) if os.path.basename(path) == "profile.yml" else None
    )
    return load_profile(data, source=path, folder=folder)
