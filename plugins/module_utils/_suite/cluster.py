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

from typing import Any, Optional

try:
    import psutil
except ImportError:  # pragma: no cover
    psutil = None  # type: ignore[assignment]

from ansible_collections.daemonops.suite.plugins.module_utils._suite import identity, safe_delete
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    PSUTIL_MISSING,
    SuiteError,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (
    SuiteAction,
    profile_from_params,
    skip_if_check_mode,
    trigger_change,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
    established_on_ports,
    registered_probes,
)


def scan_daemons(daemons: Any, instance: Optional[str] = None) -> tuple[list[str], list[str]]:
    """One pass over the process table (``/proc`` on Linux, psutil elsewhere):
    ``(running, foreign)``. ``running`` names every live process that is an instance of one of
    ``daemons`` (passes all its rules, see ``identity.Identifier``; ``instance`` in its command
    line, if given); ``foreign`` the processes that only carry a daemon's name (another user's
    ``refsuite-qm``, a renamed program): they do not block, they are reported. This process and
    its ancestors are never counted (an ad-hoc command line may contain a daemon's name)."""
    daemons = list(daemons)
    table = ProcessTable.scan()
    ident = identity.Identifier(table, {daemon.name: daemon for daemon in daemons}, instance)
    running: list[str] = []
    foreign: list[str] = []
    seen: set[int] = set()
    for daemon in daemons:
        for proc in ident.members(daemon):
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            text = proc.cmdline_str
            text = text if len(text) <= 80 else text[:77] + "..."
            running.append(f"daemon {daemon.name} runs as PID {proc.pid} ({text})")
    for daemon in daemons:
        for proc, reason in ident.impostors(daemon):
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            foreign.append(f"{proc.true_label} is named like {daemon.name} but is not it: {reason}")
    return running, foreign


def running_daemons(daemons: Any, instance: Optional[str] = None) -> list[str]:
    """``name[pid] (cmdline)`` for every live instance of ``daemons`` (see ``scan_daemons``)."""
    return scan_daemons(daemons, instance)[0]


def connected_clients(ports: set[int], use_procfs: Optional[bool] = None) -> list[str]:
    """One pass over the TCP sockets: every ESTABLISHED connection whose local port is one of
    ``ports`` (the server side, whether or not a listener is still open). Our own probes
    (``sockets.registered_probes``) are not clients. ``use_procfs``: None reads
    ``/proc/net/tcp*`` and falls back to psutil; False forces psutil."""
    if not ports:
        return []
    if use_procfs is None or use_procfs:
        try:
            return sorted(
                {
                    f"client {peer} is connected to port {port}"
                    for port, peer in established_on_ports(ports)
                }
            )
        except OSError:
            if use_procfs:
                raise
    if psutil is None:  # pragma: no cover
        raise SuiteError(PSUTIL_MISSING)
    try:
        entries = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return ["cannot read the socket table to rule out clients (run with become: true)"]
    probes = registered_probes()
    found = []
    for entry in entries:
        if entry.status != psutil.CONN_ESTABLISHED or not entry.laddr or not entry.raddr:
            continue
        if entry.laddr.port in ports and (entry.raddr.port, entry.laddr.port) not in probes:
            peer = f"{entry.raddr.ip}:{entry.raddr.port}"
            found.append(f"client {peer} is connected to port {entry.laddr.port}")
    return sorted(set(found))


class ClusterDataClear(SuiteAction):
    """Clear the suite's cluster data tree (the cluster_data module); not to be confused with
    ``profile.ClusterData``, the ``suite.cluster_data`` setting it reads."""

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
        blockers, foreign = scan_daemons(profile.daemons, instance)
        for line in foreign:
            self.warn(f"not a daemon of the suite, not in the way: {line}")
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
