#!/usr/bin/python
# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: install
short_description: Put a suite's components in place (bundled refsuite or a checksummed archive)
version_added: 0.1.0
description:
  - With O(source=bundled), installs the reference suite as C(<prefix>/bin/refsuite),
    C(<prefix>/lib/refsuite/) and C(<prefix>/VERSION). Without O(src), the action plugin reads the
    collection's C(refsuite/) files on the controller and ships them with the module, so nothing
    has to be staged on the target; with O(src), from a source tree already on the target. Files
    are compared by SHA-256 and only written (atomically) when their content differs; files no
    longer in the source are removed from C(<prefix>/lib/refsuite/).
  - With O(source=archive), verifies the SHA-256 of a release C(.tar.gz) before anything
    changes, unpacks it to C(<prefix>/releases/<version>/) and switches the C(current) symlink
    atomically; C(<prefix>/bin), C(<prefix>/lib) and C(<prefix>/VERSION) point into C(current).
    O(version) alone selects a release that is already installed, so a rollback is one variable.
  - Vendor suites that come as OS packages are installed with M(ansible.builtin.package)
    (variable C(common_packages) of the C(daemonops.suite.common) role), not with this module.
author: daemonops.suite developers (@daemonops)
extends_documentation_fragment:
  - daemonops.suite.suite.attributes_action
options:
  source:
    description: Where the components come from.
    type: str
    choices: [bundled, archive]
    default: bundled
  src:
    description:
      - A reference suite source tree on the target (a directory holding C(refsuite/__init__.py)
        and C(VERSION)) to install with O(source=bundled) instead of the collection's own
        C(refsuite/), which the action plugin ships when O(src) is omitted.
    type: path
  bundle:
    description:
      - Internal, filled in by the action plugin; do not set it yourself.
      - The collection's C(refsuite/) files for O(source=bundled) as relative path to base64
        content. Mutually exclusive with O(src).
    type: dict
  prefix:
    description: Installation directory.
    type: path
    default: /opt/refsuite
  archive:
    description:
      - Release archive (tar.gz) to install with O(source=archive), as a path on the target or an
        C(http://), C(https://) or C(file://) URL. Its top level holds C(bin/), C(lib/) and
        C(VERSION), optionally inside one directory.
      - Omit it to switch to an already installed O(version).
    type: str
  sha256:
    description:
      - SHA-256 checksum of O(archive) (64 hex digits, optionally prefixed C(sha256:)). Required
        with O(archive); a mismatch fails before anything changes, naming both checksums.
    type: str
  version:
    description:
      - With O(archive), the release name (default the archive's C(VERSION) file).
      - Without O(archive), the installed release C(current) must point to (rollback/upgrade).
    type: str
  python:
    description: Interpreter written into the C(bin/refsuite) launcher (default the module's own).
    type: path
notes:
  - Check mode reports what would change; diff mode shows changed files with their checksums
    (bundled) or the release C(current) points to (archive).
"""

EXAMPLES = r"""
- name: Install the refsuite bundled with the collection (shipped by the action plugin)
  daemonops.suite.install:
    source: bundled
    prefix: /opt/refsuite

- name: Install a refsuite source tree that is already on the target
  daemonops.suite.install:
    source: bundled
    src: /var/tmp/refsuite-src
    prefix: /opt/refsuite

- name: Install release 1.2.0 from a checksummed archive
  daemonops.suite.install:
    source: archive
    archive: https://repo.example.com/refsuite-1.2.0.tar.gz
    sha256: 0d3c5e8d0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4
    prefix: /opt/refsuite

- name: Roll back to 1.1.0 (already installed)
  daemonops.suite.install:
    source: archive
    version: 1.1.0
"""

RETURN = r"""
version:
  description: The installed (current) version.
  returned: success
  type: str
  sample: 0.1.0
prefix:
  description: The installation directory.
  returned: success
  type: str
  sample: /opt/refsuite
source:
  description: The source used.
  returned: success
  type: str
  sample: bundled
files:
  description: Files written or removed (bundled), relative to O(prefix).
  returned: when O(source=bundled)
  type: list
  elements: str
  sample: [bin/refsuite, lib/refsuite/qm.py]
releases:
  description: Releases installed under C(<prefix>/releases).
  returned: when O(source=archive)
  type: list
  elements: str
  sample: [0.1.0, 0.2.0]
release_dir:
  description: Directory of the current release.
  returned: when O(source=archive)
  type: str
  sample: /opt/refsuite/releases/0.2.0
"""

import typing as t  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError  # noqa: E402
from ansible_collections.daemonops.suite.plugins.module_utils._suite.installer import (  # noqa: E402
    ArchiveInstaller,
    BundledInstaller,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (  # noqa: E402
    run_module,
)


def fetch(url: str, dest: str) -> None:
    """Download ``url`` to the file ``dest`` with Ansible's ``open_url`` (proxies, CA
    bundle)."""
    from ansible.module_utils.urls import open_url

    try:
        with open_url(url, timeout=60) as response, open(dest, "wb") as handle:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                handle.write(block)
    except Exception as exc:
        raise SuiteError(f"archive: cannot download {url}: {exc}")


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    if params["source"] == "bundled":
        if not params["src"] and params["bundle"] is None:
            raise SuiteError(
                "src: give src (a refsuite tree on the target) with source=bundled, or call "
                "the module by its FQCN daemonops.suite.install so that its action plugin "
                "ships the collection's refsuite/ as bundle"
            )
        return BundledInstaller(
            params["src"] or None,
            params["prefix"],
            check_mode=module.check_mode,
            python=params["python"],
            bundle=None if params["src"] else params["bundle"],
        ).run()
    if params["src"]:
        raise SuiteError("src: only for source=bundled; use archive with source=archive")
    if params["bundle"] is not None:
        raise SuiteError("bundle: only for source=bundled; use archive with source=archive")
    return ArchiveInstaller(
        params["prefix"],
        archive=params["archive"],
        sha256=params["sha256"],
        version=params["version"],
        check_mode=module.check_mode,
        fetch=fetch,
    ).run()


def main() -> None:
    argument_spec = dict(
        source=dict(type="str", choices=["bundled", "archive"], default="bundled"),
        src=dict(type="path"),
        bundle=dict(type="dict"),
        prefix=dict(type="path", default="/opt/refsuite"),
        archive=dict(type="str"),
        sha256=dict(type="str"),
        version=dict(type="str"),
        python=dict(type="path"),
    )
    run_module(
        run,
        argument_spec,
        mutually_exclusive=[("src", "bundle")],
        required_by={"archive": ["sha256"]},
    )


if __name__ == "__main__":
    main()
