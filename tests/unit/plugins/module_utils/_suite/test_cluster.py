# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClusterDataClear: every condition is checked and named before anything is deleted."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import cluster
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    SuiteError,
    UnsafePathError,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)


def profile_data(cluster_data: dict | None = None) -> dict[str, Any]:
    suite: dict[str, Any] = {"name": "t", "roles": ["server"]}
    if cluster_data:
        suite["cluster_data"] = cluster_data
    return {
        "suite": suite,
        "daemons": [
            {
                "name": "smsd",
                "roles": ["server"],
                "match": {"cmdline": "^smsd( |$)"},
                "ports": [{"port": 596}],
            }
        ],
    }


class FakeModule:
    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        self.params = {
            "profile": None,
            "profile_data": profile_data(),
            "instance": None,
            "config_file": None,
            "path": None,
            "depth": None,
        }
        self.params.update(params)
        self.check_mode = check_mode

    def warn(self, message: str) -> None:  # pragma: no cover
        raise AssertionError(message)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for member in ("m1", "m2"):
        (tmp_path / "sms" / member).mkdir(parents=True)
        (tmp_path / "sms" / member / "f").write_text("x")
    return tmp_path / "sms"


@pytest.fixture
def blockers(monkeypatch):
    found = {"daemons": [], "clients": []}
    monkeypatch.setattr(
        cluster, "scan_daemons", lambda daemons, instance: (list(found["daemons"]), [])
    )
    monkeypatch.setattr(cluster, "connected_clients", lambda ports: found["clients"])
    return found


def run(params: dict[str, Any], check_mode: bool = False) -> tuple[cluster.ClusterDataClear, dict]:
    action = cluster.ClusterDataClear(FakeModule(params, check_mode))
    return action, action.run()


def test_refusal_names_every_condition_and_deletes_nothing(tree, blockers):
    blockers["daemons"] = ["daemon smsd runs as PID 42 (smsd -d)"]
    blockers["clients"] = ["client 10.0.0.2:2592 is connected to port 596"]
    with pytest.raises(SuiteError) as failure:
        run({"path": str(tree), "depth": 2})
    assert "daemon smsd runs as PID 42" in failure.value.msg
    assert "client 10.0.0.2:2592" in failure.value.msg
    assert "nothing was deleted" in failure.value.msg
    assert (tree / "m1" / "f").exists() and (tree / "m2" / "f").exists()


def test_path_is_validated_before_processes_are_looked_at(monkeypatch):
    def boom(*_args):
        raise AssertionError("must not scan before the path is validated")

    monkeypatch.setattr(cluster, "scan_daemons", boom)
    with pytest.raises(UnsafePathError, match="top-level system directory"):
        run({"path": "/var", "depth": 2})


def test_clears_from_profile_settings(tree, blockers):
    data = profile_data({"path": str(tree), "depth": 2})
    action, result = run({"profile_data": data})
    assert action.changed is True
    assert result["removed"] == [f"{tree}/m1/f", f"{tree}/m2/f"]
    assert not (tree / "m1" / "f").exists()
    action, result = run({"profile_data": data})
    assert action.changed is False and result["removed"] == []


def test_check_mode_lists_but_keeps(tree, blockers):
    action, result = run({"path": str(tree), "depth": 2}, check_mode=True)
    assert action.changed is True
    assert result["removed"] == [f"{tree}/m1/f", f"{tree}/m2/f"]
    assert (tree / "m1" / "f").exists()
    assert action.diff["before"]["entries"] == result["removed"]


def test_missing_cluster_data_is_a_clear_error(blockers):
    with pytest.raises(SuiteError, match=r"no suite\.cluster_data; set the path and depth"):
        run({})


Addr = namedtuple("Addr", "ip port")
Conn = namedtuple("Conn", "fd family type laddr raddr status pid")


def test_connected_clients_counts_server_side_established_only(monkeypatch):
    entries = [
        Conn(3, 2, 1, Addr("0.0.0.0", 596), (), "LISTEN", 10),
        Conn(4, 2, 1, Addr("10.0.0.1", 596), Addr("10.0.0.2", 2592), "ESTABLISHED", 10),
        Conn(5, 2, 1, Addr("10.0.0.1", 596), Addr("10.0.0.3", 2600), "TIME_WAIT", None),
        Conn(6, 2, 1, Addr("10.0.0.1", 40000), Addr("10.0.0.9", 596), "ESTABLISHED", 11),
        Conn(7, 2, 1, Addr("10.0.0.1", 597), Addr("10.0.0.4", 2601), "ESTABLISHED", 12),
    ]
    monkeypatch.setattr(cluster.psutil, "net_connections", lambda kind: entries)
    assert cluster.connected_clients({596}, use_procfs=False) == [
        "client 10.0.0.2:2592 is connected to port 596"
    ]
    assert cluster.connected_clients(set()) == []


def test_unreadable_socket_table_blocks(monkeypatch):
    def denied(kind):
        raise cluster.psutil.AccessDenied()

    monkeypatch.setattr(cluster.psutil, "net_connections", denied)
    assert "cannot read the socket table" in cluster.connected_clients({596}, use_procfs=False)[0]


def test_running_daemons_ignores_this_process_and_its_ancestors():
    daemon = load_profile(
        {
            "suite": {"name": "t", "roles": ["s"]},
            "daemons": [{"name": "py", "roles": ["s"], "match": {"cmdline": "python|pytest"}}],
        }
    ).daemons
    found = cluster.running_daemons(daemon, instance=f"no-such-instance-{os.getpid()}")
    assert found == []
    for line in cluster.running_daemons(daemon):
        assert f"PID {os.getpid()} " not in line
