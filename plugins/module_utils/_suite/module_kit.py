# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every module of the collection shares: profile options, the handling of ``changed``,
diff, warnings and check mode, and the single place where errors become ``fail_json``.

The one module convention:

- The logic is a plain class in ``module_utils/_suite`` taking explicit arguments (the
  ``Profile``, option values, ``check_mode``) whose ``run()`` returns the module's result:
  ``changed`` (absent means False), ``diff`` when the module has one, ``warnings`` (strings)
  when there are any, and the documented return values. It acts only when not in check mode,
  and in check mode still says what would change.
- The module file is documentation, the argument spec and two functions: ``run(module)``
  turning the options into the logic class's arguments and returning its ``run()``, and
  ``main()`` calling ``run_module``. Modules with the profile options build their spec with
  ``profile_argument_spec`` and their rules with ``profile_rules``.
- ``run_module`` builds the AnsibleModule (check mode supported), calls ``run(module)``,
  returns ``diff`` only when Ansible asked for it (``--diff``), turns ``warnings`` into
  ``module.warn`` and is the single error-to-``fail_json`` site.

The ``cluster_data`` module, whole but for its documentation::

    def run(module: AnsibleModule) -> dict[str, t.Any]:
        params = module.params
        return ClusterDataClear(
            profile_from_params(params),
            path=params["path"],
            depth=params["depth"],
            instance=params["instance"],
            check_mode=module.check_mode,
        ).run()


    def main() -> None:
        argument_spec = profile_argument_spec(
            path=dict(type="path"),
            depth=dict(type="int"),
        )
        run_module(run, argument_spec, **profile_rules())
"""

from __future__ import annotations

import os
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    SuiteError,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
    COMPACT_OPTION,
    Profile,
)

# The validator (profile_schema) and the INI reader (suite_ini) are imported where they are
# used: a module run by the action plugin receives the profile validated (COMPACT_OPTION), and
# a suite without an INI on the host needs no INI parsing; neither is then executed on the
# target.

PROFILE_ARGS: dict[str, dict[str, t.Any]] = dict(
    profile=dict(type="str"),
    profile_data=dict(type="dict"),
    instance=dict(type="str"),
    config_file=dict(type="path"),
)
"""Argument spec fragment for the profile options (merge into a module's argument_spec)."""

PROFILE_ONE_OF: tuple[str, ...] = ("profile", "profile_data")
"""``profile`` and ``profile_data`` arrive together from the action plugin (the name is kept so
the module can echo it), so they are required one of, not mutually exclusive."""


def profile_argument_spec(**extra: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """``PROFILE_ARGS``, the internal ``_profile`` (``COMPACT_OPTION``, set by the action plugin)
    and the module's own options (copies, safe to modify)."""
    spec = {key: dict(value) for key, value in PROFILE_ARGS.items()}
    spec[COMPACT_OPTION] = dict(type="dict")
    spec.update(extra)
    return spec


def profile_rules(*, or_options: t.Sequence[str] = (), **rules: t.Any) -> dict[str, t.Any]:
    """The ``AnsibleModule`` rules of a module with the profile options: one of ``profile``
    and ``profile_data`` is required (or one of ``or_options`` instead, for a module that can
    work without a profile), plus the module's own ``rules`` (``required_one_of``,
    ``mutually_exclusive``, ``required_by`` ...), for ``run_module(..., **profile_rules())``."""
    merged: dict[str, t.Any] = {"required_one_of": [[*PROFILE_ONE_OF, *or_options]]}
    for key, value in rules.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = merged.get(key, []) + [list(item) for item in value]
    return merged


def profile_from_params(params: t.Mapping[str, t.Any], apply_ini: bool = True) -> Profile:
    """The validated Profile for a module's params.

    ``profile_data`` is what the action plugin sends after resolving ``profile: <name>`` on the
    controller (or what the user passed inline). The action plugin sends the profile it
    validated in ``_profile`` (compact form) instead, and leaves ``profile_data`` out when the
    task names the profile; that profile is used without validating it again. With
    ``apply_ini`` (default), the suite INI (``config_file`` option, else ``suite.config_file``)
    overrides daemons' ``enabled`` and ports. Accepts an AnsibleModule too (its ``params`` are
    used).
    """
    if hasattr(params, "params") and not isinstance(params, dict):
        params = params.params  # an AnsibleModule
    data = params.get("profile_data")
    name = params.get("profile")
    compact = params.get(COMPACT_OPTION)
    if compact is not None:
        profile = Profile.from_compact(compact)
    elif data is None:
        if name:
            raise ProfileError(
                f"profile '{name}' must be resolved on the controller, but this module ran "
                "without its data: call the module by its FQCN (daemonops.suite.<module>) so "
                "the collection's action plugin loads the profile, or pass profile_data"
            )
        raise ProfileError("one of the options profile or profile_data is required")
    else:
        from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
            load_profile,
        )

        source = f"profile_data ({name})" if name else "profile_data"
        if isinstance(data, dict) and "deploy" in data:
            # the deploy section serves the controller (roles) only: no module reads it
            data = {key: value for key, value in data.items() if key != "deploy"}
        profile = load_profile(data, source=source)
    if name and profile.name != name and not str(name).endswith((".yml", ".yaml")):
        raise ProfileError(
            f"profile is '{name}' but profile_data describes suite '{profile.name}'; "
            "pass only one of them"
        )
    if apply_ini:
        path = params.get("config_file") or profile.config_file
        if path and not _missing(path):
            from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import (
                apply_config,
            )

            profile = apply_config(profile, path)
    return profile


def _missing(path: str) -> bool:
    """True when nothing is at ``path`` (the INI reader would find no file, so the profile
    stays as it is); anything else, unreadable included, is left to the reader to judge."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


ModuleRun = t.Callable[[AnsibleModule], t.Mapping[str, t.Any]]
"""A module's ``run(module)``: the result, ``changed``/``diff``/``warnings`` included."""


def run_module(
    run: ModuleRun,
    argument_spec: dict[str, t.Any],
    **module_kwargs: t.Any,
) -> None:
    """Build the AnsibleModule (check mode supported unless ``supports_check_mode`` says
    otherwise), call ``run(module)`` and exit with its result: ``changed`` always (False when
    absent), ``diff`` only when Ansible runs with ``--diff``, ``warnings`` through
    ``module.warn``. The single place where errors become ``fail_json``: SuiteError -> its
    message and ``details`` (their ``warnings`` through ``module.warn`` too); anything else ->
    message plus traceback (``exception=``)."""
    module_kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)
    try:
        result = dict(run(module))
        changed = bool(result.pop("changed", False))
        diff = result.pop("diff", None)
        _warn(module, result.pop("warnings", None))
        result["changed"] = changed
        if module._diff and diff is not None:
            result["diff"] = diff
    except SuiteError as exc:
        details = dict(exc.details)
        _warn(module, details.pop("warnings", None))
        module.fail_json(msg=str(exc), **details)
    except Exception as exc:
        module.fail_json(
            msg=f"unexpected error ({type(exc).__name__}): {exc}",
            exception=traceback.format_exc(),
        )
    module.exit_json(**result)


def _warn(module: AnsibleModule, warnings: t.Optional[t.Iterable[str]]) -> None:
    for warning in warnings or ():
        module.warn(str(warning))


def controller_only(name: str) -> ModuleRun:
    """``run`` of a module that is all action plugin (it runs on the controller): executed on
    a target, it fails saying how to call it."""

    def run(module: AnsibleModule) -> dict[str, t.Any]:
        raise SuiteError(
            f"daemonops.suite.{name} runs on the controller only, through its action plugin; "
            f"it was executed as a module on a target. Call it as daemonops.suite.{name} (not "
            "through ansible.builtin.raw/script or a module redirect) with the collection "
            "installed on the controller."
        )

    return run
