# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the action plugins that run on the controller only and never touch a target."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ControllerActionModule(ActionBase):
    """No connection, no files sent, no async; check mode is supported (a target is never
    changed; each plugin says what it does on the controller in check mode)."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False
