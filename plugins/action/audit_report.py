# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for daemonops.suite.audit_report: controller only, never touches a target."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.daemonops.suite.plugins.plugin_utils.audit_report import (
    ARGUMENT_SPEC,
    FILE_SUFFIXES,
    AuditReportError,
    build_report,
    render,
    summary_line,
)

MAX_PROBLEMS_RETURNED = 50


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename.

    The temporary name starts with a dot and ends in ``.tmp`` so that collectors watching the
    directory for ``*.prom`` never read it.
    """
    directory, name = os.path.split(path)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8", errors="replace"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise


def _type_name(value: Any) -> str:
    for kind, name in ((Mapping, "dict"), (str, "str"), (list, "list"), (bool, "bool")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp

        args = dict(self._task.args)
        results = args.get("results")
        if isinstance(results, Mapping):
            # validate the type only: the validator deep-copies its input, and the results of
            # a large fleet are megabytes
            args["results"] = {}
        elif "results" in args:
            raise AnsibleActionFail(
                f"results: expected a dict of inventory host name to health_info result, got "
                f"{_type_name(results)}; build it with e.g. dict(ansible_play_hosts_all | zip("
                "ansible_play_hosts_all | map('extract', hostvars, 'registered_var')))"
            )
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(args)
        if validation.error_messages:
            raise AnsibleActionFail(f"{self._task.action}: {'; '.join(validation.error_messages)}")
        params = validation.validated_parameters
        dest: str = params["dest"]
        formats: list[str] = list(dict.fromkeys(params["formats"]))
        basename: str = params["basename"]
        if not basename or "/" in basename or basename in (".", ".."):
            raise AnsibleActionFail(
                f"basename: {basename!r} is not a plain file name; give a name without '/', "
                "such as 'health_audit'"
            )

        try:
            report = build_report(results, time.time())  # type: ignore[arg-type]
            rendered = {fmt: render(report, fmt) for fmt in formats}
        except AuditReportError as exc:
            raise AnsibleActionFail(str(exc)) from None

        files = {fmt: os.path.join(dest, basename + FILE_SUFFIXES[fmt]) for fmt in formats}
        if not self._task.check_mode:
            try:
                os.makedirs(dest, exist_ok=True)
                for fmt, path in files.items():
                    write_atomically(path, rendered[fmt])
            except OSError as exc:
                raise AnsibleActionFail(
                    f"dest: cannot write the report to {dest!r}: {exc.strerror or exc}; "
                    "choose a writable directory on the controller"
                ) from None

        result.update(
            changed=bool(files),
            files=files,
            summary=report["summary"],
            healthy=report["healthy"],
            unhealthy_hosts=report["unhealthy_hosts"],
            unreachable_hosts=report["unreachable_hosts"],
            problems=report["problems"][:MAX_PROBLEMS_RETURNED],
            generated_at=report["generated_at"],
            msg=summary_line(report),
        )
        return result
