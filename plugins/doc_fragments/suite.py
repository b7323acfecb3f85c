# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Doc fragments shared by the modules of daemonops.suite. Use:
#   extends_documentation_fragment:
#     - daemonops.suite.suite                  # the profile options
#     - daemonops.suite.suite.attributes_info  # or .attributes_action

from __future__ import annotations


class ModuleDocFragment:
    # The profile options (argument spec: module_kit.PROFILE_ARGS).
    DOCUMENTATION = r"""
options:
  profile:
    description:
      - Name of a suite profile shipped with the collection (for example V(refsuite), V(sesam),
        V(seon), V(os4x), V(sysman)), or the path of a profile file ending in C(.yml) or C(.yaml)
        (relative paths are searched like other playbook files).
      - The profile is loaded and validated on the controller by the collection's action plugin,
        which passes it to the module as O(profile_data); call the module by its FQCN.
      - One of O(profile) and O(profile_data) is required.
    type: str
  profile_data:
    description:
      - A suite profile given inline, in the same format as the profile files (keys C(suite) and
        C(daemons)); use it to describe a suite no shipped profile knows.
      - The profile is validated completely; an unknown key, a daemon without C(match.cmdline),
        an invalid regular expression, a port outside 1-65535, one port on two daemons, an
        unknown or cyclic C(ancestor), or a role not in C(suite.roles) is refused with a message
        naming the daemon and the field.
    type: dict
  instance:
    description:
      - A string that must appear in the command line of every matched process, to tell apart
        several instances of a suite on one host (for example the path of the instance's
        configuration file, C(/etc/refsuite/refsuite.ini)).
      - By default every process matching a daemon's C(match) rules counts.
    type: str
  config_file:
    description:
      - The suite's INI configuration file on the target. Sections named after daemons may set
        C(enabled = true|false) and C(port = N) or C(ports = a,b,c), which override the
        profile's C(enabled) and port numbers.
      - Defaults to C(suite.config_file) of the profile. A missing file leaves the profile as it
        is; a file that cannot be parsed is an error naming the file and line.
    type: path
  _profile:
    description:
      - Internal, do not set it. The collection's action plugin sends in it the profile it has
        validated on the controller (from O(profile) or O(profile_data)), so the module does not
        validate it again; the action plugin always replaces a value given in the task.
      - Without it (the module run another way) O(profile_data) is validated completely.
    type: dict
"""

    # For *_info modules: read-only.
    ATTRIBUTES_INFO = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
    details:
      - This action does not modify state.
"""

    # For modules that change state.
    ATTRIBUTES_ACTION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: full
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
"""
