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

A profile file is read and validated once per version of the file (path, inode, size,
modification time): once per process for the ``Profile`` object, and, for the validated data
sent to targets, once per ``ansible-playbook`` run: the first worker process that resolves it
leaves the data as JSON in Ansible's local temporary directory of the run (private, removed
when the run ends), and every later worker (one per host and task) reads that instead of
parsing the YAML and validating it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
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


def profile_file(
    name: str,
    profiles_dir: str = PROFILES_DIR,
    find_file: t.Optional[t.Callable[[str], str]] = None,
) -> str:
    """The file of a profile given by shipped name or by ``.yml``/``.yaml`` path.

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
        return path
    return profile_path(name, profiles_dir)


#: Format of the run cache's files; change it when what they hold changes.
_CACHE_FORMAT = 2
#: Validated profiles of this process by file version (see ``_file_version``).
_PROFILES: dict[tuple[t.Any, ...], Profile] = {}
#: JSON of a validated profile's two forms, ``{"data": Profile.to_dict(), "compact":
#: Profile.to_compact()}``, of this process by file version.
_PROFILE_JSON: dict[tuple[t.Any, ...], str] = {}


#: A file modified less than this long ago is read again on every use: a rewrite within the
#: file system's timestamp granularity could keep size and modification time.
_RACY_NS = 2_000_000_000


def _file_version(path: str) -> t.Optional[tuple[t.Any, ...]]:
    """The key of one version of a profile file: its path as given (the profile's ``source``
    names it), device, inode, size and modification time in ns; None when the file cannot be
    cached (missing, or modified too recently to tell two versions apart)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
        return None
    return (os.path.abspath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def load_profile_cached(path: str) -> Profile:
    """``load_profile_file(path)``, read and validated once per version of the file in this
    process (a changed file is read again). The first read also leaves the validated data in
    the run cache for ``profile_file_data`` in the other worker processes."""
    key = _file_version(path)
    if key is None:
        return load_profile_file(path)  # its error names the file and the problem
    profile = _PROFILES.get(key)
    if profile is None:
        profile = _PROFILES[key] = load_profile_file(path)
        text = _PROFILE_JSON[key] = _forms_json(profile)
        cache = _run_cache_file(key)
        if cache is not None and not os.path.exists(cache):
            _write_atomically(cache, text)
    return profile


def resolve_profile(
    name: str,
    profiles_dir: str = PROFILES_DIR,
    find_file: t.Optional[t.Callable[[str], str]] = None,
) -> Profile:
    """Load and validate a profile given by shipped name or by ``.yml``/``.yaml`` path (once
    per version of its file in this process; see ``profile_file`` for ``find_file``)."""
    return load_profile_cached(profile_file(name, profiles_dir, find_file))


def _run_cache_dir() -> t.Optional[str]:
    """Ansible's local temporary directory of this run (created by the ``ansible-playbook``
    process, private to its user, inherited by its workers, removed at the end), or None."""
    try:
        from ansible import constants as C

        path = C.DEFAULT_LOCAL_TMP
    except Exception:  # no Ansible configuration: no run cache
        return None
    return path if isinstance(path, str) and os.path.isdir(path) else None


def _run_cache_file(key: tuple[t.Any, ...]) -> t.Optional[str]:
    directory = _run_cache_dir()
    if directory is None:
        return None
    digest = hashlib.sha256(repr((_CACHE_FORMAT, key)).encode()).hexdigest()[:40]
    return os.path.join(directory, f"daemonops-profile-{digest}.json")


def _forms_json(profile: Profile) -> str:
    forms = {"data": profile.to_dict(), "compact": profile.to_compact()}
    return json.dumps(forms, separators=(",", ":"))


def profile_file_data(path: str) -> dict[str, t.Any]:
    """The validated data (``Profile.to_dict()``) of the profile file ``path`` (see
    ``profile_file_forms``)."""
    return profile_file_forms(path)["data"]


def profile_file_forms(path: str) -> dict[str, t.Any]:
    """``{"data": Profile.to_dict(), "compact": Profile.to_compact()}`` of the validated
    profile file ``path``, new dicts on each call. Read and validated once per version of the
    file and ``ansible-playbook`` run: kept as JSON in this process and in the run's local
    temporary directory for the other worker processes (reading it there costs well under a
    millisecond, parsing the YAML and validating several)."""
    key = _file_version(path)
    if key is None:
        return json.loads(_forms_json(load_profile_file(path)))  # errors name the file
    text = _PROFILE_JSON.get(key)
    if text is None:
        cache = _run_cache_file(key)
        if cache is not None:
            try:
                with open(cache, encoding="utf-8") as handle:
                    text = handle.read()
                data = json.loads(text)
                if not isinstance(data, dict) or not {"data", "compact"} <= data.keys():
                    raise ValueError("not the two forms of a profile")
            except (OSError, ValueError):
                if os.path.exists(cache):  # unreadable or broken: replaced below
                    _remove(cache)
            else:
                _PROFILE_JSON[key] = text
                return data
        profile = load_profile_cached(path)  # on a first read: _PROFILE_JSON and the run cache
        text = _PROFILE_JSON.get(key)
        if text is None:
            text = _PROFILE_JSON[key] = _forms_json(profile)
    return json.loads(text)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_atomically(path: str, text: str) -> None:
    """Write ``path`` so that no reader sees it half written; a failure only costs the cache."""
    try:
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError:
        _remove(temporary)


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
    roles: t.Sequence[str] = ()
    if data is None and name:
        forms = profile_file_forms(profile_file(name, profiles_dir, find_file))
        new_args["profile_data"] = forms["data"]
        new_args[COMPACT_OPTION] = forms["compact"]
        roles = forms["data"]["suite"]["roles"]
    elif data is not None:
        profile = load_profile(data, source=f"profile_data ({name})" if name else "profile_data")
        new_args[COMPACT_OPTION] = profile.to_compact()
        roles = profile.roles
    if group_names is not None and new_args.get(COMPACT_OPTION) and not new_args.get("roles"):
        groups = set(group_names)
        new_args["roles"] = [role for role in roles if role in groups]
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
