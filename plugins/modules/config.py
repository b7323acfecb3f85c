#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: config
short_description: Manage a suite's INI configuration key by key, validated against its profile
version_added: 0.1.0
description:
  - Sets (O(state=present)) or removes (O(state=absent)) keys of the suite's INI file, given as
    O(settings) as a mapping of sections to keys and values. Comments, blank lines and the order of the file are
    kept; only the lines of changed keys are touched.
  - Before writing, the whole resulting file is validated against the profile. Sections must be
    C(suite) or daemon names of the profile; C([suite] role) must be a role of the profile;
    C(port)/C(ports) must be numbers 1-65535, as many as the profile defines for the daemon;
    no port may belong to two daemons (ports the file does not set keep the profile's
    defaults). Errors name the option, for example
    C(settings.stpd.ports) followed by C(port 70000 is outside 1-65535).
  - The file is never half-written. It is written to a temporary file in the same directory,
    synced and renamed over the old one; an existing file keeps its mode and owner.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite
  - daemonops.suite.suite.attributes_action
options:
  config_file:
    description:
      - The INI file to manage. Defaults to C(suite.config_file) of the profile.
      - Missing parent directories are created (mode 0755).
    type: path
  settings:
    description:
      - A mapping of sections to mappings of keys to values. Lists become comma-separated values, booleans C(true)/C(false).
      - With O(state=absent) only the keys matter.
    type: dict
    required: true
  state:
    description: Whether the keys are present with these values, or absent.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description:
      - Keep a copy of the previous file (C(<file>.<timestamp>.<random>~), created in the same
        directory with an unpredictable name, never through an existing file or link) when it
        changes.
    type: bool
    default: false
  mode:
    description:
      - Mode of a newly created file (an existing file keeps its mode), an octal string such as
        V('0640') or a number from 0 to 0o7777.
      - The setuid, setgid and sticky bits (V('4000'), V('2000'), V('1000')) are refused unless
        O(allow_special_bits=true).
    type: raw
    default: '0644'
  allow_special_bits:
    description: Allow the setuid, setgid and sticky bits in O(mode).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Configure refsuite for a server
  daemonops.suite.config:
    profile: refsuite
    config_file: /etc/refsuite/refsuite.ini
    settings:
      suite: {role: server, bind: 127.0.0.1, retry_interval: 30}
      stpd: {ports: [11000, 11001, 11443]}
      ui: {port: 11401}
    backup: true

- name: Go back to the profile's default port of ctrl
  daemonops.suite.config:
    profile: refsuite
    settings:
      ctrl: {port: null}
    state: absent
"""

RETURN = r"""
path:
  description: The managed file.
  returned: success
  type: str
  sample: /etc/refsuite/refsuite.ini
changed_keys:
  description: C(section.key) of every key that was (or in check mode would be) changed.
  returned: success
  type: list
  elements: str
  sample: [suite.role, stpd.ports]
backup_file:
  description: The backup copy, when O(backup=true) and the file changed.
  returned: changed and O(backup=true) and the file existed
  type: str
  sample: /etc/refsuite/refsuite.ini.4242.2026-11-29@15:40:00~
"""


import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.ini_config import (  # noqa: E402
    IniConfig,
    parse_mode,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    profile_argument_spec,
    profile_from_params,
    profile_rules,
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import (  # noqa: E402
    ProfileFacts,
)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    profile = profile_from_params(params, apply_ini=False)
    path = params["config_file"] or profile.config_file
    if not path:
        raise SuiteError(
            f"config_file: the {profile.name} profile has no suite.config_file; give config_file"
        )
    return IniConfig(
        path,
        params["settings"],
        params["state"],
        ProfileFacts.from_profile(profile),
        backup=params["backup"],
        check_mode=module.check_mode,
        mode=parse_mode(params["mode"], params["allow_special_bits"]),
    ).run()


def main() -> None:
    argument_spec = profile_argument_spec(
        settings=dict(type="dict", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        backup=dict(type="bool", default=False),
        mode=dict(type="raw", default="0644"),
        allow_special_bits=dict(type="bool", default=False),
    )
    run_module(run, argument_spec, **profile_rules())


if __name__ == "__main__":
    main()
