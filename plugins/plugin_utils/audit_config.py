# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side check of a fleet audit's configuration, before any host is contacted.

``check_audit_config()`` takes each host's ``health_audit_*`` variables (and its inventory
groups), validates them against the role's argument spec, resolves every distinct profile once
and checks the roles against it. A configuration mistake (misspelled profile, a role the suite
does not have, a host in no role group, a bad maintenance entry, a pattern matching no host)
is one ``AuditConfigError`` listing every problem by host, so it is never mistaken for an
outage of the fleet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Callable

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.plugin_utils.audit_report import parse_until
from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
    COLLECTION_ROOT,
    resolve_profile,
)

ROLE_SPEC_PATH = os.path.join(
    COLLECTION_ROOT, "roles", "health_audit", "meta", "argument_specs.yml"
)
#: How many problems the error message lists before it says "and N more".
MAX_LISTED = 20


class AuditConfigError(ValueError):
    """The audit's configuration is wrong (the message lists each problem and its host)."""


def role_argument_spec(path: str = ROLE_SPEC_PATH) -> dict[str, dict[str, Any]]:
    """The health_audit role's options as an ArgumentSpecValidator spec (type, elements,
    choices, default); ``description`` and templated defaults are left out."""
    with open(path, encoding="utf-8") as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    spec: dict[str, dict[str, Any]] = {}
    for name, option in options.items():
        entry = {k: option[k] for k in ("type", "elements", "choices") if k in option}
        default = option.get("default")
        if not (isinstance(default, str) and "{{" in default):
            entry["default"] = default
        spec[name] = entry
    return spec


def check_maintenance(entries: Any) -> list[str]:
    """Problems of a ``health_audit_maintenance`` list (empty when it is fine)."""
    problems: list[str] = []
    if entries is None:
        return problems
    if not isinstance(entries, list):
        return [f"health_audit_maintenance: expected a list, got {type(entries).__name__}"]
    for index, entry in enumerate(entries):
        where = f"health_audit_maintenance[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a dict with host, reason and until")
            continue
        unknown = sorted(set(entry) - {"host", "daemon", "reason", "until"})
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        for key in ("host", "reason", "until"):
            if not entry.get(key):
                problems.append(
                    f"{where}: '{key}' is required (host, optional daemon, reason, until)"
                )
        if entry.get("until"):
            try:
                parse_until(entry["until"])
            except ValueError as exc:
                problems.append(f"{where}: until: {exc}")
    return problems


def check_audit_config(
    pattern: str,
    hosts: Iterable[str],
    host_vars: Callable[[str], Mapping[str, Any]],
    group_names: Callable[[str], list[str]],
    find_file: Callable[[str], str] | None = None,
    spec: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Validate every host's audit variables; return ``{hosts, profiles}`` or raise.

    ``host_vars(host)`` returns the host's ``health_audit_*`` variables that are set (role
    defaults apply to the others); ``group_names(host)`` its inventory groups.
    """
    hosts = list(dict.fromkeys(hosts))
    if not hosts:
        raise AuditConfigError(
            f"health_audit_hosts: the pattern {pattern!r} matches no host of the inventory; "
            "check the pattern (a group or host name, or all) and the inventory given with -i"
        )
    spec = spec if spec is not None else role_argument_spec()
    validator = ArgumentSpecValidator(dict(spec))
    problems: list[str] = []
    profiles: dict[str, Any] = {}
    profile_errors: dict[str, str] = {}
    checked_report_vars = False
    for host in hosts:
        given = {k: v for k, v in host_vars(host).items() if k in spec}
        result = validator.validate(given)
        if result.error_messages:
            problems.extend(f"{host}: {m}" for m in result.error_messages)
            continue
        params = result.validated_parameters
        if not checked_report_vars:
            checked_report_vars = True
            problems.extend(check_maintenance(params.get("health_audit_maintenance")))
            keep = params.get("health_audit_history")
            if isinstance(keep, int) and keep < 0:
                problems.append(
                    f"health_audit_history: {keep} is negative; give the number of past audits "
                    "to keep (0 keeps none)"
                )
            basename = params.get("health_audit_report_basename") or ""
            if not basename or "/" in basename or basename in (".", ".."):
                problems.append(
                    f"health_audit_report_basename: {basename!r} is not a plain file name"
                )
        name = params.get("health_audit_profile") or ""
        if name not in profiles and name not in profile_errors:
            try:
                profiles[name] = resolve_profile(name, find_file=find_file)
            except SuiteError as exc:
                profile_errors[name] = str(exc)
        if name in profile_errors:
            problems.append(f"{host}: health_audit_profile {name!r}: {profile_errors[name]}")
            continue
        profile = profiles[name]
        known = list(profile.roles)
        roles = params.get("health_audit_roles") or []
        if roles:
            unknown = [r for r in roles if r not in known]
            if unknown:
                problems.append(
                    f"{host}: health_audit_roles {', '.join(unknown)} not a role of suite "
                    f"{profile.name}; roles are {', '.join(known)}"
                )
        elif not set(group_names(host)) & set(known):
            problems.append(
                f"{host}: in no inventory group named like a role of suite {profile.name} "
                f"({', '.join(known)}) and health_audit_roles is empty; put the host in one of "
                "those groups or set health_audit_roles"
            )
    if problems:
        listed = problems[:MAX_LISTED]
        more = len(problems) - len(listed)
        text = "; ".join(listed) + (f"; and {more} more" if more else "")
        raise AuditConfigError(
            f"health audit configuration error ({len(problems)} problem"
            f"{'' if len(problems) == 1 else 's'}, no host was contacted): {text}"
        )
    return {"hosts": len(hosts), "profiles": sorted(p.name for p in profiles.values())}
