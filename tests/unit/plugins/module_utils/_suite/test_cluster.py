# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClusterDataClear: every condition is checked and named before anything is deleted."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path
from typing import Any

import psutil
import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import cluster, sockets
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


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for member in ("m1", "m2"):
        (tmp_path / "sms" / member).mkdir(parents=True)
        (tmp_path / "sms" / member / "f").write_text("x")
    return tmp_path / "sms"


@pytest.fixture
def blockers(monkeypatch):
    found = {"daemons": [], "clients": [], "foreign": []}
    monkeypatch.setattr(
        cluster,
        "scan_daemons",
        lambda daemons, instance: (list(found["daemons"]), list(found["foreign"])),
    )
    monkeypatch.setattr(cluster, "connected_clients", lambda ports: found["clients"])
    return found


def run(params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """``ClusterDataClear.run()`` for module-like ``params`` (profile_data, path, depth)."""
    profile = load_profile(params.pop("profile_data", None) or profile_data())
    return cluster.ClusterDataClear(profile, check_mode=check_mode, **params).run()


def test_refusal_names_every_condition_and_deletes_nothing(tree, blockers):
    blockers["daemons"] = ["daemon smsd runs as PID 42 (smsd -d)"]
    blockers["clients"] = ["client 10.0.0.2:2592 is connected to port 596"]
    with pytest.raises(SuiteError) as failure:
        run({"path": str(tree), "depth": 2})
    assert "daemon smsd runs as PID 42" in failure.value.msg
    assert "client 10.0.0.2:2592" in failure.value.msg
    assert "nothing was deleted" in failure.value.msg
    assert (tree / "m1" / "f").exists() and (tree / "m2" / "f").exists()


def test_foreign_processes_are_warnings_not_blockers(tree, blockers):
    blockers["foreign"] = ["/usr/bin/python3[7] is named like smsd but is not it: user"]
    result = run({"path": str(tree), "depth": 2}, check_mode=True)
    assert result["changed"] is True
    assert result["warnings"] == [
        "not a daemon of the suite, not in the way: /usr/bin/python3[7] is named like smsd "
        "but is not it: user"
    ]
    blockers["clients"] = ["client 10.0.0.2:2592 is connected to port 596"]
    with pytest.raises(SuiteError) as failure:
        run({"path": str(tree), "depth": 2})
    assert failure.value.details["warnings"] == result["warnings"]
    assert "python3[7]" not in failure.value.msg


def test_path_is_validated_before_processes_are_looked_at(monkeypatch):
    def boom(*_args):
        raise AssertionError("must not scan before the path is validated")

    monkeypatch.setattr(cluster, "scan_daemons", boom)
    with pytest.raises(UnsafePathError, match="top-level system directory"):
        run({"path": "/var", "depth": 2})


def test_clears_from_profile_settings(tree, blockers):
    data = profile_data({"path": str(tree), "depth": 2})
    result = run({"profile_data": data})
    assert result["changed"] is True
    assert result["removed"] == [f"{tree}/m1/f", f"{tree}/m2/f"]
    assert not (tree / "m1" / "f").exists()
    assert result["diff"]["after"]["entries"] == []
    result = run({"profile_data": data})
    assert result["changed"] is False and result["removed"] == []


def test_check_mode_lists_but_keeps(tree, blockers):
    result = run({"path": str(tree), "depth": 2}, check_mode=True)
    assert result["changed"] is True
    assert result["removed"] == [f"{tree}/m1/f", f"{tree}/m2/f"]
    assert (tree / "m1" / "f").exists()
    assert result["diff"]["before"]["entries"] == result["removed"]


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
        # accepted before the listener of 598 closed: still a client
        Conn(8, 2, 1, Addr("10.0.0.1", 598), Addr("10.0.0.5", 2602), "ESTABLISHED", 13),
    ]
    monkeypatch.setattr(psutil, "net_connections", lambda kind: entries)
    monkeypatch.setattr(sockets, "registered_probes", set)
    assert cluster.connected_clients({596, 598}, use_procfs=False) == [
        "client 10.0.0.2:2592 is connected to port 596",
        "client 10.0.0.5:2602 is connected to port 598",
    ]
    assert cluster.connected_clients(set()) == []


def test_unreadable_socket_table_blocks(monkeypatch):
    def denied(kind):
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    assert "cannot read the socket table" in cluster.connected_clients({596}, use_procfs=False)[0]


def test_scan_daemons_ignores_this_process_and_its_ancestors():
    daemon = load_profile(
        {
            "suite": {"name": "t", "roles": ["s"]},
            "daemons": [{"name": "py", "roles": ["s"], "match": {"cmdline": "python|pytest"}}],
        }
    ).daemons
    running, foreign = cluster.scan_daemons(daemon, instance=f"no-such-instance-{os.getpid()}")
    assert running == [] and foreign == []
    for line in cluster.scan_daemons(daemon)[0]:
        assert f"PID {os.getpid()} " not in line
