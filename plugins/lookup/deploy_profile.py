# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
name: deploy_profile
author: daemonops.suite developers (@daemonops)
short_description: Load a suite profile for deployment (validated, with the deployment's paths)
description:
  - Resolves a suite profile on the controller (a profile shipped with the collection, a profile
    file, or inline data), validates it completely, replaces the placeholders of its C(deploy)
    section (C({prefix}), C({config_file}), C({config_dir}), C({state_dir}), C({log_dir})) with the
    deployment's paths and merges C(deploy.profile) into the profile.
  - Used by the C(daemonops.suite.common) role; returns one dictionary.
options:
  _terms:
    description: The profile's name (shipped with the collection) or the path of a profile file.
    type: list
    elements: str
    required: false
  data:
    description: A profile given inline (keys C(suite), C(daemons), optional C(deploy)); wins over the name.
    type: dict
    default: {}
  paths:
    description: The deployment's paths, keys C(prefix), C(config_file), C(config_dir), C(state_dir), C(log_dir).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Load the Bacula profile for deployment
  ansible.builtin.set_fact:
    suite: "{{ query('daemonops.suite.deploy_profile', 'bacula')[0] }}"
"""

RETURN = r"""
_raw:
  description: One dictionary per call.
  type: list
  elements: dict
  contains:
    profile:
      description: The validated profile (without C(deploy)), with C(deploy.profile) merged in.
      type: dict
    deploy:
      description: The normalised C(deploy) section (every list present), placeholders replaced.
      type: dict
    folder:
      description: The profile's folder (C(profiles/<suite>/), holding C(templates/)), or null.
      type: str
"""

import typing as t  # noqa: E402

from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (  # noqa: E402
    SuiteError,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (  # noqa: E402
    deployment_profile,
)


class LookupModule(LookupBase):
    def run(self, terms: list[t.Any], variables: t.Any = None, **kwargs: t.Any) -> list[dict]:
        self.set_options(var_options=variables, direct=kwargs)
        name = terms[0] if terms else None
        try:
            return [
                deployment_profile(
                    name=name,
                    data=self.get_option("data") or None,
                    paths=self.get_option("paths"),
                    find_file=self._loader.path_dwim,
                )
            ]
        except SuiteError as exc:
            option = "common_profile_data" if self.get_option("data") else "common_profile"
            raise AnsibleError(f"{option}: {exc}") from None
