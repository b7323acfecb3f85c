# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of the profile options: resolve ``profile: <name>`` to validated data.

Every module of the collection has an action plugin that is one line::

    from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
        SuiteActionModule as ActionModule,
    )

When the task gives ``profile: <name>`` (a profile shipped in ``<collection>/profiles/``: a file
``<name>.yml``, or a folder ``<name>/profile.yml`` for profiles that carry templates) or
``profile: path/to/file.yml`` and no ``profile_data``, the profile is loaded and validated here,
on the controller, so mistakes are reported before anything runs on a target; the module then
receives ``profile_data`` (the validated dict) and ``profile`` (the name, which it echoes).
Inline ``profile_data`` is validated here too.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.daemonops.suite.plugins.module_utils._suite.deploy import validate_deploy
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
    COMPACT_OPTION,
    Profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
    load_profile_file,
)

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILES_DIR = os.path.join(COLLECTION_ROOT, "profiles")
_NAME_RE = re.compile(r"[a-z0-9_]+")


FOLDER_PROFILE = "profile.yml"


def shipped_profiles(profiles_dir: str = PROFILES_DIR) -> list[str]:
    """Names of the profiles shipped with the collection (files and folders), sorted."""
    try:
        entries = os.listdir(profiles_dir)
    except OSError:
        return []
    names = {name[: -len(".yml")] for name in entries if name.endswith(".yml")}
    names.update(
        name for name in entries if os.path.isfile(os.path.join(profiles_dir, name, FOLDER_PROFILE))
    )
    return sorted(names)


def profile_path(name: str, profiles_dir: str = PROFILES_DIR) -> str:
    """Path of the shipped profile ``name`` (``<name>.yml`` or ``<name>/profile.yml``).

    SuiteError listing the known ones otherwise, or when both forms exist (ambiguous).
    """
    flat = os.path.join(profiles_dir, f"{name}.yml")
    folder = os.path.join(profiles_dir, name, FOLDER_PROFILE)
    if _NAME_RE.fullmatch(name) and os.path.isfile(flat) and os.path.isfile(folder):
        raise SuiteError(
            f"profile '{name}' is shipped twice ({flat} and {folder}); keep one of them"
        )
    path = folder if _NAME_RE.fullmatch(name) and os.path.isfile(folder) else flat
    if not _NAME_RE.fullmatch(name) or not os.path.isfile(path):
        known = ", ".join(shipped_profiles(profiles_dir)) or "none"
        raise SuiteError(
            f"profile '{name}' is not shipped; known profiles: {known}; "
            "or give the path of a profile file (ending .yml/.yaml) or pass profile_data"
        )
    return path


def resolve_profile(
    name: str,
    profiles_dir: str = PROFILES_DIR,
    find_file: t.Optional[t.Callable[[str], str]] = None,
) -> Profile:
    """Load and validate a profile given by shipped name or by ``.yml``/``.yaml`` path.

    ``find_file`` turns a relative path into an absolute one (the action plugin passes the
    loader's ``path_dwim`` so paths are relative to the playbook or role).
    """
    if not isinstance(name, str) or not name:
        raise SuiteError("profile: must be the name of a shipped profile or a .yml/.yaml path")
    if name.endswith((".yml", ".yaml")):
        path = os.path.expanduser(name)
        if not os.path.isabs(path) and find_file is not None:
            path = find_file(path)
        if not os.path.isfile(path):
            raise SuiteError(f"profile: file '{name}' not found (looked at {path})")
        return load_profile_file(path)
    return load_profile_file(profile_path(name, profiles_dir))


def resolve_profile_args(
    args: t.Mapping[str, t.Any],
    profiles_dir: str = PROFILES_DIR,
    find_file: t.Optional[t.Callable[[str], str]] = None,
    group_names: t.Optional[t.Sequence[str]] = None,
) -> dict[str, t.Any]:
    """Module args with ``profile_data`` filled in from ``profile`` (validated either way).

    The validated profile goes to the module in compact form too, as ``_profile``
    (``profile.COMPACT_OPTION``), so the module need not validate it again; that option is
    always set here (a value the task gives is replaced, or dropped when there is no profile).

    With ``group_names`` (the host's inventory groups) and no ``roles`` in ``args``, ``roles``
    becomes the host's groups that are roles of the suite, in the suite's order.
    """
    new_args = dict(args)
    new_args.pop(COMPACT_OPTION, None)
    data = new_args.get("profile_data")
    name = new_args.get("profile")
    profile = None
    if data is None and name:
        profile = resolve_profile(name, profiles_dir, find_file)
        new_args["profile_data"] = profile.to_dict()
    elif data is not None:
        profile = load_profile(data, source=f"profile_data ({name})" if name else "profile_data")
    if profile is not None:
        new_args[COMPACT_OPTION] = profile.to_compact()
    if group_names is not None and profile is not None and not new_args.get("roles"):
        groups = set(group_names)
        new_args["roles"] = [role for role in profile.roles if role in groups]
    return new_args


class SuiteActionModule(ActionBase):
    """Action plugin base: resolve the profile on the controller, then run the module."""

    _supports_check_mode = True
    _supports_async = True
    #: fill ``roles`` from the host's inventory groups when the task gives none
    roles_from_groups = False

    def run(
        self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None
    ) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        try:
            module_args = resolve_profile_args(
                self._task.args,
                find_file=self._loader.path_dwim,
                group_names=(task_vars or {}).get("group_names")
                if self.roles_from_groups
                else None,
            )
        except SuiteError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        if module_args.get("profile") and COMPACT_OPTION in module_args:
            # the module builds the profile from _profile; the data would only be sent twice
            module_args.pop("profile_data", None)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result = merge_hash(
            result,
            self._execute_module(
                module_name=self._task.action,
                module_args=module_args,
                task_vars=task_vars,
                wrap_async=wrap_async,
            ),
        )
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result


_PLACEHOLDER_RE = re.compile(r"\{(prefix|config_file|config_dir|state_dir|log_dir)\}")


def _substitute(value: t.Any, paths: t.Mapping[str, str]) -> t.Any:
    """``value`` with the deploy placeholders ({prefix} ...) replaced in every string."""
    if isinstance(value, str):
        return _PLACEHOLDER_RE.sub(lambda m: str(paths.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [_substitute(item, paths) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, paths) for key, item in value.items()}
    return value


def deployment_profile(
    name: t.Optional[str] = None,
    data: t.Optional[t.Mapping[str, t.Any]] = None,
    paths: t.Optional[t.Mapping[str, str]] = None,
    profiles_dir: str = PROFILES_DIR,
    find_file: t.Optional[t.Callable[[str], str]] = None,
) -> dict[str, t.Any]:
    """What the roles deploy from: the profile (shipped name, file, or inline ``data``) with
    its ``deploy`` placeholders replaced by ``paths`` and ``deploy.profile`` merged into it.

    Returns ``{profile: <validated profile dict, deploy normalised>, deploy: <the deploy
    section, normalised; empty lists when the profile has none>, folder: <profiles/<suite>/ or
    None>}``. Raises SuiteError (naming the field) when anything is invalid.
    """
    if data:
        base = load_profile(dict(data), source="common_profile_data")
    elif name:
        base = resolve_profile(name, profiles_dir, find_file)
    else:
        raise SuiteError(
            "give a profile name (common_profile) or profile data (common_profile_data)"
        )
    paths = default_paths(base, paths or {})
    raw = base.to_dict()
    deploy = raw.pop("deploy", None)
    if deploy is None:
        deploy = validate_deploy({"source": "bundled"}, base.source, base.roles, base.daemon_names)
        deploy["source"] = ""
    deploy = _substitute(deploy, paths)
    overrides = deploy.pop("profile", None) or {}
    profile = load_profile(merge_hash(raw, overrides), source=f"{base.source} (deploy.profile)")
    return {"profile": profile.to_dict(), "deploy": deploy, "folder": base.folder, "paths": paths}


def default_paths(profile: Profile, given: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The deployment's paths: those ``given`` (non-empty), else derived from the suite's name
    (``/opt/<suite>``, the profile's ``config_file`` or ``/etc/<suite>/<suite>.ini``,
    ``/var/lib/<suite>``, ``/var/log/<suite>``); ``config_dir`` is the config file's folder."""
    name = profile.name
    defaults = {
        "prefix": f"/opt/{name}",
        "config_file": profile.config_file or f"/etc/{name}/{name}.ini",
        "state_dir": f"/var/lib/{name}",
        "log_dir": f"/var/log/{name}",
    }
    paths = {key: str(given.get(key) or value) for key, value in defaults.items()}
    paths["config_dir"] = os.path.dirname(paths["config_file"])
    return paths
