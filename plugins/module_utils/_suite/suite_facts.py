# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What identifies a suite installation's state, for spotting drift between audits: the
installed version (the profile's ``suite.version_file``) and a checksum of its INI."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import Profile


def file_checksum(path: Optional[str]) -> Optional[str]:
    """``sha256:<hex>`` of a readable file; None when there is no such file."""
    if not path or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(65536), b""):
                digest.update(block)
    except OSError:
        return None
    return f"sha256:{digest.hexdigest()}"


def read_version(path: Optional[str]) -> Optional[str]:
    """The first line of the version file; None when it is missing, unreadable or empty."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            line = handle.readline(200).strip()
    except OSError:
        return None
    return line or None


def suite_facts(profile: Profile, config_file: Optional[str]) -> dict[str, Optional[str]]:
    """``{version, config_checksum}`` of the suite on this host; ``config_file`` (else the
    profile's ``suite.config_file``) is the INI the check used."""
    return {
        "version": read_version(profile.version_file),
        "config_checksum": file_checksum(config_file or profile.config_file),
    }
