# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin for daemonops.suite.service: resolves ``profile: <name>`` on the controller
and, when the task gives no ``roles``, takes them from the host's inventory groups."""

from __future__ import annotations

from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
    SuiteActionModule,
)


class ActionModule(SuiteActionModule):
    roles_from_groups = True
