# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin for daemonops.suite.install.

Resolves ``profile: <name>`` on the controller like every action plugin of the collection and,
with ``source: bundled`` and no ``src``, ships the collection's reference suite with the module:
the files refsuite needs (``refsuite/VERSION``, ``refsuite/bin/refsuite`` and the ``*.py`` files
of the ``refsuite/refsuite/`` package; no caches, compiled files or README) become the module
option ``bundle`` (path relative to ``refsuite/`` -> base64 content). One module call then
installs by content on the target, with nothing staged there first.
"""

from __future__ import annotations

import base64
import os
import typing as t

from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
    SuiteActionModule,
)

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFSUITE_DIR = os.path.join(COLLECTION_ROOT, "refsuite")
PACKAGE = "refsuite"
_SKIPPED_DIRS = ("__pycache__",)


class BundleError(Exception):
    """The collection's refsuite/ tree cannot be bundled (message for the user)."""


def refsuite_bundle(refsuite_dir: str = REFSUITE_DIR) -> dict[str, str]:
    """The files refsuite needs, as relpath (relative to ``refsuite_dir``) -> base64 content.

    ``VERSION``, ``bin/refsuite`` and ``refsuite/**/*.py`` (``__pycache__`` skipped); everything
    else in the tree (README.md, compiled files, editor leftovers) is left out.
    """
    package = os.path.join(refsuite_dir, PACKAGE)
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        raise BundleError(
            f"source=bundled: the collection has no refsuite package at {package} "
            "(is the collection installed completely?); give src (a refsuite tree on the target) "
            "or use source=archive"
        )
    paths: list[str] = [
        rel
        for rel in ("VERSION", f"bin/{PACKAGE}")
        if os.path.isfile(os.path.join(refsuite_dir, *rel.split("/")))
    ]
    for root, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(names):
            full = os.path.join(root, name)
            if name.endswith(".py") and os.path.isfile(full):
                paths.append(os.path.relpath(full, refsuite_dir).replace(os.sep, "/"))
    bundle: dict[str, str] = {}
    for rel in paths:
        try:
            with open(os.path.join(refsuite_dir, *rel.split("/")), "rb") as handle:
                bundle[rel] = base64.b64encode(handle.read()).decode("ascii")
        except OSError as exc:
            raise BundleError(f"source=bundled: cannot read {rel} of {refsuite_dir}: {exc}")
    return bundle


def wants_bundle(args: t.Mapping[str, t.Any]) -> bool:
    """True when the module must get the collection's refsuite as ``bundle``."""
    return (
        (args.get("source") or "bundled") == "bundled"
        and not args.get("src")
        and args.get("bundle") is None
    )


class ActionModule(SuiteActionModule):
    """SuiteActionModule (profile resolution) that also ships the bundled refsuite."""

    def run(
        self, tmp: t.Any = None, task_vars: t.Optional[dict[str, t.Any]] = None
    ) -> dict[str, t.Any]:
        if not wants_bundle(self._task.args):
            return super().run(tmp, task_vars)
        try:
            bundle = refsuite_bundle()
        except BundleError as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}
        # The base class builds the module arguments from the task's: hand it a task whose
        # args carry the bundle, and put the user's args back afterwards.
        original = self._task.args
        self._task.args = dict(original, bundle=bundle)
        try:
            result = super().run(tmp, task_vars)
        finally:
            self._task.args = original
        # keep the echoed arguments readable: the files' content is not worth showing
        invocation = result.get("invocation")
        if isinstance(invocation, dict) and isinstance(invocation.get("module_args"), dict):
            args = invocation["module_args"]
            if isinstance(args.get("bundle"), dict):
                args["bundle"] = f"({len(bundle)} files of the collection's refsuite/)"
        return result
