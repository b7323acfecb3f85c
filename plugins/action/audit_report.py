# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for daemonops.suite.audit_report: controller only, never touches a target."""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Mapping
from typing import Any, Callable

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.daemonops.suite.plugins.module_utils._suite.fileio import atomic_write
from ansible_collections.daemonops.suite.plugins.plugin_utils.audit_report import (
    ARGUMENT_RULES,
    ARGUMENT_SPEC,
    FILE_SUFFIXES,
    AuditReportError,
    build_report,
    collect_registered,
    compare_reports,
    render,
    summary_line,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils.controller_action import (
    ControllerActionModule,
)

MAX_PROBLEMS_RETURNED = 50


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write a report file atomically; undecodable characters become U+FFFD, never an error."""
    atomic_write(path, text.encode("utf-8", errors="replace"), mode=mode)


def _type_name(value: Any) -> str:
    for kind, name in ((Mapping, "dict"), (str, "str"), (list, "list"), (bool, "bool")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def registered_lookup(hostvars: Mapping[str, Any], name: str) -> Callable[[str], Any]:
    """A function ``host -> variables`` that holds at least ``name`` when the host has it.

    ``hostvars[host][name]`` would template the whole registered result (about 10 KB per host),
    which costs several times more than the report itself; registered results are never
    templates. ``HostVars.raw_get(host)`` returns the host's variables untemplated, but still
    merges every variable source of the host (about 0.2 ms per host). A registered variable is
    stored in the variable manager's non-persistent fact cache (as set_fact without cacheable),
    above every other source except extra vars, so it is read from there first. When that
    private attribute is missing (another ansible-core) or the host has no such variable there,
    ``raw_get`` (or plain mapping access) answers, so the result is the same, only slower.
    A name that is not an inventory host gets None.
    """
    get: Callable[[str], Any] = getattr(hostvars, "raw_get", None) or hostvars.get
    manager = getattr(hostvars, "_variable_manager", None)
    cache = getattr(manager, "_nonpersistent_fact_cache", None)
    if not isinstance(cache, Mapping):
        cache = {}

    def lookup(host: str) -> Any:
        facts = cache.get(host)
        if isinstance(facts, Mapping) and name in facts:
            return facts
        # None for a name outside the inventory (raw_get would return an undefined marker)
        return get(host) if host in hostvars else None

    return lookup


HISTORY_DIR = "history"


def history_name(basename: str, epoch: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(epoch))
    return f"{basename}-{stamp}{int(epoch * 1000) % 1000:03d}Z.json"


def read_previous(dest: str, basename: str) -> dict[str, Any] | None:
    """The last audit: the newest history file, else the latest JSON report; None if neither
    exists or can be read as a report."""
    candidates = sorted(glob.glob(os.path.join(dest, HISTORY_DIR, f"{basename}-*Z.json")))
    candidates.reverse()
    candidates.append(os.path.join(dest, basename + FILE_SUFFIXES["json"]))
    for path in candidates:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("hosts"), dict):
            return data
    return None


def keep_history(
    dest: str, basename: str, report: Mapping[str, Any], text: str | None, keep: int
) -> str | None:
    """Store this audit as ``history/<basename>-<UTC time>.json`` and delete all but the newest
    ``keep``; returns the file written (None with ``keep`` 0)."""
    folder = os.path.join(dest, HISTORY_DIR)
    written = None
    if keep > 0:
        if text is None:
            text = render(report, "json")
        os.makedirs(folder, exist_ok=True)
        written = os.path.join(folder, history_name(basename, report["generated_at_epoch"]))
        write_atomically(written, text)
    old = sorted(glob.glob(os.path.join(folder, f"{basename}-*Z.json")))
    for path in old[: max(len(old) - keep, 0)]:
        os.unlink(path)
    return written


class ActionModule(ControllerActionModule):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}

        args = dict(self._task.args)
        results = args.get("results")
        if isinstance(results, Mapping):
            # validate the type only: the validator deep-copies its input, and the results of
            # a large fleet are megabytes
            args["results"] = {}
        elif "results" in args:
            raise AnsibleActionFail(
                f"results: expected a dict of inventory host name to health_info result, got "
                f"{_type_name(results)}; or give register_name (the variable health_info was "
                "registered in) instead, and the action reads it from each host"
            )
        validation = ArgumentSpecValidator(ARGUMENT_SPEC, **ARGUMENT_RULES).validate(args)
        if validation.error_messages:
            raise AnsibleActionFail(f"{self._task.action}: {'; '.join(validation.error_messages)}")
        params = validation.validated_parameters
        if params["register_name"] is not None:
            results = self._registered_results(params["register_name"], params["hosts"], task_vars)
        dest: str = params["dest"]
        formats: list[str] = list(dict.fromkeys(params["formats"]))
        basename: str = params["basename"]
        if not basename or "/" in basename or basename in (".", ".."):
            raise AnsibleActionFail(
                f"basename: {basename!r} is not a plain file name; give a name without '/', "
                "such as 'health_audit'"
            )

        keep: int = params["history"]
        if keep < 0:
            raise AnsibleActionFail(
                f"history: {keep} is negative; give the number of past audits to keep (0 = none)"
            )
        if not results:
            raise AnsibleActionFail(
                "no hosts to report on: the play has no host (check the host pattern and the "
                "inventory); an empty audit is not a healthy one"
            )
        dest = os.path.abspath(dest)
        try:
            report = build_report(
                results,  # type: ignore[arg-type]
                time.time(),
                profile=params["profile"],
                started=params["started"],
                maintenance=params["maintenance"],
            )
            previous = read_previous(dest, basename)
            if previous is not None:
                report["since_last"] = compare_reports(previous, report)
            rendered = {fmt: render(report, fmt) for fmt in formats}
        except AuditReportError as exc:
            raise AnsibleActionFail(str(exc)) from None

        files = {fmt: os.path.join(dest, basename + FILE_SUFFIXES[fmt]) for fmt in formats}
        history_file = None
        if not self._task.check_mode:
            try:
                os.makedirs(dest, exist_ok=True)
                for fmt, path in files.items():
                    write_atomically(path, rendered[fmt])
                history_file = keep_history(dest, basename, report, rendered.get("json"), keep)
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
            reasons=report["reasons"],
            history_file=history_file,
            since_last=report["since_last"],
            problems=report["problems"][:MAX_PROBLEMS_RETURNED],
            generated_at=report["generated_at"],
            msg=summary_line(report),
        )
        return result

    @staticmethod
    def _registered_results(
        register_name: str, hosts: list[str] | None, task_vars: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Each host's ``register_name`` variable, read from ``hostvars`` without templating."""
        if not register_name:
            raise AnsibleActionFail(
                "register_name: empty; give the name the health_info task registered its "
                "result in, such as 'health'"
            )
        if hosts is None:
            hosts = task_vars.get("ansible_play_hosts_all")
            if not isinstance(hosts, list):
                raise AnsibleActionFail(
                    "hosts: not given and ansible_play_hosts_all is not set; give the list of "
                    "inventory host names to report on"
                )
        hostvars = task_vars.get("hostvars")
        if not isinstance(hostvars, Mapping):
            raise AnsibleActionFail(
                "register_name: hostvars is not available to read the registered results "
                "from; give results instead"
            )
        lookup = registered_lookup(hostvars, register_name)
        try:
            return collect_registered(hosts, register_name, lookup)
        except AuditReportError as exc:
            raise AnsibleActionFail(str(exc)) from None
