#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: service
short_description: Start, stop, restart or reload a suite; a start is only ok once health says online
version_added: 0.1.0
description:
  - Starts, stops, restarts or reloads the suite (or waits for the O(daemons) named) through a
    backend. V(systemd) (C(systemctl) on the profile's C(suite.systemd_unit)) is used when
    systemd is PID 1 (C(/run/systemd/system) exists), otherwise V(direct), the suite's own
    control command from the profile (C(suite.control)), with the profile's configuration path
    replaced by O(config_file).
  - The state is judged by health (the same checks as M(daemonops.suite.health_info)), not by
    exit codes. A start succeeds only when every selected daemon is online within O(timeout);
    otherwise the task fails naming what did not come up, with the suite's last log lines
    (the C(log_file) of the INI's C([suite]) section, or C(journalctl -u <unit>)).
  - O(state=stopped) refuses while clients hold connections to the suite's ports unless
    O(force=true). O(force=true) on a start uses the suite's forced mode
    (C(suite.control.force_option)), which clears stale PID records only.
  - O(daemons) are handled in dependency order (ancestors first; stopping in reverse).
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite
  - daemonops.suite.suite.attributes_action
options:
  state:
    description:
      - V(started) and V(stopped) are idempotent; V(restarted) and V(reloaded) always act
        (reloaded sends SIGHUP to the suite's master processes with the direct backend, which
        makes refsuite's C(qm) restart failed daemons now).
    type: str
    choices: [started, stopped, restarted, reloaded]
    required: true
  roles:
    description: The host's suite roles; their daemons are the ones started and checked.
    type: list
    elements: str
    required: true
  daemons:
    description:
      - Daemons whose health decides success (default all daemons of O(roles)). Suite control
        commands act on the whole suite.
    type: list
    elements: str
  backend:
    description: V(auto) picks V(systemd) when systemd is PID 1, else V(direct).
    type: str
    choices: [auto, systemd, direct]
    default: auto
  force:
    description:
      - On start, use the suite's forced mode (clears stale PID records, never a live one).
      - On stop, stop even while clients are connected.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the daemons to come up (or go away).
    type: int
    default: 60
  probes:
    description: Run the profile's port probes while judging health.
    type: bool
    default: true
  pid_records:
    description: Check the profile's PID records while judging health.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Start refsuite and wait until every server daemon is online
  daemonops.suite.service:
    profile: refsuite
    roles: [server]
    state: started
    config_file: /etc/refsuite/refsuite.ini
    instance: /etc/refsuite/refsuite.ini

- name: Stop it even though clients are connected
  daemonops.suite.service:
    profile: refsuite
    roles: [server]
    state: stopped
    force: true
"""

RETURN = r"""
operation:
  description: What was (or in check mode would be) done.
  returned: success
  type: str
  choices: [none, start, stop, restart, reload]
  sample: start
backend:
  description: The backend used.
  returned: success
  type: str
  sample: direct
daemons:
  description: The selected daemons in dependency order.
  returned: success
  type: list
  elements: str
  sample: [qm, db, ui]
status:
  description: Health STATUS after the action (SUCCESS or FAILURE).
  returned: success
  type: str
  sample: SUCCESS
msg_health:
  description: Health MSG after the action.
  returned: success
  type: str
  sample: All daemons online
status_lines:
  description: Health status lines after the action.
  returned: success
  type: list
  elements: str
  sample: ["qm [  2859]: online"]
"""

import os  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import HealthChecker  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    SuiteAction,
    merge_rules,
    profile_argument_spec,
    profile_from_params,
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.service import (  # noqa: E402
    DirectBackend,
    ServiceManager,
    SystemdBackend,
    systemd_is_pid1,
)


class Service(SuiteAction):
    def run(self) -> dict:
        params = self.params
        profile = profile_from_params(params, apply_ini=False)
        config_file = params["config_file"] or profile.config_file
        backend_name = params["backend"]
        if backend_name == "auto":
            backend_name = "systemd" if systemd_is_pid1() else "direct"
        if backend_name == "systemd":
            if not profile.systemd_unit:
                raise SuiteError(
                    f"backend: the {profile.name} profile has no suite.systemd_unit; "
                    "use backend: direct"
                )
            backend = SystemdBackend(profile.systemd_unit, self.module.run_command)
        else:
            backend = DirectBackend(profile, config_file=config_file, timeout=params["timeout"])
        # before the configuration exists (check mode on a fresh host) judge by the profile
        health_config = config_file if config_file and os.path.isfile(config_file) else None

        def health() -> dict:
            return HealthChecker(
                profile,
                params["roles"],
                instance=params["instance"],
                config_file=health_config,
                probes=params["probes"],
                pid_records=params["pid_records"],
            ).run()

        result = ServiceManager(
            profile,
            params["roles"],
            params["state"],
            backend,
            health,
            daemons=params["daemons"],
            force=params["force"],
            timeout=params["timeout"],
            check_mode=self.check_mode,
        ).run()
        self.changed = result.pop("changed")
        self.diff = result.pop("diff")
        return result


def main() -> None:
    argument_spec = profile_argument_spec(
        state=dict(
            type="str", choices=["started", "stopped", "restarted", "reloaded"], required=True
        ),
        roles=dict(type="list", elements="str", required=True),
        daemons=dict(type="list", elements="str"),
        backend=dict(type="str", choices=["auto", "systemd", "direct"], default="auto"),
        force=dict(type="bool", default=False),
        timeout=dict(type="int", default=60),
        probes=dict(type="bool", default=True),
        pid_records=dict(type="bool", default=True),
    )
    run_module(Service, argument_spec, **merge_rules())


if __name__ == "__main__":
    main()
