# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every module of the collection shares: profile options, check mode/changed/diff
handling and the single place where errors become ``fail_json``.

A module is documentation + argument spec + ``main()`` calling ``run_module``; the logic is a
``SuiteAction`` in ``module_utils/_suite``. The ``cluster_data`` module, shortened::

    # plugins/module_utils/_suite/cluster.py
    class ClusterDataClear(SuiteAction):
        def run(self) -> dict[str, Any]:
            profile = profile_from_params(self.params)
            ...  # refuse while a daemon runs; plan the deletion
            result = self.clear(root, depth, done, kept)  # @trigger_change, None in check mode
            ...
            return {"root": root, "depth": depth, "removed": removed, ...}

    # plugins/modules/cluster_data.py
    def main() -> None:
        argument_spec = profile_argument_spec(
            path=dict(type="path"),
            depth=dict(type="int"),
        )
        run_module(ClusterDataClear, argument_spec, **PROFILE_ARG_RULES)
"""

from __future__ import annotations

import functools
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    SuiteError,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import Profile
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import apply_config

PROFILE_ARGS: dict[str, dict[str, t.Any]] = dict(
    profile=dict(type="str"),
    profile_data=dict(type="dict"),
    instance=dict(type="str"),
    config_file=dict(type="path"),
)
"""Argument spec fragment for the profile options (merge into a module's argument_spec)."""

PROFILE_REQUIRED_ONE_OF: list[list[str]] = [["profile", "profile_data"]]
"""``profile`` and ``profile_data`` arrive together from the action plugin (the name is kept so
the module can echo it), so they are not mutually exclusive."""

PROFILE_ARG_RULES: dict[str, t.Any] = dict(
    required_one_of=PROFILE_REQUIRED_ONE_OF,
)
"""Keyword arguments for ``run_module``/``AnsibleModule`` that go with ``PROFILE_ARGS``."""


def profile_argument_spec(**extra: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """``PROFILE_ARGS`` plus the module's own options (copies, safe to modify)."""
    spec = {key: dict(value) for key, value in PROFILE_ARGS.items()}
    spec.update(extra)
    return spec


def merge_rules(**rules: list[list[str]]) -> dict[str, list[list[str]]]:
    """``PROFILE_ARG_RULES`` merged with a module's own ``required_one_of`` etc."""
    merged: dict[str, list[list[str]]] = {
        key: list(value) for key, value in PROFILE_ARG_RULES.items()
    }
    for key, value in rules.items():
        merged[key] = merged.get(key, []) + list(value)
    return merged


def profile_from_params(params: t.Mapping[str, t.Any], apply_ini: bool = True) -> Profile:
    """The validated Profile for a module's params.

    ``profile_data`` is what the action plugin sends after resolving ``profile: <name>`` on the
    controller (or what the user passed inline). With ``apply_ini`` (default), the suite INI
    (``config_file`` option, else ``suite.config_file``) overrides daemons' ``enabled`` and
    ports. Accepts an AnsibleModule too (its ``params`` are used).
    """
    if hasattr(params, "params") and not isinstance(params, dict):
        params = params.params  # an AnsibleModule
    data = params.get("profile_data")
    name = params.get("profile")
    if data is None:
        if name:
            raise ProfileError(
                f"profile '{name}' must be resolved on the controller, but this module ran "
                "without its data: call the module by its FQCN (daemonops.suite.<module>) so "
                "the collection's action plugin loads the profile, or pass profile_data"
            )
        raise ProfileError("one of the options profile or profile_data is required")
    source = f"profile_data ({name})" if name else "profile_data"
    profile = load_profile(data, source=source)
    if name and profile.name != name and not str(name).endswith((".yml", ".yaml")):
        raise ProfileError(
            f"profile is '{name}' but profile_data describes suite '{profile.name}'; "
            "pass only one of them"
        )
    if apply_ini:
        profile = apply_config(profile, params.get("config_file"))
    return profile


F = t.TypeVar("F", bound=t.Callable[..., t.Any])


class SuiteAction:
    """Base of a module's logic class.

    Holds the module, ``check_mode``, ``changed``, ``diff`` (``before``/``after`` dicts) and
    ``result`` (extra return values). Subclasses implement ``run()`` returning a dict of return
    values (merged over ``result``); state-changing methods use ``@trigger_change`` and
    ``@skip_if_check_mode``.
    """

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, t.Any] = module.params
        self.check_mode: bool = bool(module.check_mode)
        self.changed: bool = False
        self.diff: dict[str, t.Any] = {"before": {}, "after": {}}
        self.result: dict[str, t.Any] = {}

    def run(self) -> dict[str, t.Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def warn(self, message: str) -> None:
        self.module.warn(message)


def trigger_change(method: F) -> F:
    """Mark ``self.changed = True`` whenever the decorated method is called (even in check
    mode, where it predicts the change). Put it outside ``@skip_if_check_mode``."""

    @functools.wraps(method)
    def wrapper(self: SuiteAction, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.changed = True
        return method(self, *args, **kwargs)

    return t.cast("F", wrapper)


def skip_if_check_mode(method: F) -> F:
    """Do nothing (return None) when ``self.check_mode``; run the method otherwise."""

    @functools.wraps(method)
    def wrapper(self: SuiteAction, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if self.check_mode:
            return None
        return method(self, *args, **kwargs)

    return t.cast("F", wrapper)


def run_module(
    action_cls: type[SuiteAction],
    argument_spec: dict[str, t.Any],
    **module_kwargs: t.Any,
) -> None:
    """Create the AnsibleModule (check mode supported), run ``action_cls(module).run()`` and
    exit. The single place where errors become ``fail_json``: SuiteError -> its message;
    anything else -> message plus traceback (``exception=``)."""
    module_kwargs.setdefault("supports_check_mode", True)
    module = AnsibleModule(argument_spec=argument_spec, **module_kwargs)
    try:
        action = action_cls(module)
        values = action.run() or {}
        result: dict[str, t.Any] = dict(action.result)
        result.update(values)
        result["changed"] = bool(action.changed)
        if module._diff:
            result["diff"] = action.diff
    except SuiteError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    except Exception as exc:
        module.fail_json(
            msg=f"unexpected error ({type(exc).__name__}): {exc}",
            exception=traceback.format_exc(),
        )
    module.exit_json(**result)
