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
  - Starts, stops, restarts or reloads a suite, or single daemons of it, through a backend.
    V(systemd) (C(systemctl) on the profile's C(suite.systemd_unit), or a daemon's own
    C(daemons[].systemd_unit)) is used when systemd is PID 1 (C(/run/systemd/system) exists),
    otherwise V(direct), the suite's own control command from the profile (C(suite.control)),
    with the profile's configuration path replaced by O(config_file).
  - Works at daemon granularity. O(state=started) starts exactly the daemons that are offline
    (and their offline ancestors) and leaves running ones alone. How one daemon is started or
    stopped is profile data, in this order - its own unit (C(daemons[].systemd_unit), systemd
    backend), the suite's per-daemon command (C(suite.control.start_daemon) and
    C(stop_daemon), argv lists with a C({daemon}) item), or, when the profile offers neither,
    the whole suite's start (a stop of single daemons is then refused).
  - Daemons are started in dependency order (ancestors first, each one online before the
    next) and stopped in reverse order (ancestors last). When every daemon of O(roles) is
    concerned and the suite has a suite-wide command, that command is used.
  - The state is judged by health (the same checks as M(daemonops.suite.health_info)), not by
    exit codes. A start succeeds only when every selected daemon is online within O(timeout);
    otherwise the task fails naming what did not come up, with the last log lines of the
    daemons concerned (C(daemons[].log_file), or C(journalctl -u) of the daemon's unit), or
    else of the suite (the C(log_file) of the INI's C([suite]) section, or C(journalctl -u) of
    the suite's unit).
  - Before a stop (also within a restart) the module drains - it polls the ESTABLISHED client
    connections on the ports of the daemons going down (as health counts them, the
    collection's own probes left out) for up to O(drain_timeout) seconds. If clients remain it
    refuses, unless O(force=true). The progress is returned as RV(drain).
  - O(force=true) on a start uses the suite's forced mode (C(suite.control.force_option)),
    which clears stale PID records only.
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
    description:
      - The host's suite roles; their daemons are the ones started and checked.
      - Default the host's inventory groups that are roles of the suite (C(group_names)
        intersected with C(suite.roles)); the module fails naming this option when that is empty.
    type: list
    elements: str
  daemons:
    description:
      - Restrict the action to these daemons (default all daemons of O(roles)). Their offline
        ancestors are started too; stopping a daemon also stops its descendants.
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
    description: Seconds to wait for each daemon to come up (or go away).
    type: int
    default: 60
  drain_timeout:
    description:
      - Seconds a stop waits for connected clients to finish before it refuses (or, with
        O(force=true), stops anyway). V(0) decides at once.
      - In check mode the module does not wait; it reports the clients it would wait for.
    type: int
    default: 0
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

- name: Start only what is offline among two daemons (qm first if it is down)
  daemonops.suite.service:
    profile: refsuite
    roles: [server]
    state: started
    daemons: [stpd, ui]

- name: Restart stpd alone, letting its clients finish for up to five minutes
  daemonops.suite.service:
    profile: refsuite
    roles: [server]
    state: restarted
    daemons: [stpd]
    drain_timeout: 300

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
started:
  description: Daemons that were offline and came up (in check mode, would be started).
  returned: success
  type: list
  elements: str
  sample: [stpd]
stopped:
  description: Daemons that were running and went down (in check mode, would be stopped).
  returned: success
  type: list
  elements: str
  sample: [ui]
drain:
  description:
    - Progress of the wait for clients before a stop - the remaining client connections
      (C(clients)) C(t) seconds after the wait began, one entry per change. Empty when no
      client was connected. Also returned when the stop is refused.
  returned: always
  type: list
  elements: dict
  sample: [{t: 0.0, clients: 2}, {t: 4.5, clients: 1}, {t: 9.0, clients: 0}]
commands:
  description: The control commands run, with their exit status and output.
  returned: success
  type: list
  elements: str
  sample: ["start stpd: exit 0: refsuite: started stpd"]
status:
  description:
    - V(SUCCESS) when the requested state was reached (every selected daemon online, or,
      for O(state=stopped), none of them running), else V(FAILURE).
  returned: success
  type: str
  sample: SUCCESS
msg_health:
  description: Health MSG after the action (for O(state=stopped), the daemons stopped).
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
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import HealthChecker  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    profile_argument_spec,
    profile_from_params,
    profile_rules,
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.service import (  # noqa: E402
    ServiceManager,
    select_backend,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.states import SERVICE_STATES  # noqa: E402


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    profile = profile_from_params(params, apply_ini=False)
    config_file = params["config_file"] or profile.config_file
    if not params["roles"]:
        raise SuiteError(
            f"roles: give the host's suite roles (one or more of {', '.join(profile.roles)}),"
            " or put the host in inventory groups named after them"
        )
    for option in ("timeout", "drain_timeout"):
        if params[option] < 0:
            raise SuiteError(f"{option}: {params[option]} must be 0 or more (seconds)")
    backend = select_backend(
        profile, params["backend"], module.run_command, config_file, params["timeout"]
    )
    # before the configuration exists (check mode on a fresh host) judge by the profile
    health_config = config_file if config_file and os.path.isfile(config_file) else None

    def health() -> dict[str, t.Any]:
        return HealthChecker(
            profile,
            params["roles"],
            instance=params["instance"],
            config_file=health_config,
            probes=params["probes"],
            pid_records=params["pid_records"],
        ).run()

    return ServiceManager(
        profile,
        params["roles"],
        params["state"],
        backend,
        health,
        daemons=params["daemons"],
        force=params["force"],
        timeout=params["timeout"],
        drain_timeout=params["drain_timeout"],
        check_mode=module.check_mode,
    ).run()


def main() -> None:
    argument_spec = profile_argument_spec(
        state=dict(type="str", choices=list(SERVICE_STATES), required=True),
        roles=dict(type="list", elements="str"),
        daemons=dict(type="list", elements="str"),
        backend=dict(type="str", choices=["auto", "systemd", "direct"], default="auto"),
        force=dict(type="bool", default=False),
        timeout=dict(type="int", default=60),
        drain_timeout=dict(type="int", default=0),
        probes=dict(type="bool", default=True),
        pid_records=dict(type="bool", default=True),
    )
    run_module(run, argument_spec, **profile_rules())


if __name__ == "__main__":
    main()
