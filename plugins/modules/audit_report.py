#!/usr/bin/python
# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_report
short_description: Write a fleet health audit report from health_info results
version_added: "0.1.0"
description:
  - Aggregates the results of M(daemonops.suite.health_info) collected from many hosts into one
    report and writes it on the controller in up to five formats, namely JSON (all data and a summary),
    Markdown (summary, hosts by daemons table, problems), a self-contained HTML page (no external
    resources; colour per state, filter for unhealthy rows, details per cell), JUnit XML (one
    test case per host and daemon, for CI) and the Prometheus text exposition format (for the
    node_exporter textfile collector).
  - This is an action plugin. It runs on the controller only and never connects to a target;
    the module part exists for documentation and fails if it is ever executed on a target.
  - Each file is written atomically (a temporary file in O(dest), then a rename), so a reader
    such as node_exporter never sees a half-written report.
  - The report is written even when hosts are unhealthy or unreachable; the task itself does
    not fail for that. Use RV(unhealthy_hosts) to fail afterwards, as the
    P(daemonops.suite.health_audit#role) role does.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: The whole work is done by the action plugin on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: In check mode the report is built and the counts are returned, but no file is written.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Runs on the controller.
options:
  register_name:
    description:
      - The name of the variable each host registered its M(daemonops.suite.health_info)
        result in. The action reads that one variable of each host in O(hosts) from
        C(hostvars) itself, without templating it, which is much faster on a large fleet than
        passing O(results) as a template over C(hostvars).
      - A host without that variable (it left the play before the check) is reported as
        failed. A host registered as unreachable (with C(ignore_unreachable=true)) is reported
        as unreachable.
      - Exactly one of O(register_name) and O(results) is required.
    type: str
  hosts:
    description:
      - The inventory host names to report on, with O(register_name).
      - Defaults to all hosts of the play, C(ansible_play_hosts_all), including the hosts that
        failed or were unreachable.
    type: list
    elements: str
  results:
    description:
      - The health results by inventory host name, for direct use (for example results read
        from files). To report on the hosts of the play, use O(register_name) instead.
      - A value is either a health_info result, or a result registered for a host that was
        unreachable (C(unreachable=true) and C(msg)) or where health_info failed
        (C(failed=true) and C(msg)). Unreachable and failed hosts appear in the report as such.
      - Exactly one of O(register_name) and O(results) is required.
    type: dict
  dest:
    description:
      - Directory on the controller to write the report files to. It is created if missing.
    type: path
    required: true
  formats:
    description:
      - The formats to write. Each gets a file named after O(basename) with the suffix
        C(.json), C(.md), C(.html), C(.junit.xml) or C(.prom).
    type: list
    elements: str
    choices: [json, markdown, html, junit, prometheus]
    default: [json, markdown, html, junit, prometheus]
  basename:
    description:
      - File name of the reports without the suffix.
    type: str
    default: health_audit
  history:
    description:
      - How many past audits to keep, each as C(history/<basename>-<UTC time>.json) in O(dest);
        older ones are deleted. V(0) keeps none.
      - Before writing, the newest kept audit (else the previous C(<basename>.json)) is compared
        with this one; the report's C(since_last) section lists new and resolved problems,
        hosts added and removed, daemons restarted (start time changed) and drift (a host's
        suite C(version) or C(config_checksum) changed).
    type: int
    default: 30
  maintenance:
    description:
      - Hosts or daemons silenced during maintenance, each C({host, daemon, reason, until})
        (C(daemon) optional, C(until) V(YYYY-MM-DD) or an ISO 8601 time). Until it expires, an
        entry is shown greyed with its reason and kept out of RV(unhealthy_hosts).
    type: list
    elements: dict
    default: []
  profile:
    description: The profile name shown in the report; by default the suites the hosts reported.
    type: str
  started:
    description:
      - When the audit started, seconds since the epoch (RV(daemonops.suite.audit_config#module:started));
        the report shows the audit's duration from it.
    type: float
seealso:
  - module: daemonops.suite.health_info
"""

EXAMPLES = r"""
- name: Check every host
  daemonops.suite.health_info:
    profile: refsuite
  register: health
  ignore_errors: true
  ignore_unreachable: true

- name: Write the fleet report on the controller
  daemonops.suite.audit_report:
    register_name: health
    dest: "{{ playbook_dir }}/reports"
    formats: [json, html, junit]
  run_once: true
  delegate_to: localhost
  register: audit

- name: Fail when a host is unhealthy, after the report is written
  ansible.builtin.assert:
    that: audit.unhealthy_hosts | length == 0
    fail_msg: "Unhealthy: {{ audit.unhealthy_hosts | join(', ') }}; see {{ audit.files.html }}"
  run_once: true

- name: Write a report from results gathered otherwise
  daemonops.suite.audit_report:
    results:
      web1: "{{ lookup('ansible.builtin.file', 'web1.json') | from_json }}"
      web2: {unreachable: true, msg: "ssh: connect to host web2 port 22: No route to host"}
    dest: /srv/audit
    formats: [markdown]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description: The path of each file written (or that would be written in check mode), by format.
  returned: always
  type: dict
  sample:
    json: /srv/audit/health_audit.json
    markdown: /srv/audit/health_audit.md
    html: /srv/audit/health_audit.html
    junit: /srv/audit/health_audit.junit.xml
    prometheus: /srv/audit/health_audit.prom
summary:
  description: Counts of hosts by status and of daemons by state, and client connections.
  returned: always
  type: dict
  sample:
    hosts: 4
    healthy: 2
    unhealthy: 1
    unreachable: 1
    failed: 0
    daemons: {total: 27, online: 24, degraded: 0, offline: 1, unused: 2, unknown: 0}
    clients: 3
healthy:
  description: Whether every host is healthy (reachable and no daemon offline or degraded).
  returned: always
  type: bool
  sample: false
unhealthy_hosts:
  description:
    - Hosts that are not healthy (a daemon offline or degraded, unreachable, or failed) and not
      silenced by O(maintenance); problems first, as in the report.
  returned: always
  type: list
  elements: str
  sample: [db2, web3]
unreachable_hosts:
  description: Hosts that could not be reached.
  returned: always
  type: list
  elements: str
  sample: [web3]
reasons:
  description: Why each host of RV(unhealthy_hosts) fails the audit, one line per host.
  returned: always
  type: dict
  sample: {db2: "unhealthy: stpd offline", web3: "unreachable: ssh: connect to host web3 port 22: No route to host"}
history_file:
  description: The history file written for this audit; null in check mode or with O(history=0).
  returned: always
  type: str
  sample: /srv/audit/history/health_audit-20261206T173913123Z.json
since_last:
  description:
    - What changed since the last kept audit (null when there is none), see O(history).
  returned: always
  type: dict
  sample:
    previous_generated_at: "2026-12-06T16:39:13.123000Z"
    previous_generated_at_epoch: 1796575153.123
    new_problems: [{host: db2, daemon: stpd, state: offline, problem: stpd offline}]
    resolved_problems: []
    hosts_added: []
    hosts_removed: []
    restarted: [{host: db1, daemon: ui, before: 1795960000.1, after: 1795967000.4}]
    drift: [{host: db3, field: config_checksum, before: "sha256:1c4e...", after: "sha256:9a0b..."}]
problems:
  description: The first 50 problems, each naming the host, the daemon and its state.
  returned: always
  type: list
  elements: dict
  sample:
    - {host: db2, daemon: stpd, state: offline, problem: stpd offline}
generated_at:
  description: When the report was generated (ISO 8601, UTC).
  returned: always
  type: str
  sample: "2024-11-29T14:20:00.500000Z"
msg:
  description: One-line summary of the audit.
  returned: always
  type: str
  sample: "4 hosts: 2 healthy, 1 unhealthy, 1 unreachable, 0 failed; ..."
"""

from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    controller_only,
    run_module,
)


def main() -> None:
    argument_spec = dict(
        results=dict(type="dict"),
        register_name=dict(type="str"),
        hosts=dict(type="list", elements="str"),
        dest=dict(type="path", required=True),
        formats=dict(
            type="list",
            elements="str",
            choices=["json", "markdown", "html", "junit", "prometheus"],
            default=["json", "markdown", "html", "junit", "prometheus"],
        ),
        basename=dict(type="str", default="health_audit"),
        history=dict(type="int", default=30),
        maintenance=dict(type="list", elements="dict", default=[]),
        profile=dict(type="str"),
        started=dict(type="float"),
    )
    run_module(
        controller_only("audit_report"),
        argument_spec,
        mutually_exclusive=[["results", "register_name"]],
        required_one_of=[["results", "register_name"]],
        required_by={"hosts": ["register_name"]},
    )


if __name__ == "__main__":
    main()
