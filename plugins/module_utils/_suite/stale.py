# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stale_pids module logic: read the PID records, judge each, remove the stale ones.

Never sends a signal and never uses an invalid record as a PID: the only action this class takes
is ``pidstore.remove_record`` on a record judged ``stale`` (or ``invalid`` with
``remove_invalid``).  ``unknown`` records (refused pidfiles, other hosts, permission denied) are
always left alone, and so is - whatever the verdict and ``remove_invalid`` say - a record whose
PID is a live process passing every rule of its daemon (``identity.Identifier``).

The processes are read in one pass (``ProcessTable.scan``: ``/proc`` directly on Linux, psutil
elsewhere), so the module needs no psutil on a Linux target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite import identity, pidstore
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import ProcessTable
from ansible_collections.daemonops.suite.plugins.module_utils._suite.states import (
    INVALID,
    STALE,
    VERDICTS,
)

if TYPE_CHECKING:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import Profile

STORE_KEYS = ("type", "path", "table", "dsn", "columns", "pattern", "files")


def resolve_store(profile_store: Optional[dict], override: Optional[dict]) -> dict:
    """The store to read: the profile's ``pid_store`` with the non-empty keys of ``override``
    on top (an override of another ``type`` replaces it entirely)."""
    override = {k: v for k, v in (override or {}).items() if v is not None and k in STORE_KEYS}
    base = dict(profile_store or {})
    if override.get("type") and base.get("type") and override["type"] != base["type"]:
        base = {}
    base.update(override)
    if not base:
        raise SuiteError(
            "no PID store: the profile has no suite.pid_store; set the store option "
            "(type and path, or dsn and table)"
        )
    return pidstore.normalise_store(base)


def _lines(items: list[str]) -> str:
    return "".join(f"{item}\n" for item in items)


class StalePids:
    """``state: present`` reports; ``state: absent`` removes stale (and, with remove_invalid,
    invalid) records.

    ``profile``: the suite's profile, or None when only ``store`` is given (then every record
    is judged without a daemon's rules). ``store``: the stale_pids ``store`` option, laid over
    the profile's ``pid_store``. ``daemons``: only the records of these daemons.
    ``run()`` returns the module result, ``changed`` and ``diff`` included."""

    def __init__(
        self,
        profile: Optional[Profile],
        state: str = "present",
        store: Optional[dict] = None,
        daemons: Optional[list[str]] = None,
        remove_invalid: bool = False,
        instance: Optional[str] = None,
        check_mode: bool = False,
    ) -> None:
        self.profile = profile
        self.state = state
        self.store = store
        self.daemons = daemons
        self.remove_invalid = remove_invalid
        self.instance = instance or None
        self.check_mode = check_mode

    def run(self) -> dict[str, Any]:
        profile = self.profile
        profile_store = profile.pid_store.to_dict() if profile and profile.pid_store else None
        store = resolve_store(profile_store, self.store)
        daemons = {daemon.name: daemon for daemon in profile.daemons} if profile else {}
        limit = self._limit(self.daemons, daemons)
        host = identity.HostFacts.local()
        absent = self.state == "absent"
        instance = self.instance
        table = ProcessTable.scan()
        ident = identity.Identifier(table, daemons, instance)

        entries: list[dict[str, Any]] = []
        warnings: list[str] = []
        before: list[str] = []
        after: list[str] = []
        for record in pidstore.read_records(store):
            daemon = identity.daemon_for(record.name, daemons)
            if limit is not None and (daemon is None or daemon.name not in limit):
                continue
            verdict = identity.judge(record, daemon, table, instance=instance, host=host)
            removable = verdict.status == STALE or (
                verdict.status == INVALID and self.remove_invalid
            )
            reason = verdict.reason
            if removable and daemon is not None and ident.is_member(daemon, record.pid):
                removable = False
                reason = (
                    f"{reason}; kept: PID {record.pid} is a live process passing every rule of "
                    f"daemon {daemon.name!r}"
                )
            removed = False
            would_remove = absent and removable
            if would_remove and not self.check_mode:
                try:
                    pidstore.remove_record(store, record)
                    removed = True
                except SuiteError as exc:
                    reason = f"{reason}; not removed: {exc}"
                    warnings.append(f"{record.name}: {exc}")
            before.append(record.describe())
            if not would_remove or not (removed or self.check_mode):
                after.append(record.describe())
            entries.append(
                {
                    "name": record.name,
                    "daemon": daemon.name if daemon is not None else None,
                    "pid": record.pid,
                    "raw_pid": None if record.raw_pid is None else str(record.raw_pid),
                    "status": verdict.status,
                    "reason": reason,
                    "removed": removed,
                    "would_remove": would_remove,
                    "source": record.source,
                }
            )
        counts = {status: 0 for status in VERDICTS}
        for entry in entries:
            counts[entry["status"]] += 1
        counts["removed"] = sum(1 for entry in entries if entry["removed"])
        counts["would_remove"] = sum(1 for entry in entries if entry["would_remove"])
        counts["total"] = len(entries)
        result: dict[str, Any] = {
            # a removal was attempted (in check mode: would be)
            "changed": counts["would_remove"] > 0,
            "records": entries,
            "counts": counts,
            "store_type": store["type"],
            # before/after as text, one record per line: what Ansible's diff callback prints
            "diff": {"before": _lines(before), "after": _lines(after)},
        }
        if warnings:
            result["warnings"] = warnings
        return result

    @staticmethod
    def _limit(names: Optional[list[str]], daemons: dict[str, Any]) -> Optional[set[str]]:
        if not names:
            return None
        if daemons:
            unknown = [name for name in names if name not in daemons]
            if unknown:
                raise SuiteError(
                    f"daemons: {', '.join(unknown)} not in the profile; "
                    f"known daemons: {', '.join(daemons)}"
                )
        else:
            raise SuiteError(
                "daemons: limiting to daemons needs a profile (profile or profile_data)"
            )
        return set(names)
