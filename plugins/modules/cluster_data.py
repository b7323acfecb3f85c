#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_data
short_description: Clear a suite's cluster data tree, only when no daemon runs and no client is connected
version_added: 0.1.0
description:
  - Removes everything found O(depth) levels below O(path) (depth 2 under C(/var/cluster/sms) is
    the C(rm -rf /var/cluster/sms/*/*) of the SysMan Station procedure; entries whose names start
    with a dot are included). Directories above that depth stay.
  - Refuses, before anything is deleted and naming every failed condition, when a daemon of the
    suite runs on this host (one pass over the process table; with O(instance), only processes
    whose command line contains it count), or when any ESTABLISHED TCP connection has one of the
    suite's ports as its local port (one pass over the sockets; an accepted connection counts
    even after its listener has closed).
  - Refuses a O(path) outside the profile's C(suite.cluster_data.path) (when the profile has
    one), and a O(path) that is relative, not normalised, contains C(..) or a symlink, does not
    exist, or is V(/), a top-level or system directory (C(/var), C(/usr/lib), C(/etc/...), a home
    directory ...). A second check compares the device and inode of the opened directory with
    those of C(/) and the system directories.
  - Deletes through directory file descriptors only, never follows a symlink (a link is removed,
    its target is untouched) and never enters another filesystem or a mount point (those are
    reported in RV(not_descended)).
  - The whole plan (every entry to remove) is computed before the first deletion. Names that are
    not UTF-8 are handled as they are and reported escaped (C(\xff)). Any depth of tree works
    (the walk is iterative). An entry that cannot be removed (permission denied, an immutable
    file) is kept and reported in RV(kept) while everything else is removed; the task then fails
    with an account of both.
  - In check mode, verifies the same conditions (and fails the same way) and lists what would be
    removed; use it as the "every member is stopped" verification of a cluster reset.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite
  - daemonops.suite.suite.attributes_action
options:
  path:
    description:
      - Root of the cluster data tree. Default C(suite.cluster_data.path) of the profile.
      - When the profile has a C(suite.cluster_data.path), O(path) must be that directory or a
        directory below it (the allow rule); the refusal of system paths applies as well.
    type: path
  depth:
    description:
      - Level below O(path) whose entries are removed (1 = the entries of O(path)). Default
        C(suite.cluster_data.depth) of the profile.
    type: int
requirements:
  - psutil (only where there is no Linux /proc)
notes:
  - Run it with C(become=true) so that every process and socket can be seen; if the socket table
    cannot be read the module refuses.
  - The check and the deletion are a few milliseconds apart; stop the suite on every member first
    (see the C(daemonops.suite.cluster_reset) playbook).
seealso:
  - module: daemonops.suite.service
  - module: daemonops.suite.health_info
"""

EXAMPLES = r"""
- name: Clear /var/cluster/sms/*/* once every smsd is stopped
  daemonops.suite.cluster_data:
    profile: sysman
    path: /var/cluster/sms
    depth: 2

- name: Verify that clearing would be allowed (nothing runs, no clients) and list what would go
  daemonops.suite.cluster_data:
    profile: refsuite
  check_mode: true
"""

RETURN = r"""
root:
  description: The cluster data root that was cleared (O(path) after validation).
  returned: success
  type: str
  sample: /var/lib/refsuite/cluster
depth:
  description: The depth whose entries were removed.
  returned: success
  type: int
  sample: 2
removed:
  description: Entries at O(depth) removed with everything below them (in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: [/var/lib/refsuite/cluster/node1/members.dat]
kept:
  description:
    - Entries that could not be removed (permission denied, an immutable file ...), with the
      reason. When there are any the task fails, after removing everything else, and also
      returns RV(removed) (what was removed) and RV(not_descended).
  returned: always
  type: list
  elements: str
  sample: ['/var/lib/refsuite/cluster/node1/members.dat: not removed (Operation not permitted)']
not_descended:
  description:
    - Entries left in place, with the reason (another filesystem, mount point, changed meanwhile).
    - Called C(skipped) before version 0.2.0; renamed because Ansible reserves C(skipped).
  returned: success
  type: list
  elements: str
  sample: ['/var/lib/refsuite/cluster/node1/mnt: another filesystem; not entered']
"""


import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.cluster import ClusterDataClear  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    profile_argument_spec,
    profile_from_params,
    profile_rules,
    run_module,
)


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


if __name__ == "__main__":
    main()
