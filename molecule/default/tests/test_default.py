"""default scenario: one all-in-one server with systemd as PID 1."""

from __future__ import annotations

from suite_checks import (
    UNIT,
    assert_status_success,
    assert_suite_healthy,
    expected_daemons,
    pids_of,
    podman_hosts,
    process_table,
    unit_properties,
)

testinfra_hosts = podman_hosts("default-server")


def test_every_server_daemon_runs_with_its_ancestry_and_owns_its_ports(host):
    names = {e.name for e in expected_daemons(host)}
    assert names == {"qm", "db", "ui", "passd", "sms", "data_server", "stpd", "sshd", "sepuler"}, (
        names
    )
    assert_suite_healthy(host)


def test_refsuite_status_reports_success(host):
    assert_status_success(host)


def test_unit_is_active_and_restarts_on_failure(host):
    props = unit_properties(host, UNIT, "ActiveState", "Restart", "UnitFileState", "MainPID")
    assert props["ActiveState"] == "active", props
    assert props["Restart"] == "on-failure", props
    assert props["UnitFileState"] == "enabled", props
    qm = pids_of(
        process_table(host), next(e.cmdline for e in expected_daemons(host) if e.name == "qm")
    )
    assert qm == [int(props["MainPID"])], f"qm {qm} is not the unit's main process {props}"


def test_suite_listens_on_loopback_only_by_default(host):
    stpd = host.socket("tcp://127.0.0.1:11000")
    assert stpd.is_listening
    assert not host.socket("tcp://0.0.0.0:11000").is_listening
