# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_data module logic: clear a suite's cluster data tree only when it is safe.

Order, all before anything is deleted: the root is validated (``safe_delete.validate_root``),
then one pass over the processes (no daemon of the suite may run on this host) and one pass over
the TCP sockets (no ESTABLISHED connection whose local port is one of the suite's ports; this is
checked even without a listener, as an accepted connection outlives its listener).  Every failed
condition is named in the refusal.  Then ``safe_delete.clear_tree`` removes the entries at the
configured depth (fd-relative, no symlink following, one filesystem).
"""

from __future__ import annotations

import os
from typing import Any, Optional

try:
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]

from ansible_collections.daemonops.suite.plugins.module_utils._suite import safe_delete
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (
    SuiteAction,
    profile_from_params,
    skip_if_check_mode,
    trigger_change,
)


def _own_lineage() -> set[int]:
    """This process and its ancestors: never a daemon instance (an ad-hoc command line may
    contain a daemon's name)."""
    pids = {os.getpid()}
    try:
        proc: Any = psutil.Process()
        for parent in proc.parents():
            pids.add(parent.pid)
    except psutil.Error:
        pass
    return pids


def running_daemons(daemons: Any, instance: Optional[str] = None) -> list[str]:
    """One pass over the process table: ``name[pid] (cmdline)`` for every live process that
    matches one of ``daemons`` (and contains ``instance`` in its command line, if given)."""
    if psutil is None:  # pragma: no cover
        raise SuiteError("the psutil Python library is required on the target")
    excluded = _own_lineage()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "exe", "status"], ad_value=None):
        info = proc.info
        cmdline = info.get("cmdline")
        if info["pid"] in excluded or not cmdline or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        for daemon in daemons:
            if daemon.matches(cmdline, info.get("exe"), instance):
                text = " ".join(cmdline)
                text = text if len(text) <= 80 else text[:77] + "..."
                found.append(f"daemon {daemon.name} runs as PID {info['pid']} ({text})")
                break
    return found


def connected_clients(ports: set[int]) -> list[str]:
    """One pass over the TCP sockets: every ESTABLISHED connection whose local port is one of
    ``ports`` (the server side, whether or not a listener is still open)."""
    if not ports:
        return []
    if psutil is None:  # pragma: no cover
        raise SuiteError("the psutil Python library is required on the target")
    try:
        entries = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return ["cannot read the socket table to rule out clients (run with become: true)"]
    found = []
    for entry in entries:
        if entry.status != psutil.CONN_ESTABLISHED or not entry.laddr or not entry.raddr:
            continue
        if entry.laddr.port in ports:
            peer = f"{entry.raddr.ip}:{entry.raddr.port}"
            found.append(f"client {peer} is connected to port {entry.laddr.port}")
    return sorted(set(found))


class ClusterData(SuiteAction):
    def run(self) -> dict[str, Any]:
        params = self.params
        profile = profile_from_params(params)
        configured = profile.cluster_data
        path = params.get("path") or (configured.path if configured else None)
        depth = params.get("depth") or (configured.depth if configured else None)
        if not path or not depth:
            raise SuiteError(
                f"profile '{profile.name}' has no suite.cluster_data; set the path and depth "
                "options (depth 2 under /var/cluster/sms clears /var/cluster/sms/*/*)"
            )
        root = safe_delete.validate_root(path)
        safe_delete.check_allowed(root, configured.path if configured else None)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise SuiteError(f"depth must be 1 or more, got {depth!r}")
        instance = params.get("instance")
        ports = {port.port for daemon in profile.daemons for port in daemon.ports}
        blockers = running_daemons(profile.daemons, instance)
        blockers += connected_clients(ports)
        if blockers:
            raise SuiteError(
                f"refusing to clear {root}: nothing was deleted because "
                + "; ".join(blockers)
                + ". Stop every daemon of the suite and wait for the clients to disconnect."
            )
        # the whole plan first (a walk that deletes nothing): every name made reportable
        # before the first deletion
        not_descended: list[str] = []
        unreadable: list[str] = []
        planned = safe_delete.clear_tree(
            root, depth, check_mode=True, skipped=not_descended, kept=unreadable
        )
        if unreadable:
            raise SuiteError(
                f"refusing to clear {root}: nothing was deleted because part of the tree cannot "
                f"be read: {_summary(unreadable)}. Fix the permissions (or run with become: true)",
                details={"removed": [], "kept": unreadable, "not_descended": not_descended},
            )
        removed = planned
        if planned:
            done: list[str] = []
            kept: list[str] = []
            result = self.clear(root, depth, done, kept)
            if result is not None:  # None in check mode: the plan is the answer
                removed, not_descended = result, done
            if kept:
                raise SuiteError(
                    f"cleared {root} only in part: removed {len(removed)} of {len(planned)} "
                    f"entries; could not remove {len(kept)}: {_summary(kept)}. Remove the cause "
                    "(an immutable attribute: chattr -i; permissions) and run again",
                    details={
                        "changed": bool(removed),
                        "removed": removed,
                        "kept": kept,
                        "not_descended": not_descended,
                    },
                )
        self.diff = {
            "before": {"path": root, "entries": planned},
            "after": {"path": root, "entries": sorted(set(planned) - set(removed))},
        }
        return {
            "root": root,
            "depth": depth,
            "removed": removed,
            "not_descended": not_descended,
            "kept": [],
        }

    @trigger_change
    @skip_if_check_mode
    def clear(self, root: str, depth: int, not_descended: list[str], kept: list[str]) -> list[str]:
        return safe_delete.clear_tree(
            root, depth, check_mode=False, skipped=not_descended, kept=kept
        )


def _summary(entries: list[str], limit: int = 5) -> str:
    shown = "; ".join(entries[:limit])
    return shown + (f" (and {len(entries) - limit} more)" if len(entries) > limit else "")
