#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: discover
short_description: Propose a suite profile from the daemons running on a host
version_added: 0.2.0
description:
  - Walks the process tree under a hint (a process name pattern, a systemd unit or unit glob,
    listened ports, or the PID of the suite's master) and proposes a suite profile in the
    format of the collection's C(profiles/*.yml) files, ready for M(daemonops.suite.health_info).
  - Each distinct program of the tree (its process title and executable) becomes a daemon
    with an anchored C(match.cmdline) rule (argv[0] as it runs now) and an C(exe) rule, the
    nearest other daemon above it as C(ancestor), a C(count) from the instances running now
    (C(min) 1, C(max) the number seen, or no C(max) when the instances look like a worker pool,
    several under one parent), its listening TCP ports with TCP probes, and its pidfiles.
  - The suite gets the systemd unit that owns the master (from C(/proc/PID/cgroup); none when
    systemd is not PID 1) and a pidfile C(pid_store) when the pidfiles found share a directory
    and a name pattern.
  - Every daemon gets the one role O(role); a profile with several roles is made by merging the
    proposals of a server, an RDS and a client host with the C(daemonops.suite.discover_merge)
    filter.
  - Returns the proposal as data (RV(proposal)) and as YAML text whose comments mark every
    guess (RV(proposal_yaml)). Read-only; one pass over the process table and one over the
    socket table.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite.attributes_info
options:
  pid:
    description: The PID of the suite's master process; it and all its descendants are walked.
    type: int
  name:
    description:
      - A regular expression searched in each process's name (the base name of argv[0], and
        the kernel's 15-character process name). Matching processes and their descendants are
        walked; a matching process below another one counts once.
    type: str
  unit:
    description:
      - A systemd unit name or glob (V(postgresql*.service)); the processes whose cgroup is in
        such a unit are walked. Needs systemd as PID 1.
    type: str
  ports:
    description:
      - TCP ports the suite listens on; the processes holding them (climbing to the topmost
        ancestor with the same executable, the master of a pre-forked pool) are walked.
    type: list
    elements: int
  role:
    description: The role every proposed daemon gets (the role this host has in the suite).
    type: str
    default: server
  suite_name:
    description:
      - The suite's name (C([a-z0-9_]+)). Default a guess from the common prefix of the
        programs' names (V(refsuite) for C(refsuite-qm), C(refsuite-db)...) or the master's name.
    type: str
  pidfile_dirs:
    description:
      - More directories to look for pidfiles in (C(*.pid) whose first line is the PID of a
        process of the tree). Always searched are the files the processes hold open, their
        working directories and the directories their arguments name, C(/run), C(/var/run) and
        their direct subdirectories.
    type: list
    elements: path
    default: []
requirements:
  - psutil (only where C(/proc) cannot be read)
notes:
  - Run with C(become=true) when the suite runs as another user, so executables, open files and
    socket owners can be read. In a container, root needs the C(SYS_PTRACE) capability to read
    other users' C(/proc/PID/exe) and C(/proc/PID/fd).
  - Names, counts, ancestors, the suite's name and the PID store are read from what runs now;
    review the comments marked C(guess) before relying on the profile.
seealso:
  - module: daemonops.suite.health_info
"""

EXAMPLES = r"""
- name: Propose a profile for the suite whose master is sm_qm_main
  daemonops.suite.discover:
    name: '^sm_qm_main$'
    role: server
  register: discovered

- name: Keep the proposal on the controller
  ansible.builtin.copy:
    content: "{{ discovered.proposal_yaml }}"
    dest: "./{{ inventory_hostname }}-profile.yml"
    mode: "0644"
  delegate_to: localhost

- name: Propose a profile for what listens on TCP 5432
  daemonops.suite.discover:
    ports: [5432]
    suite_name: postgres

- name: Propose a profile from a systemd unit
  daemonops.suite.discover:
    unit: 'bacula-*.service'
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
proposal:
  description: The proposed profile (keys C(suite) and C(daemons)); valid for the profile loader.
  returned: success
  type: dict
  sample:
    suite: {name: refsuite, roles: [server], description: Proposed by daemonops.suite.discover from pid 2859}
    daemons:
      - name: qm
        roles: [server]
        match: {cmdline: '^refsuite-qm( |$)', exe: '^/usr/bin/python3(\.[0-9]+)?$'}
        count: {min: 1, max: 1}
        essential: true
proposal_yaml:
  description: RV(proposal) as YAML text, with comments that mark every guess and the facts seen.
  returned: success
  type: str
  sample: "suite:\n  name: refsuite  # guess: from the programs' common prefix 'refsuite-'\n..."
review:
  description: What to look at before using the proposal, one sentence each.
  returned: success
  type: list
  elements: str
  sample: ["data_server: guess: 2 instances under one parent look like a worker pool; no max"]
roots:
  description: The PIDs the hints pointed at (the tops of the walked trees).
  returned: success
  type: list
  elements: int
  sample: [2859]
programs:
  description: What was seen, one entry per proposed daemon.
  returned: success
  type: list
  elements: dict
  sample:
    - daemon: stpd
      argv0: refsuite-stpd
      title: refsuite-stpd
      script: null
      exe: /usr/bin/python3.11
      users: [root]
      pids: [5846]
      workers: []
      parents: [2859]
      ancestor: qm
      ports: [{port: 11000, addresses: [127.0.0.1]}]
      pidfiles: [{path: /run/refsuite/stpd.pid, pid: 5846, one_line: true, found: in /run/refsuite}]
      units: [refsuite.service]
"""


import os  # noqa: E402
import socket  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.discover import (  # noqa: E402
    Discovery,
    Hints,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (  # noqa: E402
    ProcessTable,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (  # noqa: E402
    SocketTable,
)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    discovery = Discovery(
        ProcessTable.scan(self_pid=os.getpid()),
        SocketTable.scan(),
        role=params["role"],
        suite_name=params["suite_name"],
        pidfile_dirs=params["pidfile_dirs"],
        host=socket.gethostname(),
    )
    hints = Hints(params["pid"], params["name"], params["unit"], params["ports"] or ())
    return discovery.propose(hints)


def main() -> None:
    argument_spec = dict(
        pid=dict(type="int"),
        name=dict(type="str"),
        unit=dict(type="str"),
        ports=dict(type="list", elements="int"),
        role=dict(type="str", default="server"),
        suite_name=dict(type="str"),
        pidfile_dirs=dict(type="list", elements="path", default=[]),
    )
    run_module(run, argument_spec, required_one_of=[["pid", "name", "unit", "ports"]])


if __name__ == "__main__":
    main()
