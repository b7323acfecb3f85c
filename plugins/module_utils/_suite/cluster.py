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

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite import identity, safe_delete
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import SocketTable

if TYPE_CHECKING:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
        Daemon,
        Profile,
    )


def scan_daemons(
    daemons: Iterable[Daemon],
    instance: Optional[str] = None,
    table: Optional[ProcessTable] = None,
) -> tuple[list[str], list[str]]:
    """``(running, foreign)`` from one pass over the process table (``table``, else
    ``ProcessTable.scan()``: ``/proc`` on Linux, psutil elsewhere). ``running`` names every live
    process that is a member of one of ``daemons`` (passes all its rules, see
    ``identity.Identifier``; ``instance`` in its command line, if given); ``foreign`` the
    processes that only carry a daemon's name (another user's ``refsuite-qm``, a renamed
    program): they do not block, they are reported. This process and its ancestors are never
    counted (an ad-hoc command line may contain a daemon's name)."""
    daemons = list(daemons)
    table = table if table is not None else ProcessTable.scan()
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


def connected_clients(
    ports: Iterable[int],
    use_procfs: Optional[bool] = None,
    socks: Optional[SocketTable] = None,
) -> list[str]:
    """Every ESTABLISHED connection whose local port is one of ``ports`` (the server side,
    whether or not a listener is still open), from one pass over the TCP sockets (``socks``,
    else ``SocketTable.scan``; ``use_procfs`` as there). Our own probes are not clients. A
    socket table that cannot be read is a line too: clients cannot be ruled out."""
    ports = set(ports)
    if not ports:
        return []
    if socks is None:
        socks = SocketTable.scan(use_procfs, ports=ports, keep_unlistened=True)
    if not socks.available:
        return [f"cannot read the socket table to rule out clients ({socks.error})"]
    return sorted(
        {
            f"client {conn.peer} is connected to port {port}"
            for port in ports
            for conn in socks.established(port)
        }
    )


class ClusterDataClear:
    """Clear the suite's cluster data tree (the cluster_data module); not to be confused with
    ``profile.ClusterData``, the ``suite.cluster_data`` setting it reads.

    ``path``/``depth`` default to the profile's ``suite.cluster_data``; ``instance``: only
    processes whose command line contains it count. ``run()`` returns the module result,
    ``changed`` and ``diff`` included; a refusal is a ``SuiteError`` naming every condition."""

    def __init__(
        self,
        profile: Profile,
        path: Optional[str] = None,
        depth: Optional[int] = None,
        instance: Optional[str] = None,
        check_mode: bool = False,
    ) -> None:
        self.profile = profile
        self.path = path
        self.depth = depth
        self.instance = instance or None
        self.check_mode = check_mode

    def run(self) -> dict[str, Any]:
        profile = self.profile
        configured = profile.cluster_data
        path = self.path or (configured.path if configured else None)
        depth = self.depth or (configured.depth if configured else None)
        if not path or not depth:
            raise SuiteError(
                f"profile '{profile.name}' has no suite.cluster_data; set the path and depth "
                "options (depth 2 under /var/cluster/sms clears /var/cluster/sms/*/*)"
            )
        root = safe_delete.validate_root(path)
        safe_delete.check_allowed(root, configured.path if configured else None)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise SuiteError(f"depth must be 1 or more, got {depth!r}")
        ports = {port.port for daemon in profile.daemons for port in daemon.ports}
        blockers, foreign = scan_daemons(profile.daemons, self.instance)
        warnings = [f"not a daemon of the suite, not in the way: {line}" for line in foreign]
        blockers += connected_clients(ports)
        if blockers:
            raise SuiteError(
                f"refusing to clear {root}: nothing was deleted because "
                + "; ".join(blockers)
                + ". Stop every daemon of the suite and wait for the clients to disconnect.",
                details={"warnings": warnings} if warnings else None,
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
        if planned and not self.check_mode:  # in check mode the plan is the answer
            done: list[str] = []
            kept: list[str] = []
            removed = safe_delete.clear_tree(root, depth, check_mode=False, skipped=done, kept=kept)
            not_descended = done
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
        result: dict[str, Any] = {
            "changed": bool(planned),
            "root": root,
            "depth": depth,
            "removed": removed,
            "not_descended": not_descended,
            "kept": [],
            "diff": {
                "before": {"path": root, "entries": planned},
                "after": {"path": root, "entries": sorted(set(planned) - set(removed))},
            },
        }
        if warnings:
            result["warnings"] = warnings
        return result


def _summary(entries: list[str], limit: int = 5) -> str:
    shown = "; ".join(entries[:limit])
    return shown + (f" (and {len(entries) - limit} more)" if len(entries) > limit else "")
