#!/usr/bin/python
# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_config
short_description: Check a fleet health audit's configuration on the controller
version_added: "0.1.0"
description:
  - Validates the C(health_audit_*) variables of every host of a fleet audit on the
    controller, before any host is contacted, against the argument spec of the
    P(daemonops.suite.health_audit#role) role; resolves each distinct profile once; checks that
    the roles given exist in the profile, or that the host is in an inventory group named like
    one of its roles; checks the maintenance list.
  - Every problem is listed in one message, by host. A pattern that matches no host is an
    error.
  - This is an action plugin. It runs on the controller only and never connects to a target;
    the module part exists for documentation and fails if it is ever executed on a target.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Nothing is ever changed.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Runs on the controller.
options:
  hosts:
    description:
      - The inventory host names of the audit, for example
        C(query('inventory_hostnames', pattern)).
    type: list
    elements: str
    required: true
  pattern:
    description: The host pattern the hosts came from, named in the error when none matched.
    type: str
    default: all
  unreachable_on_error:
    description:
      - Report a configuration error as the controller being unreachable instead of failed.
        C(ansible-playbook) then exits with status 4 (its code for unreachable hosts and for
        parse errors) instead of 2, so a configuration error is told apart from an unhealthy
        fleet. C(playbooks/health_audit.yml) sets it in its first play, which runs on localhost
        only; the P(daemonops.suite.health_audit#role) role sets it in its own check (run
        once, the first host carries the error) and then ends the play.
    type: bool
    default: false
seealso:
  - module: daemonops.suite.audit_report
  - module: daemonops.suite.health_info
"""

EXAMPLES = r"""
- name: Check the audit's configuration (no host is contacted)
  daemonops.suite.audit_config:
    hosts: "{{ query('inventory_hostnames', 'server:rds:client') }}"
    pattern: server:rds:client
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
hosts:
  description: How many hosts were checked.
  returned: success
  type: int
  sample: 300
profiles:
  description: The suite names of the profiles used by the hosts.
  returned: success
  type: list
  elements: str
  sample: [refsuite]
started:
  description: When the check started (seconds since the epoch); the start of the audit.
  returned: success
  type: float
  sample: 1795967096.77
configuration_error:
  description: True when the configuration is wrong (the message lists every problem).
  returned: on error
  type: bool
  sample: true
msg:
  description: What was checked, or every problem found by host.
  returned: always
  type: str
  sample: "configuration of 300 hosts is valid (profiles: refsuite)"
"""

from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    controller_only,
    run_module,
)


def main() -> None:
    argument_spec = dict(
        hosts=dict(type="list", elements="str", required=True),
        pattern=dict(type="str", default="all"),
        unreachable_on_error=dict(type="bool", default=False),
    )
    run_module(controller_only("audit_config"), argument_spec)


if __name__ == "__main__":
    main()
