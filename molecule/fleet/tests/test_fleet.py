"""fleet scenario: server, RDS and two clients on one podman network; side_effect.yml rolls an
upgrade through RDS and clients that stops at a client failing its health gate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from suite_checks import (
    assert_status_success,
    assert_suite_healthy,
    expected_daemons,
    podman_hosts,
    read_json,
    sha256_of,
)
from testinfra import get_host

SERVER, RDS, CLIENTS = "fleet-server", "fleet-rds", ("fleet-client1", "fleet-client2")
testinfra_hosts = podman_hosts(SERVER, RDS, *CLIENTS)

ROLE_DAEMONS = {
    SERVER: {"qm", "db", "ui", "passd", "sms", "data_server", "stpd", "sshd", "sepuler"},
    RDS: {"qm", "passd", "sms", "data_server", "stpd", "sshd"},
    CLIENTS[0]: {"qm", "sshd"},
    CLIENTS[1]: {"qm", "sshd"},
}


def test_each_member_runs_the_daemons_of_its_role(host):
    names = {e.name for e in expected_daemons(host)}
    assert names == ROLE_DAEMONS[host.backend.hostname]


def test_processes_ancestry_and_ports_are_right(host):
    assert_suite_healthy(host)


def test_refsuite_status_reports_success(host):
    assert_status_success(host)


def test_unit_is_active_with_restart_on_failure(host):
    svc = host.service("refsuite")
    assert svc.is_running and svc.is_enabled
    assert host.check_output("systemctl show -p Restart --value refsuite.service") == "on-failure"


def _server():
    return get_host(f"podman://{SERVER}")


@pytest.mark.parametrize("client", CLIENTS)
def test_client_transfers_a_file_to_the_servers_stpd(client):
    """A real PUT over the podman network; the server stores the same bytes."""
    sender = get_host(f"podman://{client}")
    name = f"molecule-{client}.bin"
    local = f"/tmp/{name}"
    sender.check_output(f"head -c 1048576 /dev/urandom > {local}")
    sent = sha256_of(sender, local)
    url = f"http://server:11000/files/{name}"
    refused = sender.check_output(f"curl -sS -o /dev/null -w '%{{http_code}}' -T {local} {url}")
    assert refused == "401", f"PUT without the token from {client} answered HTTP {refused}"
    # the server's shared secret (made 0600 at its first start)
    token = _server().check_output("cat /etc/refsuite/token").strip()
    auth = f"-H 'Authorization: Bearer {token}'"
    code = sender.check_output(f"curl -sS -o /dev/null -w '%{{http_code}}' {auth} -T {local} {url}")
    assert code == "201", f"PUT from {client} answered HTTP {code}"
    stored = f"/var/lib/refsuite/data/{name}"
    assert sha256_of(_server(), stored) == sent
    # and the copy is readable back over HTTP from the other side of the network
    fetched = sender.check_output(f"curl -sS {auth} {url} | sha256sum")
    assert fetched.split()[0] == sent


def test_server_and_rds_share_the_cluster_data_volume():
    """Each member's data servers write under <cluster>/<hostname>/; both see both trees."""
    for member in (SERVER, RDS):
        host = get_host(f"podman://{member}")
        for writer in (SERVER, RDS):
            state = host.file(f"/var/lib/refsuite/cluster/{writer}/ds-1/state")
            assert state.exists, f"{member} does not see {writer}'s cluster data"
        mounts = host.check_output("findmnt -n -o TARGET /var/lib/refsuite/cluster")
        assert mounts == "/var/lib/refsuite/cluster"


def test_stale_pids_cleared_the_postgresql_pid_table():
    """Seon/OS4X case: stale rows removed, the live and the unknown rows kept."""
    server = _server()
    pids = read_json(server, "/var/lib/daemonops-molecule/pid_table.json")
    result = read_json(server, "/var/lib/daemonops-molecule/stale_pids.json")
    verdicts = {r["name"]: (r["status"], r["removed"]) for r in result["records"]}
    assert verdicts == {
        "seonrd": ("live", False),
        "seonsqd": ("stale", True),
        "seondebugd": ("stale", True),
        "legacyd": ("unknown", False),
    }, json.dumps(result["records"], indent=1)
    rows = server.check_output("psql -At -F ' ' dbname=seon -c 'SELECT name, pid FROM daemon_pids'")
    table = dict(line.split() for line in rows.splitlines())
    assert table == {"seonrd": str(pids["seonrd"]), "legacyd": str(pids["legacyd"])}
    # the module never signals: the live seonrd and the postmaster still run
    assert server.process.filter(pid=pids["seonrd"]), "seonrd was killed"
    assert server.run(f"kill -0 {pids['seondebugd']}").rc == 0, "the postmaster is gone"


# -- the rolling upgrade of side_effect.yml -----------------------------------------------------
ROLLING = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "rolling"


def _rollout() -> dict:
    return json.loads((ROLLING / "rollout.json").read_text())


def _summaries(output: dict) -> list[dict]:
    return [
        result["msg"]
        for play in output["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Summarise the rollout so far")
        for result in task["hosts"].values()
        if "msg" in result
    ]


def _qm_and_release(name: str) -> tuple[int, str]:
    member = get_host(f"podman://{name}")
    qm = int(member.check_output("pgrep -f '^refsuite-qm '"))
    return qm, member.check_output("readlink /opt/refsuite/current")


def test_rollout_stopped_at_the_host_that_failed_its_gate():
    output = _rollout()
    stats = output["stats"]
    assert stats["fleet-rds"]["failures"] == 0 and stats["fleet-client1"]["failures"] == 1
    assert "fleet-client2" not in stats, "the host after the failed batch was touched"
    last = _summaries(output)[-1]
    assert last["done"] == ["fleet-rds"] and last["not_touched"] == ["fleet-client2"]
    assert len(last["failed"]) == 1 and last["failed"][0].startswith("fleet-client1: ")
    assert "sshd" in last["failed"][0]
    assert "fleet-client1: rolled back to 1.0.0" in last["rolled_back"][0]


def test_rollout_upgraded_rds_rolled_back_client1_left_client2_alone():
    before = {
        name: json.loads((ROLLING / f"before-{name}.json").read_text()) for name in (RDS, *CLIENTS)
    }
    assert {b["current"] for b in before.values()} == {"releases/1.0.0"}
    qm, release = _qm_and_release(RDS)
    assert release == "releases/1.1.0" and qm != before[RDS]["qm"]
    qm, release = _qm_and_release(CLIENTS[0])
    assert release == "releases/1.0.0" and qm != before[CLIENTS[0]]["qm"]
    qm, release = _qm_and_release(CLIENTS[1])
    assert release == "releases/1.0.0" and qm == before[CLIENTS[1]]["qm"]


def test_upload_running_during_the_rollout_completed():
    upload = json.loads((ROLLING / "upload.json").read_text())
    assert upload["code"] == "201"
    assert sha256_of(_server(), "/var/lib/refsuite/data/slow.bin") == upload["sha256"]
