# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health check behind ``health_info``: the ``sm_main status`` of any suite profile.

``HealthChecker(profile, roles, ...).run()`` scans the process table once and the socket table
once, then judges every daemon of the host's roles: processes found, ancestry, count,
each port listening *and owned by the daemon*, connected clients with their peers, optional
probes and the daemon's PID record. Both scans are narrowed to what the check asks: the process
table reads every command line but the rest of a process only when it is looked up
(``ProcessTable.scan_named``); the socket table keeps the daemons' ports only, looks for their
owners among the matched daemons' processes first, takes the connections of a port whose every
listener the port's daemon holds as accepted by it (their owners are not looked up), and decodes
peer addresses only for the peers listed (at most ``peers_limit`` per port). The result has the shape documented in docs/internals.md
("The health_info result").
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite import identity
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.probes import (
    DEFAULT_TIMEOUT,
    ProbeResult,
    connect_host,
    run_probe,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
    ProcInfo,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import SocketTable
from ansible_collections.daemonops.suite.plugins.module_utils._suite.states import (
    CONSISTENT,
    DEGRADED,
    FAILURE,
    INVALID,
    LIVE,
    MISSING,
    NOT_APPLICABLE,
    OFFLINE,
    ONLINE,
    STALE,
    SUCCESS,
    UNKNOWN,
    UNUSED,
)

if TYPE_CHECKING:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.pidstore import PidRecord
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
        Daemon,
        Port,
        Profile,
    )

ALL_ONLINE = "All daemons online"

ProbeRunner = Callable[[Any, str, int, float], ProbeResult]

DEFAULT_PEERS_LIMIT = 20


def status_line(name: str, state: str, pid: Optional[int]) -> str:
    """``qm [  2859]: online`` (pid right-aligned in 6, like ``sm_main status``) or
    ``ui : unused`` / ``stpd : offline`` when there is no process to show."""
    if pid is not None and state in (ONLINE, DEGRADED):
        return f"{name} [{pid:>6}]: {state}"
    return f"{name} : {state}"


class HealthChecker:
    """Judge the daemons of ``roles`` in ``profile`` on this host.

    ``instance``: a string each matched process's command line must contain (several suite
    instances on one host, e.g. the config path). ``config_file``: the suite's INI whose
    ``enabled``/``ports`` keys override the profile (default ``suite.config_file``; an explicit
    path must exist). ``probes``/``pid_records``: run the profile's probes / read its PID store.
    ``peers_limit``: how many peers each port lists (``clients`` counts them all); -1 lists all.

    ``proc_table``, ``socket_table``, ``probe_runner``, ``now`` and ``records`` replace the live
    scans for tests; ``records`` is a list of ``pidstore.PidRecord``.
    """

    def __init__(
        self,
        profile: Profile,
        roles: Sequence[str],
        instance: Optional[str] = None,
        config_file: Optional[str] = None,
        probes: bool = True,
        pid_records: bool = True,
        hostname: Optional[str] = None,
        *,
        peers_limit: int = DEFAULT_PEERS_LIMIT,
        probe_timeout: float = DEFAULT_TIMEOUT,
        proc_table: Optional[ProcessTable] = None,
        socket_table: Optional[SocketTable] = None,
        probe_runner: Optional[ProbeRunner] = None,
        records: Optional[list[PidRecord]] = None,
        now: Optional[float] = None,
    ) -> None:
        self.profile = profile
        self.roles = list(roles or [])
        self.instance = instance or None
        self.config_file = config_file or None
        self.probes = probes
        self.pid_records = pid_records
        if not isinstance(peers_limit, int) or isinstance(peers_limit, bool) or peers_limit < -1:
            raise SuiteError(
                f"peers_limit: {peers_limit!r} is not a number of peers to list; give a number "
                "from 0 (list none, count only) up, or -1 to list every peer"
            )
        self.peers_limit = peers_limit
        self.hostname = hostname or socket.gethostname()
        self.probe_timeout = probe_timeout
        self.proc_table = proc_table
        self.socket_table = socket_table
        self.probe_runner: ProbeRunner = probe_runner or run_probe
        self.records = records
        self.now = now
        self._matches: dict[str, list[ProcInfo]] = {}
        self._heads: dict[str, list[ProcInfo]] = {}
        self._ident: Optional[identity.Identifier] = None

    # ------------------------------------------------------------------ inputs

    def effective_profile(self) -> Profile:
        """The profile with the suite's configuration file applied (``enabled``, ``ports``).

        The INI reader is imported only when there is an INI to read."""
        path = self.config_file
        if path:
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise SuiteError(
                    f"config_file: {path} is not a readable file; give the suite's INI "
                    "configuration file or leave config_file unset"
                )
        else:
            path = self.profile.config_file
            if not path or not os.path.isfile(path) or not os.access(path, os.R_OK):
                return self.profile
        from ansible_collections.daemonops.suite.plugins.module_utils._suite import suite_ini

        return suite_ini.apply_config(self.profile, path)

    # ------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        profile = self.effective_profile()
        if not self.roles:
            raise SuiteError(
                "roles: no role given for this host; set roles to some of "
                f"{', '.join(profile.roles)} or put the host in an inventory group named like "
                "a role"
            )
        daemons = profile.daemons_for_roles(self.roles)
        procs = self.proc_table if self.proc_table is not None else ProcessTable.scan_named()
        now = self.now if self.now is not None else time.time()
        self._matches, self._heads = {}, {}
        all_daemons = {d.name: d for d in profile.daemons}
        self._ident = identity.Identifier(procs, all_daemons, self.instance)
        socks = self.socket_table
        if socks is None:
            # a connection on a port every listener of which the port's daemon holds was
            # accepted by that daemon: counted as its client without looking up its owner
            accepting: dict[int, set[int]] = {}
            owner_pids: set[int] = set()
            for daemon in daemons:
                pids = {p.pid for p in self.matched(daemon, procs)}
                owner_pids |= pids
                for port in daemon.ports:
                    accepting.setdefault(port.port, set()).update(pids)
            socks = SocketTable.scan(
                ports=set(accepting), owner_pids=owner_pids, accepting_pids=accepting
            )
        records = self._pid_records(profile, daemons, all_daemons, procs)

        reports: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        lines: list[str] = []
        for daemon in daemons:
            report = self._daemon_report(daemon, all_daemons, procs, socks, records, now)
            reports[daemon.name] = report
            problems.extend(report["problems"])
            first_pid = report["pids"][0] if report["pids"] else None
            lines.append(status_line(daemon.name, report["state"], first_pid))

        summary = {"total": len(reports)}
        for state in (ONLINE, OFFLINE, DEGRADED, UNUSED):
            summary[state] = sum(1 for r in reports.values() if r["state"] == state)
        summary["clients"] = sum(
            port["clients"] or 0 for r in reports.values() for port in r["ports"]
        )
        failed = any(r["state"] in (OFFLINE, DEGRADED) for r in reports.values())
        result: dict[str, Any] = {
            "changed": False,
            "status": FAILURE if failed else SUCCESS,
            "msg": "; ".join(problems) if failed else ALL_ONLINE,
            "status_lines": lines,
            "roles": list(self.roles),
            "profile": profile.name,
            "host": self.hostname,
            "summary": summary,
            "daemons": reports,
        }
        if self.instance:
            result["instance"] = self.instance
        if not socks.available:
            result["warnings"] = [f"ports not checked: {socks.error}"]
        return result

    # ------------------------------------------------------------------ matching

    def identifier(self, procs: ProcessTable) -> identity.Identifier:
        if self._ident is None or self._ident.table is not procs:
            self._ident = identity.Identifier(procs, {}, self.instance)
        return self._ident

    def matched(self, daemon: Daemon, procs: ProcessTable) -> list[ProcInfo]:
        """Every process of ``daemon`` (passing all of its rules: name, exe, user, ancestor),
        including forked workers that carry the same command line (``refsuite-stpd``
        workers)."""
        if daemon.name not in self._matches:
            self._matches[daemon.name] = self.identifier(procs).members(daemon)
        return self._matches[daemon.name]

    def heads(self, daemon: Daemon, procs: ProcessTable) -> list[ProcInfo]:
        """The heads of ``daemon``: matched processes none of whose ancestors is itself a matched
        process of the same daemon (a forked worker belongs to its parent; what ``count``
        counts)."""
        if daemon.name not in self._heads:
            matched = self.matched(daemon, procs)
            pids = {proc.pid for proc in matched}
            self._heads[daemon.name] = [
                proc
                for proc in matched
                if not any(ancestor in pids for ancestor in procs.ancestors(proc.pid))
            ]
        return self._heads[daemon.name]

    # ------------------------------------------------------------------ one daemon

    def _daemon_report(
        self,
        daemon: Daemon,
        all_daemons: dict[str, Daemon],
        procs: ProcessTable,
        socks: SocketTable,
        records: dict[str, dict[str, Any]],
        now: float,
    ) -> dict[str, Any]:
        name = daemon.name
        heads = self.heads(daemon, procs)
        tree_pids = [proc.pid for proc in self.matched(daemon, procs)]
        pids = [proc.pid for proc in heads]
        enabled = daemon.enabled
        count_min = daemon.count_min
        count_max = daemon.count_max
        problems: list[str] = []

        start_times = [proc.create_time for proc in heads if proc.create_time is not None]
        start_time = min(start_times) if start_times else None
        uptime = round(max(0.0, now - start_time), 1) if start_time is not None else None

        ident = self.identifier(procs)
        impostor_procs = ident.impostors(daemon)
        impostor_pids = {proc.pid for proc, _reason in impostor_procs}
        impostors = [
            identity.impostor_entry(proc, reason)
            for proc, reason in impostor_procs
            # a forked child of an impostor is part of it
            if not any(pid in impostor_pids for pid in procs.ancestors(proc.pid))
        ]
        notes = ident.notes(daemon)
        ports = [
            self._port_report(daemon, port, tree_pids, procs, socks, problems, enabled)
            for port in daemon.ports
        ]
        ancestry = self._ancestry(
            daemon, all_daemons, heads, procs, problems, enabled, impostor_procs
        )
        pid_record = records.get(name) or _record_result(NOT_APPLICABLE, None, "not read")

        if not enabled:
            state = UNUSED
            problems = []
        elif not heads and count_min == 0:
            state = DEGRADED if problems else ONLINE  # optional daemon, none running
        elif not heads:
            state = OFFLINE
            offline = f"{name} offline"
            if impostors:
                labels = "; ".join(
                    f"{_impostor_label(entry)}: {entry['reason']}" for entry in impostors
                )
                offline += f" (named like it but not {name}: {labels})"
            problems.insert(0, offline)
        else:
            count = len(heads)
            if count_min is not None and count < count_min:
                problems.insert(
                    0, f"{name}: {count} instance(s) running, expected at least {count_min}"
                )
            if count_max is not None and count > count_max:
                labels = ", ".join(proc.label for proc in heads)
                problems.insert(
                    0, f"{name}: {count} instances running ({labels}), expected at most {count_max}"
                )
            state = DEGRADED if problems else ONLINE
        if enabled and pid_record["status"] in (STALE, INVALID):
            problems.append(f"{name} pid record {pid_record['status']}: {pid_record['reason']}")
            if state == ONLINE:
                state = DEGRADED

        return {
            "state": state,
            "essential": daemon.essential,
            "enabled": enabled,
            "problems": problems,
            "pids": pids,
            "count": len(heads),
            "expected_count": {"min": count_min, "max": count_max},
            "ancestry": ancestry,
            "start_time": start_time,
            "uptime": uptime,
            "ports": ports,
            "pid_record": pid_record,
            "impostors": impostors,
            "notes": notes,
        }

    def _port_report(
        self,
        daemon: Daemon,
        port_spec: Port,
        tree_pids: list[int],
        procs: ProcessTable,
        socks: SocketTable,
        problems: list[str],
        enabled: bool,
    ) -> dict[str, Any]:
        name = daemon.name
        port = port_spec.port
        probe_spec = port_spec.probe
        report: dict[str, Any] = {
            "port": port,
            "listening": None,
            "owned": None,
            "holder": None,
            "addresses": [],
            "clients": None,
            "peers": [],
            "peers_truncated": False,
            "probe": None,
            "holders": [],
        }
        if not socks.available:
            problems.append(f"{name} port {port} not checked: {socks.error}")
            return report
        listeners = socks.listeners(port)
        owners = [
            lst
            for lst in listeners
            if lst.pid is not None and tree_pids and procs.is_descendant_or_self(lst.pid, tree_pids)
        ]
        others = [lst for lst in listeners if lst not in owners]
        owner_pids = {lst.pid for lst in owners}
        report["listening"] = bool(listeners)
        report["owned"] = bool(owners)
        report["addresses"] = sorted({lst.address for lst in (owners or listeners)})
        if others:
            report["holder"] = ", ".join(_holder_labels(others, procs))
            report["holders"] = _holders(others, procs)
        ours: dict[Optional[int], bool] = {None: bool(owners)}  # pid -> holds the daemon's side
        for pid in owner_pids:
            ours[pid] = True
        connections = []
        for conn in socks.established(port):
            mine = ours.get(conn.pid)
            if mine is None:
                mine = ours[conn.pid] = bool(tree_pids) and procs.is_descendant_or_self(
                    conn.pid, tree_pids
                )
            if mine:
                connections.append(conn)
        report["clients"], report["peers"], report["peers_truncated"] = limit_peers(
            connections, self.peers_limit
        )
        if not enabled:
            return report
        if others:
            verb = "also held by" if owners else "held by"
            problems.append(f"{name} port {port} {verb} {report['holder']}")
        elif not listeners and tree_pids:
            problems.append(f"{name} port {port} not listening")
        if owners and self.probes and probe_spec:
            host = connect_host(owners[0].address)
            timeout = probe_spec.get("timeout") or self.probe_timeout
            result = self.probe_runner(probe_spec, host, port, float(timeout))
            report["probe"] = result.as_dict()
            if not result.ok:
                problems.append(f"{name} port {port} probe failed: {result.detail}")
        return report

    def _ancestry(
        self,
        daemon: Daemon,
        all_daemons: dict[str, Daemon],
        heads: list[ProcInfo],
        procs: ProcessTable,
        problems: list[str],
        enabled: bool,
        impostors: Sequence[tuple[ProcInfo, str]] = (),
    ) -> Optional[dict[str, Any]]:
        """The ancestry of the heads (all pass it: a member is a descendant of
        ``ancestor`` by definition). When there is none, the chain of the first process named
        like the daemon outside that ancestry, with ``ok: false``."""
        expected = daemon.ancestor
        if not expected:
            return None
        result: dict[str, Any] = {"expected": expected, "ok": None, "chain": []}
        if not heads:
            outside = [proc for proc, reason in impostors if reason.startswith("not a descendant")]
            if outside:
                result["ok"] = False
                result["chain"] = [outside[0].pid, *procs.ancestors(outside[0].pid)]
            return result
        ancestor = all_daemons.get(expected)
        ancestor_pids = (
            {proc.pid for proc in self.matched(ancestor, procs)} if ancestor is not None else set()
        )
        shown: Optional[list[int]] = None
        bad: list[ProcInfo] = []
        for proc in heads:
            full = [proc.pid, *procs.ancestors(proc.pid)]
            cut = next((i for i, pid in enumerate(full[1:], 1) if pid in ancestor_pids), None)
            if cut is None:
                bad.append(proc)
                if shown is None or not shown or shown[-1] in ancestor_pids:
                    shown = full
            elif shown is None:
                shown = full[: cut + 1]
        result["ok"] = not bad
        result["chain"] = shown or []
        if bad and enabled:
            where = "" if ancestor_pids else f" ({expected} not running)"
            labels = ", ".join(proc.label for proc in bad)
            problems.append(f"{daemon.name} {labels} not a descendant of {expected}{where}")
        return result

    # ------------------------------------------------------------------ pid records

    def _pid_records(
        self,
        profile: Profile,
        daemons: list[Daemon],
        all_daemons: dict[str, Daemon],
        procs: ProcessTable,
    ) -> dict[str, dict[str, Any]]:
        store = profile.pid_store
        if not self.pid_records:
            return {
                d.name: _record_result(NOT_APPLICABLE, None, "pid_records is false")
                for d in daemons
            }
        if not store:
            reason = "the profile has no pid_store"
            return {d.name: _record_result(NOT_APPLICABLE, None, reason) for d in daemons}
        try:
            from ansible_collections.daemonops.suite.plugins.module_utils._suite import (
                identity,
                pidstore,
            )
        except ImportError as exc:  # pragma: no cover - both ship with the collection
            reason = f"PID record support not available: {exc}"
            return {d.name: _record_result(UNKNOWN, None, reason) for d in daemons}
        if self.records is not None:
            records = list(self.records)
        else:
            try:
                records = pidstore.read_records(store.to_dict())
            except Exception as exc:  # any store failure is reported, not raised
                reason = f"cannot read the PID store: {exc}"
                return {d.name: _record_result(UNKNOWN, None, reason) for d in daemons}

        by_daemon: dict[str, list[Any]] = {}
        for record in records:
            owner = identity.daemon_for(record.name, all_daemons)
            if owner is not None:
                by_daemon.setdefault(owner.name, []).append(record)

        results: dict[str, dict[str, Any]] = {}
        for daemon in daemons:
            own = by_daemon.get(daemon.name, [])
            if not own:
                results[daemon.name] = _record_result(MISSING, None, "no record in the PID store")
                continue
            tree_pids = {proc.pid for proc in self.matched(daemon, procs)}
            judged = []
            for record in own:
                verdict = identity.judge(record, daemon, procs, instance=self.instance)
                status = {
                    LIVE: CONSISTENT,
                    STALE: STALE,
                    INVALID: INVALID,
                }.get(verdict.status, UNKNOWN)
                reason = verdict.reason
                if status == CONSISTENT and record.pid not in tree_pids:
                    status = INVALID
                    reason = (
                        f"PID {record.pid} is alive but is not a process of {daemon.name} found "
                        "here" + (f" (instance {self.instance!r})" if self.instance else "")
                    )
                judged.append(_record_result(status, record.pid, reason))
            results[daemon.name] = min(judged, key=lambda r: _RECORD_RANK[r["status"]])
        return results


def limit_peers(connections: Iterable[Any], limit: int) -> tuple[int, list[str], bool]:
    """``(clients, peers, truncated)`` of a port's connections: ``clients`` the number of
    distinct peers, ``peers`` at most ``limit`` of them (-1: all), the first ones met, sorted;
    ``truncated`` True when some were left out. Only the listed peers are decoded
    (``Connection.peer_key`` tells the others apart)."""
    first: dict[Any, Any] = {}
    for conn in connections:
        first.setdefault(conn.peer_key, conn)
    total = len(first)
    shown = list(first.values())
    truncated = 0 <= limit < total
    if truncated:
        shown = shown[:limit]
    return total, sorted({conn.peer for conn in shown}), truncated


_RECORD_RANK = {STALE: 0, INVALID: 1, UNKNOWN: 2, MISSING: 3, CONSISTENT: 4, NOT_APPLICABLE: 5}


def _record_result(status: str, pid: Optional[int], reason: Optional[str]) -> dict[str, Any]:
    return {"status": status, "pid": pid, "reason": reason}


def _impostor_label(entry: dict[str, Any]) -> str:
    what = entry.get("exe") or entry.get("comm") or "?"
    label = f"{what}[{entry['pid']}]"
    if entry.get("argv0"):
        label += f" (argv[0] {entry['argv0']})"
    return label


def _holders(listeners: list[Any], procs: ProcessTable) -> list[dict[str, Any]]:
    """What holds a port, named by what it is (``ProcInfo.identity``), once per process."""
    holders: list[dict[str, Any]] = []
    seen: set[Optional[int]] = set()
    for lst in listeners:
        if lst.pid in seen:
            continue
        seen.add(lst.pid)
        proc = procs.get(lst.pid)
        if proc is not None:
            holders.append(dict(proc.identity))
        else:
            holders.append(
                {"pid": lst.pid, "exe": None, "exe_deleted": False, "comm": None, "argv0": None}
            )
    return holders


def _holder_labels(listeners: list[Any], procs: ProcessTable) -> list[str]:
    labels = []
    for lst in listeners:
        proc = procs.get(lst.pid)
        if proc is not None:
            label = proc.true_label
        elif lst.pid is not None:
            label = f"pid {lst.pid}"
        else:
            label = "a process this user cannot see (run with become)"
        if label not in labels:
            labels.append(label)
    return labels
