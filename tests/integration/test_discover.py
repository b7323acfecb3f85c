# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover on real process trees: the refsuite started from the repository (through
playbooks/discover.yml), an impersonated SEP sesam tree, and a real PostgreSQL postmaster with
its children (Debian's postgresql package)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from impersonate import Proc, wait_gone
from modrun import TOP, ansible_env, run_adhoc, run_playbook
from pg_fixture import PostgresServer

sys.path.insert(0, str(Path(__file__).resolve().parent / "refsuite"))
from refsuite_testlib import RefSuite, wait_until

from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import apply_config
from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import profile_path


def run_discover_playbook(tmp: Path, extra_vars: dict[str, Any]) -> tuple[int, dict, str]:
    inventory = tmp / "inventory.json"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}))
    proc, output = run_playbook(
        tmp,
        "-i",
        str(inventory),
        str(TOP / "playbooks" / "discover.yml"),
        "-e",
        json.dumps(extra_vars),
        cwd=tmp,
        timeout=300,
    )
    results = {
        task["task"]["name"]: task["hosts"]["localhost"]
        for play in output["plays"]
        for task in play["tasks"]
        if "localhost" in task["hosts"]
    }
    return proc.returncode, results, proc.stdout


def by_name(profile_data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {daemon["name"]: daemon for daemon in profile_data["daemons"]}


# ------------------------------------------------------------------------------- refsuite


@pytest.fixture
def refsuite_server(tmp_path: Path):
    root = tmp_path / "rs"
    root.mkdir()
    suite = RefSuite(root, "server", retry_interval=0)  # no restart: a killed daemon stays gone
    try:
        suite.start()
        for name in ("qm", "db", "ui", "passd", "sms", "stpd", "sshd", "sepuler"):
            wait_until(lambda name=name: suite.online(name), 30, f"refsuite {name} online")
        yield suite
    finally:
        suite.cleanup()


def test_refsuite_proposal_matches_the_shipped_profile_and_finds_a_killed_daemon(
    refsuite_server: RefSuite, tmp_path: Path, ansible_module
):
    suite = refsuite_server
    out = tmp_path / "refsuite-proposal.yml"
    rc, results, raw = run_discover_playbook(
        tmp_path, {"discover_pid": suite.pid("qm"), "discover_output": str(out)}
    )
    assert rc == 0, raw[-4000:]
    health = results[
        "Check the proposal against the same host (the action plugin loads and validates the file)"
    ]
    assert health["status"] == "SUCCESS", health["msg"]
    review = results["Show what to review"]["msg"]
    assert review[0].startswith(f"Written: {out}")

    proposed = load_profile_file(str(out))
    shipped = apply_config(load_profile_file(profile_path("refsuite")), str(suite.ini))
    running = [d for d in shipped.daemons if d.enabled]  # ctrl is disabled: it does not run
    assert proposed.name == "refsuite"
    assert proposed.daemon_names and set(proposed.daemon_names) == {d.name for d in running}
    for expected in running:
        got = proposed.daemon(expected.name)
        assert got.cmdline_regex.pattern == expected.cmdline_regex.pattern, expected.name
        assert got.ancestor == expected.ancestor, expected.name
        assert got.port_numbers == sorted(expected.port_numbers), expected.name  # sorted
        assert got.count_max == expected.count_max, expected.name  # data_server: a pool
    qm_exe = os.readlink(f"/proc/{suite.pid('qm')}/exe")
    assert proposed.daemon("qm").exe_regex.search(qm_exe)
    assert proposed.daemon("qm").essential and not proposed.daemon("stpd").essential

    stpd = suite.pid("stpd")
    os.kill(stpd, signal.SIGKILL)
    assert wait_gone(stpd, 10)
    instance = results["Walk the process tree under the hint"]["instance"]
    assert instance == str(suite.ini)
    args = {"profile": str(out), "roles": ["server"], "instance": instance}
    after = ansible_module("health_info", args)
    assert after["status"] == "FAILURE"
    assert after["daemons"]["stpd"]["state"] == "offline"
    assert "stpd offline" in after["msg"]
    assert after["daemons"]["qm"]["state"] == "online"


def test_refsuite_proposal_in_check_mode_is_the_same_and_unchanged(
    refsuite_server: RefSuite, ansible_module
):
    args = {"pid": refsuite_server.pid("qm"), "role": "rds", "suite_name": "mine"}
    normal = ansible_module("discover", args)
    check = ansible_module("discover", args, check=True)
    assert normal["changed"] is False and check["changed"] is False
    assert normal["proposal"] == check["proposal"]
    assert normal["proposal"]["suite"]["name"] == "mine"
    assert normal["proposal"]["suite"]["roles"] == ["rds"]
    assert {tuple(d["roles"]) for d in normal["proposal"]["daemons"]} == {("rds",)}
    assert yaml.safe_load(normal["proposal_yaml"]) == normal["proposal"]


# ------------------------------------------------------------------------------- sesam


def test_impersonated_sesam_tree(impersonate, tmp_path: Path, ansible_module):
    ini = ["--ini", str(tmp_path / "sm.ini")]  # tells this tree from others on the host
    tree = impersonate(
        Proc(
            "sm_qm_main",
            ini,
            children=[
                Proc("sm_stpd_main", ini, ports=[0, 0]),
                Proc(
                    "sm_sms_main",
                    ini,
                    children=[
                        Proc("sm_data_server", ["1", *ini]),
                        Proc("sm_data_server", ["2", *ini]),
                    ],
                ),
                Proc("sm_passd", ini),
                Proc("sm_sshd", ini, ports=[0]),
            ],
        )
    )
    impersonate.mention("sm_qm_main", "sm_stpd_main")  # grep: must not be part of the tree
    run = tmp_path / "run"
    run.mkdir()
    for name in ("sm_qm_main", "sm_stpd_main"):
        pidfile = run / f"{name}.pid"
        pidfile.write_text(f"{tree.pid(name)}\n")
        pidfile.chmod(0o644)

    result = ansible_module(
        "discover", {"name": "^sm_qm_main$", "pidfile_dirs": [str(run)], "role": "server"}
    )
    assert not result.get("failed"), result.get("msg")
    proposal = result["proposal"]
    daemons = by_name(proposal)
    assert proposal["suite"]["name"] == "sm"
    assert set(daemons) == {"qm_main", "stpd_main", "sms_main", "data_server", "passd", "sshd"}
    assert result["roots"] == [tree.pid("sm_qm_main")]
    assert daemons["qm_main"]["match"]["cmdline"] == "^sm_qm_main( |$)"
    assert "ancestor" not in daemons["qm_main"]
    assert daemons["data_server"]["ancestor"] == "sms_main"
    assert {daemons[n]["ancestor"] for n in ("stpd_main", "sms_main", "passd", "sshd")} == {
        "qm_main"
    }
    assert [p["port"] for p in daemons["stpd_main"]["ports"]] == sorted(
        port for _address, port in tree.ports("sm_stpd_main")
    )
    assert daemons["sshd"]["ports"] == [{"port": tree.port("sm_sshd"), "probe": {"type": "tcp"}}]
    assert daemons["data_server"]["count"] == {"min": 1}  # two under one parent: a pool
    assert daemons["passd"]["count"] == {"min": 1, "max": 1}
    assert proposal["suite"]["pid_store"] == {
        "type": "pidfile",
        "path": str(run),
        "pattern": "sm_{name}.pid",
    }
    text = result["proposal_yaml"]
    assert yaml.safe_load(text) == proposal
    assert re.search(r"name: data_server  # guess: .*", text)
    assert "worker pool" in text and "worker pool" in " ".join(result["review"])

    assert result["instance"] == ini[1]
    check = {"profile_data": proposal, "roles": ["server"], "instance": ini[1]}
    health = ansible_module("health_info", check)
    assert health["status"] == "SUCCESS", health["msg"]
    assert health["daemons"]["stpd_main"]["pid_record"]["status"] == "consistent"
    assert health["daemons"]["data_server"]["count"] == 2

    tree.kill("sm_sshd")
    health = ansible_module("health_info", check)
    assert health["status"] == "FAILURE" and "sshd offline" in health["msg"]


def test_bad_hints_fail_naming_the_option(ansible_module, free_port):
    port = free_port()
    result = ansible_module("discover", {"ports": [port]})
    assert result["failed"] and result["msg"].startswith(f"ports: nothing listens on port {port}")
    result = ansible_module("discover", {"name": "^no-such-daemon-xyz$"})
    assert result["failed"] and result["msg"].startswith("name: no process is called like")
    result = ansible_module("discover", {"name": "("})
    assert result["failed"] and "not a valid regular expression" in result["msg"]
    result = ansible_module("discover", {"role": "server"})
    assert result["failed"] and "one of the following is required" in result["msg"]


# ------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def postmaster():
    server = PostgresServer()
    try:
        server.init()
        # no autovacuum: its workers come and go and would be proposed as daemons
        with open(os.path.join(server.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write("\nautovacuum = off\n")
        server.start()
        yield server
    finally:
        server.stop()


def test_postgresql_postmaster_tree(postmaster: PostgresServer, ansible_module):
    result = ansible_module("discover", {"ports": [postmaster.port]})
    assert not result.get("failed"), result.get("msg")
    proposal = result["proposal"]
    load_profile(proposal)
    daemons = by_name(proposal)
    pid = int(Path(postmaster.data, "postmaster.pid").read_text().split()[0])
    assert result["roots"] == [pid]
    master = daemons["postgres"]
    assert master["match"]["cmdline"] == f"^{postmaster.bin}/postgres( |$)".replace(".", "\\.")
    assert re.search(master["match"]["exe"], f"{postmaster.bin}/postgres")
    assert not re.search(master["match"]["exe"], "/usr/bin/python3")
    assert master["ports"] == [{"port": postmaster.port, "probe": {"type": "tcp"}}]
    facts = {prog["daemon"]: prog for prog in result["programs"]}
    assert fnmatch.fnmatch(facts["postgres"]["exe"], "/usr/lib/postgresql/*/bin/postgres")
    assert facts["postgres"]["pids"] == [pid]
    pidfile = os.path.join(postmaster.data, "postmaster.pid")
    assert [f["path"] for f in facts["postgres"]["pidfiles"]] == [pidfile]
    assert facts["postgres"]["pidfiles"][0]["one_line"] is False
    assert f"pidfile {pidfile} (holds more than the PID)" in result["proposal_yaml"]
    assert "pid_store" not in proposal["suite"]  # postmaster.pid is not a one-line pidfile
    assert os.getuid() != 0 or facts["postgres"]["users"] == ["postgres"]
    children = [name for name in daemons if name != "postgres"]
    assert "postgres_checkpointer" in children
    assert daemons["postgres_checkpointer"]["match"]["cmdline"] == "^postgres: checkpointer( |$)"
    assert all(daemons[name]["ancestor"] == "postgres" for name in children)

    health = ansible_module("health_info", {"profile_data": proposal, "roles": ["server"]})
    assert health["status"] == "SUCCESS", health["msg"]
    assert health["daemons"]["postgres"]["ports"][0]["owned"] is True


def test_proposals_of_a_server_and_a_client_merge_into_one_profile(
    impersonate, tmp_path: Path, ansible_module
):
    server_ini, client_ini = ["--ini", str(tmp_path / "s.ini")], ["--ini", str(tmp_path / "c.ini")]
    server = impersonate(
        Proc("sm_qm_main", server_ini, children=[Proc("sm_stpd_main", server_ini, ports=[0])])
    )
    client = impersonate(Proc("sm_qm_main", client_ini, children=[Proc("sm_sshd", client_ini)]))
    proposals = [
        ansible_module("discover", {"pid": tree.pid("sm_qm_main"), "role": role})["proposal"]
        for tree, role in ((server, "server"), (client, "client"))
    ]
    (tmp_path / "vars.json").write_text(json.dumps({"proposals": proposals}))
    result = run_adhoc(
        "ansible.builtin.debug",
        {"var": "proposals|daemonops.suite.discover_merge(name='sesam_fleet')"},
        extra=("-e", f"@{tmp_path / 'vars.json'}"),
        env=ansible_env(tmp_path),
    )
    merged = result["proposals|daemonops.suite.discover_merge(name='sesam_fleet')"]
    profile = load_profile(merged)
    assert profile.name == "sesam_fleet" and profile.roles == ("server", "client")
    assert profile.daemon("qm_main").roles == ("server", "client")
    assert profile.daemon("stpd_main").roles == ("server",)
    assert profile.daemon("sshd").roles == ("client",)
    assert profile.daemon("stpd_main").port_numbers == [server.port("sm_stpd_main")]
