#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: health_info
short_description: Check a suite's daemons like C(sm_main status), in one fast structured call
version_added: 0.1.0
description:
  - For every daemon the host's roles need, checks that its process runs (by the profile's
    C(match) rules on the full command line), under the expected C(ancestor) daemon, with an
    instance count within C(count), that each of its ports is listening B(and owned by that
    daemon) (a port held by another process is named), how many clients hold ESTABLISHED
    connections (with up to O(peers_limit) of their peer addresses), optionally that a probe (TCP connect, HTTP GET)
    answers, and that the daemon's PID record is consistent.
  - Each daemon is V(online), V(offline) (no process), V(degraded) (process found but something
    is wrong) or V(unused) (disabled in the profile or the suite's configuration file).
  - "Returns sesam-style status lines (C(qm [  2859]: online)) and C(STATUS)/C(MSG) values;
    RV(status) is V(FAILURE) when any daemon is offline or degraded. The module itself does not
    fail then; use RV(status) in C(failed_when) or C(assert)."
  - One pass over the process table and one over the socket table per call, no subprocess.
    The socket table is read for the checked daemons' ports only, and their sockets' owners are
    looked for among the daemons' own processes first.
  - A process that only mentions a daemon's name in its arguments (C(grep sm_stpd_main)) does
    not count, nor does the module's own process chain.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite
  - daemonops.suite.suite.attributes_info
options:
  roles:
    description:
      - The suite roles of this host (for example V(server), V(rds), V(client)); the daemons of
        all these roles are checked.
      - Default the host's inventory groups that are roles of the suite (C(group_names)
        intersected with C(suite.roles)); the module fails naming this option when that is empty.
    type: list
    elements: str
  probes:
    description: Run the probes the profile defines on ports (TCP connect, HTTP(S) GET).
    type: bool
    default: true
  pid_records:
    description:
      - Read the profile's PID store (C(suite.pid_store)) and judge each daemon's record as
        C(status) of RV(daemons.pid_record). A stale or invalid record degrades a running daemon.
      - The store's path is O(pid_store_path) when given, else the value the suite INI
        (O(config_file)) gives to the key named by the profile's C(suite.pid_store.config_key)
        (refsuite's C(state_db) in section C(suite), so each instance's own state database is
        read), else C(suite.pid_store.path).
    type: bool
    default: true
  peers_limit:
    description:
      - How many peer addresses each port lists in RV(daemons.ports) C(peers). RV(daemons.ports)
        C(clients) always counts every client; C(peers_truncated) tells when peers were left
        out.
      - V(0) lists none (counts only), V(-1) lists every peer (a busy port can make the result
        large, about 20 bytes per peer).
    type: int
    default: 20
    version_added: 0.2.0
  pid_store_path:
    description:
      - The path of the PID store on the host (an SQLite file or a pidfile directory), overriding
        the instance's INI and the profile. Use it when an instance keeps its records elsewhere.
    type: path
requirements:
  - psutil
notes:
  - Seeing the owner of another user's socket needs root; run with C(become=true) when the
    daemons run as another user. A port whose owner cannot be seen is reported as such.
seealso:
  - module: daemonops.suite.service
  - module: daemonops.suite.stale_pids
"""

EXAMPLES = r"""
- name: Check the reference suite on a server
  daemonops.suite.health_info:
    profile: refsuite
    roles: [server]
  register: health

- name: Fail when a daemon is not online
  ansible.builtin.assert:
    that: health.status == 'SUCCESS'
    fail_msg: "{{ health.msg }}"

- name: Check a SEP sesam RDS (roles from the host's inventory groups), without probes
  daemonops.suite.health_info:
    profile: sesam
    probes: false

- name: Check one of two refsuite instances on the host
  daemonops.suite.health_info:
    profile: refsuite
    roles: [server]
    instance: /etc/refsuite/second.ini
    config_file: /etc/refsuite/second.ini

- name: Check a suite described inline
  daemonops.suite.health_info:
    profile_data:
      suite: {name: mysuite, roles: [server]}
      daemons:
        - name: master
          roles: [server]
          match: {cmdline: '^/opt/my/bin/masterd( |$)'}
          ports: [{port: 8080, probe: {type: http, path: /health}}]
    roles: [server]
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
status:
  description: V(SUCCESS) when every checked daemon is online or unused, V(FAILURE) otherwise.
  returned: success
  type: str
  sample: SUCCESS
msg:
  description: C(All daemons online), or the problems joined with C(; ).
  returned: always
  type: str
  sample: "stpd offline; ui port 11401 held by nginx[812]"
status_lines:
  description: One line per daemon, like C(sm_main status) prints them.
  returned: success
  type: list
  elements: str
  sample: ["qm [  2859]: online", "ui : unused", "stpd : offline"]
roles:
  description: The roles checked.
  returned: success
  type: list
  elements: str
  sample: [server]
profile:
  description: The suite's name.
  returned: success
  type: str
  sample: refsuite
host:
  description: The host name of the target.
  returned: success
  type: str
  sample: backupsrv
instance:
  description: The O(instance) string, when given.
  returned: when O(instance) is set
  type: str
  sample: /etc/refsuite/refsuite.ini
version:
  description: The installed suite's version, the first line of the profile's C(suite.version_file); null without one.
  returned: success
  type: str
  sample: 0.1.0
elapsed:
  description: Seconds the check took on the host.
  returned: success
  type: float
  sample: 0.042
config_checksum:
  description: C(sha256:) checksum of the suite INI the check used; null when there is none.
  returned: success
  type: str
  sample: "sha256:9f2c0d0b6f3e4c1c8d1e7a7f5b8a1d2e3c4b5a69788796a5b4c3d2e1f0a9b8c7"
summary:
  description: Counts over the checked daemons.
  returned: success
  type: dict
  sample: {total: 9, online: 7, offline: 1, degraded: 0, unused: 1, clients: 2}
  contains:
    total:
      description: Daemons checked.
      type: int
      sample: 9
    online:
      description: Daemons online.
      type: int
      sample: 7
    offline:
      description: Daemons with no process.
      type: int
      sample: 1
    degraded:
      description: Daemons with a process but a problem.
      type: int
      sample: 0
    unused:
      description: Daemons disabled by the profile or the configuration file.
      type: int
      sample: 1
    clients:
      description: ESTABLISHED client connections to the daemons' ports.
      type: int
      sample: 2
daemons:
  description: One entry per checked daemon, keyed by name, in profile order.
  returned: success
  type: dict
  sample:
    stpd:
      state: online
      essential: false
      enabled: true
      problems: []
      pids: [5846]
      count: 1
      expected_count: {min: 1, max: 1}
      ancestry: {expected: qm, ok: true, chain: [5846, 2859]}
      start_time: 1732890000.5
      uptime: 3600.2
      ports:
        - {port: 11000, listening: true, owned: true, holder: null, addresses: [127.0.0.1],
           clients: 1, peers: ["127.0.0.1:53422"], peers_truncated: false,
           probe: {ok: true, detail: HTTP 200}}
      pid_record: {status: consistent, pid: 5846, reason: PID 5846 is the recorded process}
  contains:
    state:
      description: V(online), V(offline), V(degraded) or V(unused).
      type: str
      sample: online
    essential:
      description: Whether the profile marks the daemon essential.
      type: bool
      sample: true
    enabled:
      description: Whether the daemon is enabled after the configuration file's overrides.
      type: bool
      sample: true
    problems:
      description: What is wrong, one sentence each; empty when online or unused.
      type: list
      elements: str
      sample: ["ui port 11401 held by /usr/sbin/nginx[812]"]
    pids:
      description:
        - PIDs of the daemon's instances, oldest first. Forked workers that carry the same
          command line as their parent instance are part of it and not listed.
        - An instance is a process passing every rule of the daemon (C(match.cmdline) and
          O(instance), C(match.exe), C(match.user), C(ancestor)); see RV(daemons.impostors).
      type: list
      elements: int
      sample: [5846]
    count:
      description: Instances found.
      type: int
      sample: 1
    expected_count:
      description: The profile's C(count) (C(max) null when unlimited).
      type: dict
      sample: {min: 1, max: null}
    ancestry:
      description:
        - Null when the profile gives no C(ancestor). C(ok) is null when no instance runs.
        - C(chain) is the PIDs from the (first failing) instance up to the ancestor daemon's
          process, or up to the root when the ancestor was not found.
      type: dict
      sample: {expected: qm, ok: true, chain: [5846, 2859]}
    start_time:
      description: Start of the oldest instance, seconds since the epoch; null when offline.
      type: float
      sample: 1732890000.5
    uptime:
      description: Seconds since RV(daemons.start_time); null when offline.
      type: float
      sample: 3600.2
    ports:
      description:
        - One entry per profile port (after configuration file overrides).
        - C(listening), C(owned), C(clients) are null when the socket table could not be read.
        - C(owned) means a listener's process is one of the daemon's processes or a descendant.
        - C(holder) names other processes listening on the port by what they are
          (C(executable[pid]), with C(argv[0]) in brackets when it names another program),
          else null; C(holders) gives them as C({pid, exe, exe_deleted, comm, argv0}).
        - Connections of our own probes (this check's, a sibling check's, the audit's) are
          never counted in C(clients).
        - C(clients) and C(peers) count server-side ESTABLISHED connections only.
        - C(clients) is the number of distinct peers; C(peers) lists at most O(peers_limit) of
          them (the first found, sorted), and C(peers_truncated) is true when some were left out.
        - C(probe) is null when no probe ran.
      type: list
      elements: dict
      sample:
        - {port: 11401, listening: true, owned: false, holder: "/usr/sbin/nginx[812]",
           holders: [{pid: 812, exe: /usr/sbin/nginx, exe_deleted: false, comm: nginx,
           argv0: null}], addresses: ["0.0.0.0"], clients: 0, peers: [],
           peers_truncated: false, probe: null}
    pid_record:
      description:
        - C(status) is V(consistent), V(stale), V(missing), V(invalid), V(unknown) or
          V(not_applicable) (no PID store, or O(pid_records=false)); C(pid) the recorded PID;
          C(reason) why.
      type: dict
      sample: {status: stale, pid: 4242, reason: no process with PID 4242}
    impostors:
      description:
        - Processes named like the daemon (its C(match.cmdline)) that fail another of its rules;
          never counted. C(exe) is C(/proc/PID/exe) (null when unreadable), C(exe_deleted) true
          when the binary was replaced or removed on disk, C(comm) the kernel's name, C(argv0)
          set when it names another program than C(exe), C(reason) the rule it fails.
        - They do not fail the check by themselves; a port they hold does.
      type: list
      elements: dict
      sample:
        - {pid: 4242, exe: /usr/bin/python3.11, exe_deleted: false, comm: bacula-sd,
           argv0: bacula-sd, reason: "executable /usr/bin/python3.11 does not match match.exe
           '^/usr/sbin/bacula-sd$'"}
    notes:
      description:
        - Rules that could not be verified on counted instances (the executable of another
          user's process without root; run with C(become=true)), and instances running a binary
          replaced on disk since they started.
      type: list
      elements: str
      sample: ["PID 5846: executable unreadable (another user's process; run with become: true), match.exe not verified"]
"""


import time  # noqa: E402
import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import (  # noqa: E402
    DEFAULT_PEERS_LIMIT,
    HealthChecker,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    profile_argument_spec,
    profile_from_params,
    profile_rules,
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_facts import (  # noqa: E402
    suite_facts,
)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    profile = profile_from_params(params, apply_ini=False)
    if params["pid_store_path"]:
        from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import (
            with_pid_store_path,
        )

        profile = with_pid_store_path(profile, params["pid_store_path"])
    checker = HealthChecker(
        profile,
        params["roles"] or [],
        instance=params["instance"],
        config_file=params["config_file"],
        probes=params["probes"],
        pid_records=params["pid_records"],
        peers_limit=params["peers_limit"],
    )
    started = time.monotonic()
    result = checker.run()
    result.update(suite_facts(profile, params["config_file"]))
    result["elapsed"] = round(time.monotonic() - started, 3)
    return result


def main() -> None:
    argument_spec = profile_argument_spec(
        roles=dict(type="list", elements="str"),
        probes=dict(type="bool", default=True),
        pid_records=dict(type="bool", default=True),
        peers_limit=dict(type="int", default=DEFAULT_PEERS_LIMIT),
        pid_store_path=dict(type="path"),
    )
    run_module(run, argument_spec, **profile_rules())


if __name__ == "__main__":
    main()
