#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stale_pids
short_description: Find and clear stale PID records (pidfiles, SQLite or PostgreSQL rows)
version_added: 0.1.0
description:
  - Reads a suite's PID records from pidfiles, an SQLite table or a PostgreSQL table (Seon and
    OS4X keep their daemons' PIDs in their database) and judges each record.
  - C(live) - the recorded process runs and is the recorded program.
  - C(stale) - proven dead or another program - the process is gone or a zombie, the record was
    written in another boot, the process' start differs from the recorded one (in clock ticks
    since boot when the record has C(start_ticks) and the same boot id, which a wall-clock step
    does not change; else the epoch C(start_time), by more than one second), its executable
    differs from the recorded one, or (when only a PID was recorded) it does not pass the
    daemon's rules (C(match.cmdline), C(match.exe), C(match.user)).
  - C(invalid) - the record holds no usable PID - empty, not a decimal number, 0, 1, negative or
    beyond the kernel's C(pid_max). Such a record is never used as a PID.
  - C(unknown) - the module cannot tell - permission denied, a record written on another host,
    a pidfile refused as insecure (a symlink, writable by group or others, or owned by neither
    root nor the current user), or a PID-only record whose name is no daemon of the profile.
    Unknown records are always left alone.
  - With O(state=absent) the stale records are removed (and the invalid ones with
    O(remove_invalid=true)). A record is only removed if it is still what was judged, and
    never - whatever the verdict - when its PID is a live process passing every rule of its
    daemon (C(match) and C(ancestor)); its reason then says C(kept).
  - A pidfile's PID is its first line; what follows (PostgreSQL's C(postmaster.pid) holds the
    data directory, start time, port...) is not read. Garbage in the first line is C(invalid).
  - Processes are read from C(/proc) on Linux (psutil is only needed elsewhere).
  - The module never sends a signal to any process.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite
  - daemonops.suite.suite.attributes_action
options:
  state:
    description:
      - V(present) reports the records and changes nothing.
      - V(absent) removes the stale records (and invalid ones, see O(remove_invalid)).
    type: str
    choices: [present, absent]
    default: present
  store:
    description:
      - Where the records are. Overrides the profile's C(suite.pid_store) key by key; a store of
        another O(store.type) replaces it. Required when neither O(profile) nor O(profile_data)
        is given.
    type: dict
    suboptions:
      type:
        description: The kind of store.
        type: str
        choices: [pidfile, sqlite, postgresql]
      path:
        description:
          - For V(pidfile), a directory whose files named like O(store.pattern) are read (the
            record's name is the C({name}) part), or a single pidfile.
          - For V(sqlite), the database file.
        type: path
      pattern:
        description:
          - Pidfile name pattern inside a directory, with C({name}) (and C({port})).
          - Default the profile's C(pid_store.pattern), else C({name}.pid).
        type: str
      files:
        description: Named pidfiles, record name to absolute path (pidfile stores). A missing file is no record.
        type: dict
      table:
        description: Table holding the records (V(sqlite), V(postgresql)), C(table) or C(schema.table).
        type: str
      dsn:
        description: libpq connection string of the PostgreSQL database, for example C(dbname=seon).
        type: str
      columns:
        description:
          - 'Column of each field, for example C({name: daemon, pid: process_id}). Fields not
            given use the column of the same name if the table has one; a field set to null
            is not read. C(name) and C(pid) are required columns. Fields - C(name), C(pid),
            C(start_time), C(boot_id), C(host), C(exe), C(start_ticks) (start in clock ticks
            since boot, /proc/PID/stat field 22).'
        type: dict
  daemons:
    description: Only consider the records of these daemons (names from the profile).
    type: list
    elements: str
  remove_invalid:
    description:
      - With O(state=absent), also remove C(invalid) records (as records; their content is never
        used as a PID).
    type: bool
    default: false
requirements:
  - psutil (only where there is no Linux /proc)
  - psycopg2 (only for PostgreSQL stores; imported only then)
notes:
  - Check mode removes nothing; RV(records[].would_remove) says what O(state=absent) would
    remove, RV(records[].removed) stays V(false).
  - Diff mode shows the records before and after, one per line.
seealso:
  - module: daemonops.suite.health_info
  - module: daemonops.suite.service
"""

EXAMPLES = r"""
- name: Report the PID records of the refsuite
  daemonops.suite.stale_pids:
    profile: refsuite

- name: Clear stale records kept in Seon's PostgreSQL database
  daemonops.suite.stale_pids:
    profile: seon
    store:
      type: postgresql
      dsn: dbname=seon user=seon
      table: daemon_pids
      columns: {name: daemon, pid: pid}
    state: absent

- name: Clear stale pidfiles of one daemon, and garbage pidfiles too
  daemonops.suite.stale_pids:
    profile: sysman
    store: {type: pidfile, path: /var/run/sysman}
    daemons: [smsd]
    remove_invalid: true
    state: absent
"""

RETURN = r"""
records:
  description: Every record considered, in store order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The record's name (pidfile name part or name column).
      type: str
      sample: qm
    daemon:
      description: The profile daemon the record belongs to, null if none.
      type: str
      sample: qm
    pid:
      description: The recorded PID, null when the record is invalid or refused.
      type: int
      sample: 2859
    raw_pid:
      description: The recorded PID as text, as stored.
      type: str
      sample: '2859'
    status:
      description: The verdict.
      type: str
      sample: stale
    reason:
      description: Why, in words.
      type: str
      sample: no process with PID 2859
    removed:
      description: Whether the record was removed (never in check mode).
      type: bool
    would_remove:
      description: Whether O(state=absent) removes the record (in check mode, would remove it).
      type: bool
      sample: true
    source:
      description: The pidfile, or C(database:table).
      type: str
      sample: /var/lib/refsuite/state.db:daemon_pids
  sample:
    - {name: qm, daemon: qm, pid: 2859, raw_pid: '2859', status: live, reason: PID 2859 is the recorded process,
       removed: false, would_remove: false, source: /var/lib/refsuite/state.db:daemon_pids}
counts:
  description: Number of records by status, removed, would be removed, and in total.
  returned: success
  type: dict
  sample: {live: 7, stale: 1, invalid: 0, unknown: 0, removed: 1, would_remove: 1, total: 8}
store_type:
  description: The type of the store that was read.
  returned: success
  type: str
  sample: sqlite
"""


import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    profile_argument_spec,
    profile_from_params,
    profile_rules,
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.stale import StalePids  # noqa: E402


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    with_profile = params["profile"] or params["profile_data"]
    return StalePids(
        profile_from_params(params) if with_profile else None,
        state=params["state"],
        store=params["store"],
        daemons=params["daemons"],
        remove_invalid=params["remove_invalid"],
        instance=params["instance"],
        check_mode=module.check_mode,
    ).run()


def main() -> None:
    argument_spec = profile_argument_spec(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        store=dict(
            type="dict",
            options=dict(
                type=dict(type="str", choices=["pidfile", "sqlite", "postgresql"]),
                path=dict(type="path"),
                pattern=dict(type="str"),
                files=dict(type="dict"),
                table=dict(type="str"),
                dsn=dict(type="str"),
                columns=dict(type="dict"),
            ),
        ),
        daemons=dict(type="list", elements="str"),
        remove_invalid=dict(type="bool", default=False),
    )
    run_module(run, argument_spec, **profile_rules(or_options=["store"]))


if __name__ == "__main__":
    main()
