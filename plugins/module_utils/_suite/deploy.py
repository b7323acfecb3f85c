# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``deploy`` section of a suite profile: what a role needs to deploy the suite.

``validate_deploy`` checks the section completely (unknown keys, types, roles and daemons that
the profile knows, template names that exist in the profile's folder when one is given) and
returns it normalised (every optional list present, defaults filled in), so the role reads one
shape. It raises ``ProfileError`` naming the source and the field, like the rest of the profile.

Placeholders: string values may contain ``{prefix}``, ``{config_file}``, ``{config_dir}``,
``{state_dir}`` and ``{log_dir}``; the role replaces them with the deployment's paths
(``common_prefix`` ...). Jinja2 belongs in the template files only.

Runs on targets as part of the profile: standard library only.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import type_name
from ansible_collections.daemonops.suite.plugins.module_utils._suite.schema import (
    Ctx,
    boolean,
    integer,
    items,
    known_roles,
    mapping,
    required,
    show,
    string,
)

SOURCES = ("packages", "bundled", "archive")
PLACEHOLDERS = ("prefix", "config_file", "config_dir", "state_dir", "log_dir")

_DEPLOY_KEYS = (
    "source",
    "packages",
    "vars",
    "secrets",
    "directories",
    "ini",
    "files",
    "commands",
    "units",
    "profile",
    "health",
)
_DIRECTORY_KEYS = ("path", "owner", "group", "mode", "roles")
_INI_KEYS = ("template", "roles")
_FILE_KEYS = ("src", "dest", "owner", "group", "mode", "validate", "restarts", "roles")
_COMMAND_KEYS = ("argv", "creates", "roles")
_UNIT_KEYS = ("src", "name", "enabled", "started", "resume", "roles")
_PROFILE_KEYS = ("suite",)
_HEALTH_KEYS = ("timeout", "delay")

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODE_RE = re.compile(r"0?[0-7]{3,4}")
_UNIT_RE = re.compile(r"[A-Za-z0-9@_.:-]+\.(service|timer|socket|target|path)")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_]+)\}")


def _text(ctx: Ctx, field: str, value: t.Any) -> str:
    """A non-empty string whose ``{placeholders}`` are all known."""
    text = string(ctx, field, value)
    for name in _PLACEHOLDER_RE.findall(text):
        if name not in PLACEHOLDERS:
            ctx.fail(
                field,
                f"unknown placeholder '{{{name}}}' in {show(text)} "
                f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
            )
    return text


def _path(ctx: Ctx, field: str, value: t.Any) -> str:
    path = _text(ctx, field, value)
    if not path.startswith(("/", "{")):
        ctx.fail(field, f"'{path}' must be an absolute path (or start with a placeholder)")
    return path


def _opt(ctx: Ctx, field: str, value: t.Any) -> t.Optional[str]:
    return None if value is None else _text(ctx, field, value)


def _mode(ctx: Ctx, field: str, value: t.Any) -> t.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not _MODE_RE.fullmatch(value):
        ctx.fail(field, f'must be an octal mode as a quoted string like "0640", got {show(value)}')
    return value


def _roles(ctx: Ctx, field: str, value: t.Any, suite_roles: t.Sequence[str]) -> list[str]:
    """The roles an item applies to; all of the suite's when left out."""
    if value is None:
        return list(suite_roles)
    roles = [_text(ctx, f"{field}[{i}]", r) for i, r in enumerate(items(ctx, field, value))]
    known_roles(ctx, field, roles, suite_roles)
    return roles


def _template(ctx: Ctx, field: str, value: t.Any, folder: t.Optional[str]) -> str:
    name = _text(ctx, field, value)
    if "/" in name or name.startswith("."):
        ctx.fail(field, f"'{name}' must be a file name in the profile's templates/ folder")
    if folder is not None and not os.path.isfile(os.path.join(folder, "templates", name)):
        ctx.fail(field, f"template '{name}' not found in {os.path.join(folder, 'templates')}")
    return name


def _positive(ctx: Ctx, field: str, value: t.Any, default: int) -> int:
    if value is None:
        return default
    if integer(ctx, field, value) < 1:
        ctx.fail(field, f"must be a positive integer, got {value}")
    return value


def validate_deploy(
    value: t.Any,
    source: str,
    suite_roles: t.Sequence[str],
    daemon_names: t.Sequence[str],
    folder: t.Optional[str] = None,
) -> dict[str, t.Any]:
    """Validate a profile's ``deploy`` section; return it normalised.

    ``folder`` is the profile's folder (``profiles/<suite>/``) when it was loaded from one;
    template names are then checked to exist in ``<folder>/templates/``.
    """
    ctx = Ctx(source, prefix="deploy.")
    data = mapping(ctx, "", value, _DEPLOY_KEYS)
    result: dict[str, t.Any] = {}

    source_kind = data.get("source", "packages")
    if source_kind not in SOURCES:
        ctx.fail("source", f"'{source_kind}' is not one of {', '.join(SOURCES)}")
    result["source"] = source_kind

    packages = mapping(ctx, "packages", data.get("packages") or {}, suite_roles)
    result["packages"] = {
        role: [
            _text(ctx, f"packages.{role}[{i}]", p)
            for i, p in enumerate(items(ctx, f"packages.{role}", names))
        ]
        for role, names in packages.items()
    }
    if source_kind == "packages" and not any(result["packages"].values()):
        ctx.fail(
            "packages",
            "source 'packages' needs packages for at least one role ({role: [name, ...]})",
        )

    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        ctx.fail("vars", f"must be a mapping, got {type_name(variables)}")
    for key in variables:
        if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
            ctx.fail(f"vars.{key}", "must be a plain name ([A-Za-z_][A-Za-z0-9_]*)")
    result["vars"] = dict(variables)

    secrets = [
        _text(ctx, f"secrets[{i}]", s)
        for i, s in enumerate(items(ctx, "secrets", data.get("secrets")))
    ]
    for i, name in enumerate(secrets):
        if not _NAME_RE.fullmatch(name):
            ctx.fail(f"secrets[{i}]", f"'{name}' must be a plain name ([A-Za-z_][A-Za-z0-9_]*)")
        if secrets.index(name) != i:
            ctx.fail(f"secrets[{i}]", f"'{name}' is listed twice")
    result["secrets"] = secrets

    directories = []
    for i, item in enumerate(items(ctx, "directories", data.get("directories"))):
        f = f"directories[{i}]"
        d = mapping(ctx, f, item, _DIRECTORY_KEYS)
        required(ctx, d, f"{f}.", "path")
        directories.append(
            {
                "path": _path(ctx, f"{f}.path", d["path"]),
                "owner": _opt(ctx, f"{f}.owner", d.get("owner")),
                "group": _opt(ctx, f"{f}.group", d.get("group")),
                "mode": _mode(ctx, f"{f}.mode", d.get("mode")) or "0755",
                "roles": _roles(ctx, f"{f}.roles", d.get("roles"), suite_roles),
            }
        )
    result["directories"] = directories

    ini = None
    if data.get("ini") is not None:
        d = mapping(ctx, "ini", data["ini"], _INI_KEYS)
        required(ctx, d, "ini.", "template")
        ini = {
            "template": _template(ctx, "ini.template", d["template"], folder),
            "roles": _roles(ctx, "ini.roles", d.get("roles"), suite_roles),
        }
    result["ini"] = ini

    files = []
    dests: dict[str, int] = {}
    for i, item in enumerate(items(ctx, "files", data.get("files"))):
        f = f"files[{i}]"
        d = mapping(ctx, f, item, _FILE_KEYS)
        for key in ("src", "dest"):
            required(ctx, d, f"{f}.", key)
        dest = _path(ctx, f"{f}.dest", d["dest"])
        validate = _opt(ctx, f"{f}.validate", d.get("validate"))
        if validate is not None and "%s" not in validate:
            ctx.fail(f"{f}.validate", f"{validate!r} must contain %s (the file to check)")
        restarts = [
            _text(ctx, f"{f}.restarts[{j}]", r)
            for j, r in enumerate(items(ctx, f"{f}.restarts", d.get("restarts")))
        ]
        for j, name in enumerate(restarts):
            if name not in daemon_names:
                ctx.fail(
                    f"{f}.restarts[{j}]",
                    f"'{name}' is not a daemon of this profile (known: {', '.join(daemon_names)})",
                )
        roles = _roles(ctx, f"{f}.roles", d.get("roles"), suite_roles)
        if dest in dests and set(roles) & set(files[dests[dest]]["roles"]):
            ctx.fail(
                f"{f}.dest", f"'{dest}' is also written by files[{dests[dest]}] for the same role"
            )
        dests[dest] = i
        files.append(
            {
                "src": _template(ctx, f"{f}.src", d["src"], folder),
                "dest": dest,
                "owner": _opt(ctx, f"{f}.owner", d.get("owner")),
                "group": _opt(ctx, f"{f}.group", d.get("group")),
                "mode": _mode(ctx, f"{f}.mode", d.get("mode")) or "0644",
                "validate": validate,
                "restarts": restarts,
                "roles": roles,
            }
        )
    result["files"] = files

    commands = []
    for i, item in enumerate(items(ctx, "commands", data.get("commands"))):
        f = f"commands[{i}]"
        d = mapping(ctx, f, item, _COMMAND_KEYS)
        argv = [
            _text(ctx, f"{f}.argv[{j}]", a)
            for j, a in enumerate(items(ctx, f"{f}.argv", d.get("argv")))
        ]
        if not argv:
            ctx.fail(f"{f}.argv", "must be a non-empty argv list")
        if d.get("creates") is None:
            ctx.fail(
                f"{f}.creates", "missing required field (the file that shows the command has run)"
            )
        commands.append(
            {
                "argv": argv,
                "creates": _path(ctx, f"{f}.creates", d["creates"]),
                "roles": _roles(ctx, f"{f}.roles", d.get("roles"), suite_roles),
            }
        )
    result["commands"] = commands

    units = []
    for i, item in enumerate(items(ctx, "units", data.get("units"))):
        f = f"units[{i}]"
        d = mapping(ctx, f, item, _UNIT_KEYS)
        for key in ("src", "name"):
            required(ctx, d, f"{f}.", key)
        name = _text(ctx, f"{f}.name", d["name"])
        if not _UNIT_RE.fullmatch(name):
            ctx.fail(f"{f}.name", f"'{name}' is not a systemd unit file name (e.g. suite.service)")
        units.append(
            {
                "src": _template(ctx, f"{f}.src", d["src"], folder),
                "name": name,
                "enabled": boolean(ctx, f"{f}.enabled", d.get("enabled"), False),
                "started": boolean(ctx, f"{f}.started", d.get("started"), False),
                "resume": boolean(ctx, f"{f}.resume", d.get("resume"), False),
                "roles": _roles(ctx, f"{f}.roles", d.get("roles"), suite_roles),
            }
        )
    result["units"] = units

    overrides = None
    if data.get("profile") is not None:
        overrides = mapping(ctx, "profile", data["profile"], _PROFILE_KEYS)
    result["profile"] = overrides

    health = mapping(ctx, "health", data.get("health") or {}, _HEALTH_KEYS)
    result["health"] = {
        "timeout": _positive(ctx, "health.timeout", health.get("timeout"), 60),
        "delay": _positive(ctx, "health.delay", health.get("delay"), 1),
    }
    return result
