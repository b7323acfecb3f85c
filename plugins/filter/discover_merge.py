# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``daemonops.suite.discover_merge`` filter: one profile from the ``discover`` proposals of
hosts with different roles (documentation in discover_merge.yml)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proposal import (
    merge_proposals,
)


def discover_merge(proposals: t.Any, name: t.Optional[str] = None) -> dict[str, t.Any]:
    """Merge proposals (a list of ``proposal`` values of ``discover``) into one profile."""
    if isinstance(proposals, dict):
        proposals = [proposals]
    if not isinstance(proposals, (list, tuple)):
        raise AnsibleFilterError(
            f"discover_merge: expects a list of proposals, got {type(proposals).__name__}"
        )
    try:
        return merge_proposals(list(proposals), name=name)
    except SuiteError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"discover_merge": discover_merge}
