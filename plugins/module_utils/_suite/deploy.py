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

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    type_name,
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


class _Where:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> t.NoReturn:
        raise ProfileError(f"{self.source}: deploy.{field}: {problem}")


def _mapping(w: _Where, field: str, value: t.Any, allowed: t.Sequence[str]) -> dict[str, t.Any]:
    if not isinstance(value, dict):
        w.fail(field, f"must be a mapping, got {type_name(value)}")
    for key in value:
        if key not in allowed:
            w.fail(f"{field}.{key}".lstrip("."), f"unknown key (allowed: {', '.join(allowed)})")
    return value


def _list(w: _Where, field: str, value: t.Any) -> list[t.Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        w.fail(field, f"must be a list, got {type_name(value)}")
    return value


def _string(w: _Where, field: str, value: t.Any) -> str:
    if not isinstance(value, str) or not value.strip():
        w.fail(field, f"must be a non-empty string, got {type_name(value)} {value!r}")
    for name in _PLACEHOLDER_RE.findall(value):
        if name not in PLACEHOLDERS:
            w.fail(
                field,
                f"unknown placeholder '{{{name}}}' in {value!r} "
                f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
            )
    return value


def _path(w: _Where, field: str, value: t.Any) -> str:
    path = _string(w, field, value)
    if not path.startswith(("/", "{")):
        w.fail(field, f"'{path}' must be an absolute path (or start with a placeholder)")
    return path


def _opt(w: _Where, field: str, value: t.Any) -> t.Optional[str]:
    return None if value is None else _string(w, field, value)


def _mode(w: _Where, field: str, value: t.Any) -> t.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not _MODE_RE.fullmatch(value):
        w.fail(field, f'must be an octal mode as a quoted string like "0640", got {value!r}')
    return value


def _bool(w: _Where, field: str, value: t.Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        w.fail(field, f"must be true or false, got {type_name(value)} {value!r}")
    return value


def _roles(w: _Where, field: str, value: t.Any, suite_roles: t.Sequence[str]) -> list[str]:
    if value is None:
        return list(suite_roles)
    roles = [_string(w, f"{field}[{i}]", r) for i, r in enumerate(_list(w, field, value))]
    for i, role in enumerate(roles):
        if role not in suite_roles:
            w.fail(
                f"{field}[{i}]", f"role '{role}' is not in suite.roles ({', '.join(suite_roles)})"
            )
    return roles


def _template(w: _Where, field: str, value: t.Any, folder: t.Optional[str]) -> str:
    name = _string(w, field, value)
    if "/" in name or name.startswith("."):
        w.fail(field, f"'{name}' must be a file name in the profile's templates/ folder")
    if folder is not None and not os.path.isfile(os.path.join(folder, "templates", name)):
        w.fail(field, f"template '{name}' not found in {os.path.join(folder, 'templates')}")
    return name


def _positive(w: _Where, field: str, value: t.Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        w.fail(field, f"must be a positive integer, got {value!r}")
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
    w = _Where(source)
    if not isinstance(value, dict):
        raise ProfileError(f"{source}: deploy: must be a mapping, got {type_name(value)}")
    data = _mapping(w, "", value, _DEPLOY_KEYS)
    result: dict[str, t.Any] = {}

    source_kind = data.get("source", "packages")
    if source_kind not in SOURCES:
        w.fail("source", f"'{source_kind}' is not one of {', '.join(SOURCES)}")
    result["source"] = source_kind

    packages = _mapping(w, "packages", data.get("packages") or {}, suite_roles)
    result["packages"] = {
        role: [
            _string(w, f"packages.{role}[{i}]", p)
            for i, p in enumerate(_list(w, f"packages.{role}", names))
        ]
        for role, names in packages.items()
    }
    if source_kind == "packages" and not any(result["packages"].values()):
        w.fail(
            "packages",
            "source 'packages' needs packages for at least one role ({role: [name, ...]})",
        )

    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        w.fail("vars", f"must be a mapping, got {type_name(variables)}")
    for key in variables:
        if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
            w.fail(f"vars.{key}", "must be a plain name ([A-Za-z_][A-Za-z0-9_]*)")
    result["vars"] = dict(variables)

    secrets = [
        _string(w, f"secrets[{i}]", s)
        for i, s in enumerate(_list(w, "secrets", data.get("secrets")))
    ]
    for i, name in enumerate(secrets):
        if not _NAME_RE.fullmatch(name):
            w.fail(f"secrets[{i}]", f"'{name}' must be a plain name ([A-Za-z_][A-Za-z0-9_]*)")
        if secrets.index(name) != i:
            w.fail(f"secrets[{i}]", f"'{name}' is listed twice")
    result["secrets"] = secrets

    directories = []
    for i, item in enumerate(_list(w, "directories", data.get("directories"))):
        f = f"directories[{i}]"
        d = _mapping(w, f, item, _DIRECTORY_KEYS)
        if d.get("path") is None:
            w.fail(f"{f}.path", "missing required field")
        directories.append(
            {
                "path": _path(w, f"{f}.path", d["path"]),
                "owner": _opt(w, f"{f}.owner", d.get("owner")),
                "group": _opt(w, f"{f}.group", d.get("group")),
                "mode": _mode(w, f"{f}.mode", d.get("mode")) or "0755",
                "roles": _roles(w, f"{f}.roles", d.get("roles"), suite_roles),
            }
        )
    result["directories"] = directories

    ini = None
    if data.get("ini") is not None:
        d = _mapping(w, "ini", data["ini"], _INI_KEYS)
        if d.get("template") is None:
            w.fail("ini.template", "missing required field")
        ini = {
            "template": _template(w, "ini.template", d["template"], folder),
            "roles": _roles(w, "ini.roles", d.get("roles"), suite_roles),
        }
    result["ini"] = ini

    files = []
    dests: dict[str, int] = {}
    for i, item in enumerate(_list(w, "files", data.get("files"))):
        f = f"files[{i}]"
        d = _mapping(w, f, item, _FILE_KEYS)
        for key in ("src", "dest"):
            if d.get(key) is None:
                w.fail(f"{f}.{key}", "missing required field")
        dest = _path(w, f"{f}.dest", d["dest"])
        validate = _opt(w, f"{f}.validate", d.get("validate"))
        if validate is not None and "%s" not in validate:
            w.fail(f"{f}.validate", f"{validate!r} must contain %s (the file to check)")
        restarts = [
            _string(w, f"{f}.restarts[{j}]", r)
            for j, r in enumerate(_list(w, f"{f}.restarts", d.get("restarts")))
        ]
        for j, name in enumerate(restarts):
            if name not in daemon_names:
                w.fail(
                    f"{f}.restarts[{j}]",
                    f"'{name}' is not a daemon of this profile (known: {', '.join(daemon_names)})",
                )
        roles = _roles(w, f"{f}.roles", d.get("roles"), suite_roles)
        if dest in dests and set(roles) & set(files[dests[dest]]["roles"]):
            w.fail(
                f"{f}.dest", f"'{dest}' is also written by files[{dests[dest]}] for the same role"
            )
        dests[dest] = i
        files.append(
            {
                "src": _template(w, f"{f}.src", d["src"], folder),
                "dest": dest,
                "owner": _opt(w, f"{f}.owner", d.get("owner")),
                "group": _opt(w, f"{f}.group", d.get("group")),
                "mode": _mode(w, f"{f}.mode", d.get("mode")) or "0644",
                "validate": validate,
                "restarts": restarts,
                "roles": roles,
            }
        )
    result["files"] = files

    commands = []
    for i, item in enumerate(_list(w, "commands", data.get("commands"))):
        f = f"commands[{i}]"
        d = _mapping(w, f, item, _COMMAND_KEYS)
        argv = [
            _string(w, f"{f}.argv[{j}]", a)
            for j, a in enumerate(_list(w, f"{f}.argv", d.get("argv")))
        ]
        if not argv:
            w.fail(f"{f}.argv", "must be a non-empty argv list")
        if d.get("creates") is None:
            w.fail(
                f"{f}.creates", "missing required field (the file that shows the command has run)"
            )
        commands.append(
            {
                "argv": argv,
                "creates": _path(w, f"{f}.creates", d["creates"]),
                "roles": _roles(w, f"{f}.roles", d.get("roles"), suite_roles),
            }
        )
    result["commands"] = commands

    units = []
    for i, item in enumerate(_list(w, "units", data.get("units"))):
        f = f"units[{i}]"
        d = _mapping(w, f, item, _UNIT_KEYS)
        for key in ("src", "name"):
            if d.get(key) is None:
                w.fail(f"{f}.{key}", "missing required field")
        name = _string(w, f"{f}.name", d["name"])
        if not _UNIT_RE.fullmatch(name):
            w.fail(f"{f}.name", f"'{name}' is not a systemd unit file name (e.g. suite.service)")
        units.append(
            {
                "src": _template(w, f"{f}.src", d["src"], folder),
                "name": name,
                "enabled": _bool(w, f"{f}.enabled", d.get("enabled"), False),
                "started": _bool(w, f"{f}.started", d.get("started"), False),
                "resume": _bool(w, f"{f}.resume", d.get("resume"), False),
                "roles": _roles(w, f"{f}.roles", d.get("roles"), suite_roles),
            }
        )
    result["units"] = units

    overrides = None
    if data.get("profile") is not None:
        overrides = _mapping(w, "profile", data["profile"], _PROFILE_KEYS)
    result["profile"] = overrides

    health = _mapping(w, "health", data.get("health") or {}, _HEALTH_KEYS)
    result["health"] = {
        "timeout": _positive(w, "health.timeout", health.get("timeout"), 60),
        "delay": _positive(w, "health.delay", health.get("delay"), 1),
    }
    return result
