"""faults scenario: what side_effect.yml injected and observed, and the state it left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from suite_checks import assert_status_success, assert_suite_healthy, podman_hosts
from testinfra import get_host

SERVER, RDS, CLIENT = "faults-server", "faults-rds", "faults-client"
testinfra_hosts = podman_hosts(SERVER, RDS, CLIENT)

MAX_FAILURES = 3  # molecule.yml: common_max_failures
RESUME_INTERVAL = 20  # molecule.yml: common_resume_interval
MARKER = "/var/lib/refsuite/cluster/molecule-marker"


def record(name: str) -> Any:
    directory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "faults"
    path = directory / f"{name}.json"
    assert path.is_file(), f"{path} missing: side_effect.yml did not get to this fault"
    return json.loads(path.read_text(encoding="utf-8"))


def task_results(playbook_json: dict[str, Any], task_name: str) -> dict[str, Any]:
    """Per-host results of one task in an ansible.posix.json callback output."""
    for play in playbook_json["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return task["hosts"]
    return {}


# -- the suite is whole again after every fault ---------------------------------------------


def test_every_member_is_healthy_after_the_faults(host):
    assert_suite_healthy(host)
    assert_status_success(host)


# -- 1 kill -9 -------------------------------------------------------------------------------


def test_killed_daemon_was_restarted_by_qm():
    rec = record("kill_daemon")
    assert rec["new_pid"] not in (0, rec["old_pid"]), rec
    assert rec["restarts_after"] == rec["restarts_before"] + 1, rec
    assert rec["seconds"] < 15, rec


# -- 2 crash loop ----------------------------------------------------------------------------


def test_crash_loop_given_up_after_exactly_max_failures():
    rec = record("crash_loop")
    sepuler = rec["given_up_state"]["supervision"]["sepuler"]
    assert sepuler["state"] == "given_up", rec
    assert sepuler["failures"] == MAX_FAILURES, rec
    assert sepuler["restarts"] == MAX_FAILURES - 1, rec
    assert rec["sepuler_running_while_given_up"] == 0, rec


def test_crash_loop_sent_exactly_one_emergency_message():
    rec = record("crash_loop")
    assert rec["emerg_sepuler"] == 1, rec
    assert rec["emerg_total"] == 1, rec
    assert rec["log_emerg_sepuler"] == 1, rec
    # resuming does not alert again
    assert rec["emerg_total_after_resume"] == 1, rec


def test_crash_loop_resumed_after_the_resume_interval():
    rec = record("crash_loop")
    assert rec["resumed_state"]["supervision"]["sepuler"]["state"] == "running", rec
    assert rec["log_resumed"] >= 1, rec
    waited = rec["resumed_at"] - rec["given_up_at"]
    assert RESUME_INTERVAL - 1 <= waited <= RESUME_INTERVAL + 10, f"resumed after {waited:.1f}s"


# -- 3 stale record after kill -9 ------------------------------------------------------------


def test_kill_of_qm_left_a_stale_record_that_blocked_restarts():
    rec = record("stale_record")
    unit = rec["unit_after_kill"]
    assert unit["ActiveState"] == "failed", unit
    assert int(unit["NRestarts"]) >= MAX_FAILURES - 1, unit
    assert rec["state_after_kill"]["records"].get("qm") == rec["killed_qm_pid"], rec
    assert rec["emerg_after_kill"] == 1, "systemd's give-up alert (OnFailure) must fire once"


def test_stale_pids_cleared_only_the_stale_qm_record():
    rec = record("stale_record")
    report = {r["name"]: r for r in rec["stale_report"]["records"]}
    assert report["qm"]["status"] == "stale", report["qm"]
    assert not rec["stale_report"]["changed"] or rec["stale_report"].get("check_mode", True)
    cleared = rec["stale_cleared"]
    assert cleared["changed"] is True
    removed = {r["name"] for r in cleared["records"] if r["removed"]}
    assert "qm" in removed, cleared["records"]
    assert all(r["status"] in ("stale", "invalid") for r in cleared["records"] if r["removed"])


def test_plain_start_works_after_the_stale_record_is_gone():
    rec = record("stale_record")
    assert not rec["plain_start"].get("failed"), rec["plain_start"].get("msg")
    assert rec["status_rc"] == 0, rec["status_stdout"]
    assert "STATUS=SUCCESS" in rec["status_stdout"]


# -- 4 connected client ----------------------------------------------------------------------


def test_service_stop_refused_with_a_connected_client():
    rec = record("client_refusal")
    assert rec["sessions"] >= 1, rec
    assert rec["stop"].get("failed") is True, rec["stop"]
    assert "client" in rec["stop"]["msg"].lower(), rec["stop"]["msg"]


def test_cluster_reset_refused_with_a_connected_client_and_deleted_nothing():
    rec = record("client_refusal")
    assert rec["reset_rc"] != 0, "cluster_reset.yml succeeded although a client was connected"
    stops = task_results(rec["reset_output"], "Stop the suite on every member")
    assert not stops, f"cluster_reset stopped members despite the client: {stops}"
    assert f"{MARKER}/marker" in rec["tree_after"], rec["tree_after"]
    assert rec["tree_after"] == rec["tree_before"], (rec["tree_before"], rec["tree_after"])
    assert "STATUS=SUCCESS" in rec["status_after"]


# -- 5 cluster reset -------------------------------------------------------------------------


def test_cluster_reset_cleared_the_shared_data_exactly_once():
    rec = record("cluster_reset")
    assert rec["reset_rc"] == 0, json.dumps(rec["reset_output"].get("stats"), indent=1)
    once = task_results(
        rec["reset_output"], "Clear the shared cluster data once, from the first member"
    )
    changed = [h for h, r in once.items() if r.get("changed")]
    assert len(changed) == 1, once
    each = task_results(rec["reset_output"], "Clear each member's own cluster data")
    assert not [h for h, r in each.items() if r.get("changed")], each
    # depth 2 is `rm -rf <cluster>/*/*`: the first-level directories stay, their contents go
    assert f"{MARKER}/marker" not in rec["tree_after"], rec["tree_after"]


def test_every_member_came_back_online_after_the_reset():
    rec = record("cluster_reset")
    assert set(rec["status_after"]) == {SERVER, RDS, CLIENT}
    for member, line in rec["status_after"].items():
        assert line.startswith("STATUS=SUCCESS"), (member, line)


def test_cluster_marker_is_gone_from_every_member():
    for member in (SERVER, RDS):
        assert not get_host(f"podman://{member}").file(f"{MARKER}/marker").exists


# -- 6 health audit --------------------------------------------------------------------------


def test_health_audit_failed_and_reported_the_injected_failures():
    rec = record("health_audit")
    assert rec["rc"] != 0, "health_audit.yml must exit non-zero with unhealthy hosts"
    path = (
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "faults" / "audit" / "health_audit.json"
    )
    report = json.loads(path.read_text(encoding="utf-8"))
    assert sorted(report["unhealthy_hosts"]) == sorted([SERVER, RDS]), report["unhealthy_hosts"]
    hosts = report["hosts"]
    assert hosts[CLIENT]["status"] == "healthy", hosts[CLIENT]["problems"]
    assert hosts[SERVER]["daemons"]["sepuler"]["state"] == "offline"
    assert hosts[RDS]["daemons"]["stpd"]["state"] == "offline"
    bad = {(p["host"], p["daemon"]) for p in report["problems"]}
    assert bad == {(SERVER, "sepuler"), (RDS, "stpd")}, report["problems"]


# -- 7 deliberate stop -----------------------------------------------------------------------


def test_deliberate_stop_is_not_undone_by_the_resume_timer():
    rec = record("stop_sticks")
    assert rec["state_after_wait"] == "inactive", rec
    assert rec["qm_processes"] == 0, rec
