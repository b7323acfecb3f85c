# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for daemonops.suite.audit_config: controller only, never touches a target."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.daemonops.suite.plugins.plugin_utils.audit_config import (
    AuditConfigError,
    check_audit_config,
    role_argument_spec,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils.controller_action import (
    ControllerActionModule,
)

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "pattern": {"type": "str", "default": "all"},
    "unreachable_on_error": {"type": "bool", "default": False},
}


class ActionModule(ControllerActionModule):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        started = time.time()
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(self._task.args))
        if validation.error_messages:
            raise AnsibleActionFail(f"{self._task.action}: {'; '.join(validation.error_messages)}")
        params = validation.validated_parameters
        hostvars = task_vars.get("hostvars")
        if not isinstance(hostvars, Mapping):
            raise AnsibleActionFail("hostvars is not available to read the audit variables from")
        spec = role_argument_spec()

        def host_vars(host: str) -> dict[str, Any]:
            if host not in hostvars:
                raise AnsibleActionFail(f"hosts: {host!r} is not a host of the inventory")
            variables = hostvars[host]
            return {name: variables[name] for name in spec if name in variables}

        def group_names(host: str) -> list[str]:
            return list(hostvars[host].get("group_names") or [])

        try:
            checked = check_audit_config(
                params["pattern"],
                params["hosts"],
                host_vars,
                group_names,
                find_file=self._loader.path_dwim,
                spec=spec,
            )
        except AuditConfigError as exc:
            result.update(failed=True, changed=False, msg=str(exc), configuration_error=True)
            if params["unreachable_on_error"]:
                # ansible-playbook exits 4 (its own code for a parse error) when a host of
                # the play is unreachable; the message says it is the configuration
                result.update(unreachable=True)
                del result["failed"]
            return result
        result.update(
            changed=False,
            hosts=checked["hosts"],
            profiles=checked["profiles"],
            started=started,
            msg=f"configuration of {checked['hosts']} hosts is valid "
            f"(profiles: {', '.join(checked['profiles'])})",
        )
        return result
