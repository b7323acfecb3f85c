# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""StalePids decisions: which verdicts lead to a removal, check mode, diff, counts."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import identity, stale
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.pidstore import PidRecord
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

PROFILE = {
    "suite": {
        "name": "t",
        "roles": ["server"],
        "pid_store": {"type": "sqlite", "path": "/srv/t/state.db", "table": "daemon_pids"},
    },
    "daemons": [
        {"name": name, "roles": ["server"], "match": {"cmdline": f"^t-{name}$"}}
        for name in ("live", "stale", "invalid", "unknown", "data_server")
    ],
}


DEFAULTS: dict[str, Any] = {
    "profile_data": PROFILE,
    "instance": None,
    "state": "present",
    "store": None,
    "daemons": None,
    "remove_invalid": False,
}


@pytest.fixture
def world(monkeypatch):
    """Records named after their verdict; remove_record calls are recorded, never executed."""
    records = [
        PidRecord(name=name, raw_pid="100", pid=100, source="db:t")
        for name in ("live", "stale", "invalid", "unknown", "data_server.2")
    ]
    removed: list[str] = []
    seen_stores: list[dict] = []

    def read_records(store):
        seen_stores.append(store)
        return records

    def judge(record, daemon, proc_table=None, *, instance=None, host=None):
        status = record.name.split(".")[0]
        status = "stale" if status == "data_server" else status
        return identity.Verdict(status, f"because {record.name}")

    def remove_record(store, record):
        if record.name == "data_server.2" and world_state.get("fail"):
            raise SuiteError("changed since it was read")
        removed.append(record.name)

    world_state: dict[str, Any] = {}
    monkeypatch.setattr(stale.pidstore, "read_records", read_records)
    monkeypatch.setattr(stale.pidstore, "remove_record", remove_record)
    monkeypatch.setattr(stale.identity, "judge", judge)
    return {"removed": removed, "stores": seen_stores, "state": world_state}


def run(params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """``StalePids.run()`` for module-like ``params`` (``profile_data`` None: no profile)."""
    args = dict(DEFAULTS, **params)
    data = args.pop("profile_data")
    return stale.StalePids(
        load_profile(data) if data else None, check_mode=check_mode, **args
    ).run()


def test_present_reports_only(world):
    result = run({"state": "present"})
    assert world["removed"] == []
    assert result["changed"] is False
    statuses = {r["name"]: r["status"] for r in result["records"]}
    assert statuses == {
        "live": "live",
        "stale": "stale",
        "invalid": "invalid",
        "unknown": "unknown",
        "data_server.2": "stale",
    }
    assert result["counts"] == {
        "live": 1,
        "stale": 2,
        "invalid": 1,
        "unknown": 1,
        "removed": 0,
        "would_remove": 0,
        "total": 5,
    }
    assert next(r for r in result["records"] if r["name"] == "data_server.2")["daemon"] == (
        "data_server"
    )


def test_absent_removes_only_stale(world):
    result = run({"state": "absent"})
    assert world["removed"] == ["stale", "data_server.2"]
    assert result["changed"] is True
    assert result["counts"]["removed"] == 2
    # text, one record per line (what the diff callback prints)
    assert len(result["diff"]["before"].splitlines()) == 5
    assert len(result["diff"]["after"].splitlines()) == 3


def test_remove_invalid_adds_invalid_never_unknown_or_live(world):
    run({"state": "absent", "remove_invalid": True})
    assert world["removed"] == ["stale", "invalid", "data_server.2"]


def test_check_mode_predicts_without_removing(world):
    result = run({"state": "absent"}, check_mode=True)
    assert world["removed"] == []
    assert result["changed"] is True
    assert [r["name"] for r in result["records"] if r["would_remove"]] == ["stale", "data_server.2"]
    assert not [r for r in result["records"] if r["removed"]]
    assert result["counts"]["removed"] == 0 and result["counts"]["would_remove"] == 2
    assert isinstance(result["diff"]["before"], str) and "stale" in result["diff"]["before"]
    assert "stale" not in result["diff"]["after"].split()


def test_failed_removal_is_reported_not_fatal(world):
    world["state"]["fail"] = True
    result = run({"state": "absent"})
    entry = next(r for r in result["records"] if r["name"] == "data_server.2")
    assert entry["removed"] is False and "not removed" in entry["reason"]
    assert result["warnings"] == ["data_server.2: changed since it was read"]


def test_daemons_limit_and_unknown_daemon(world):
    result = run({"daemons": ["data_server"]})
    assert [r["name"] for r in result["records"]] == ["data_server.2"]
    with pytest.raises(SuiteError, match="daemons: nope not in the profile"):
        run({"daemons": ["nope"]})


def test_store_option_overrides_profile_store(world):
    run({"store": {"path": "/srv/other.db", "type": None, "table": None}})
    assert world["stores"][-1]["path"] == "/srv/other.db"
    assert world["stores"][-1]["table"] == "daemon_pids"
    run({"store": {"type": "pidfile", "path": "/run/t"}})
    assert world["stores"][-1] == {"type": "pidfile", "path": "/run/t", "columns": {}}


def test_store_without_profile_and_nothing_at_all(world):
    run({"profile_data": None, "store": {"type": "pidfile", "path": "/run/t"}})
    with pytest.raises(SuiteError, match="no PID store"):
        stale.resolve_store(None, None)
    with pytest.raises(SuiteError, match="needs a profile"):
        run({"profile_data": None, "store": {"type": "pidfile", "path": "/r"}, "daemons": ["x"]})
