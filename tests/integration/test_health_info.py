# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""health_info against REAL processes and sockets.

The suites' daemons are impersonated (tests/integration/impersonate.py): real processes whose
command line starts with the vendor's process name, in the vendor's process tree, listening on
free ports that replace the profile's well-known ones. Every impersonated process carries the
test's own ``instance`` token in its command line and every check passes that token, so other
tests running at the same time (a real PostgreSQL, a refsuite, other impersonations) are never
counted. Several cases run the real module through ``ansible``/``ansible-playbook``.
"""

from __future__ import annotations

import base64
import copy
import io
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import psutil
import pytest
from impersonate import Proc
from modrun import run_adhoc, run_module_file, shipped_profile

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import HealthChecker
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import ProcessTable
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

TOP = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ helpers


def shipped(name: str, exe_rules: bool = False) -> dict[str, Any]:
    """A shipped profile's data (profiles/<name>.yml, or profiles/<name>/profile.yml without
    its deploy section, whose templates stay in the folder). The impersonated vendor daemons of
    these tests run the Python interpreter, not /opt/<vendor>/bin/..., so the vendor profiles'
    ``match.exe`` rules are left out unless ``exe_rules`` (refsuite's rules name the Python
    interpreter and stay)."""
    data = shipped_profile(name)
    if not exe_rules and name != "refsuite":
        for daemon in data["daemons"]:
            daemon["match"].pop("exe", None)
    return data


def with_ports(
    data: dict[str, Any], ports: dict[str, list[int]], keep: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A copy of profile ``data`` whose daemons listen on ``ports`` (daemon -> numbers, in
    order) instead of the well-known ports. ``suite.config_file`` and ``suite.pid_store`` point
    at system paths and are dropped unless named in ``keep``."""
    data = copy.deepcopy(data)
    for key in ("config_file", "pid_store"):
        if key not in keep:
            data["suite"].pop(key, None)
    for daemon in data["daemons"]:
        if not daemon.get("ports"):
            continue
        numbers = ports.get(daemon["name"])
        assert numbers is not None and len(numbers) == len(daemon["ports"]), (
            f"give free ports for every port of {daemon['name']} (never test on real ports)"
        )
        daemon["ports"] = [dict(spec, port=n) for spec, n in zip(daemon["ports"], numbers)]
    return data


def check(data: dict[str, Any], roles: list[str], instance: str, **kwargs: Any) -> dict[str, Any]:
    return HealthChecker(load_profile(data, "test"), roles, instance=instance, **kwargs).run()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def token() -> str:
    return f"--health-test-{uuid.uuid4().hex[:12]}"


def refsuite_tree(cfg: str, ui_port: bool = True, stpd: bool = True) -> Proc:
    """refsuite's server tree; every process has ``--config <cfg>`` like the real one."""
    args = ["--config", cfg]
    children = [
        Proc("refsuite-db", args),
        Proc("refsuite-ui", args, ports=[0] if ui_port else []),
        Proc("refsuite-passd", args),
        Proc(
            "refsuite-sms",
            args,
            children=[
                Proc("refsuite-data_server", ["1", *args]),
                Proc("refsuite-data_server", ["2", *args]),
            ],
        ),
        Proc("refsuite-sshd", args, ports=[0]),
        Proc("refsuite-sepuler", args),
    ]
    if stpd:
        children.append(Proc("refsuite-stpd", args, ports=[0, 0, 0], threads=2))
    return Proc("refsuite-qm", args, children=children)


def refsuite_ports(tree, free_port, **override: list[int]) -> dict[str, list[int]]:
    ports = {
        "ui": [tree.port("refsuite-ui")] if tree.procs("refsuite-ui")[0].ports else [free_port()],
        "sshd": [tree.port("refsuite-sshd")],
        "ctrl": [free_port()],
    }
    if tree.procs("refsuite-stpd"):
        ports["stpd"] = [port for _unused, port in tree.ports("refsuite-stpd")]
    else:
        ports["stpd"] = [free_port(), free_port(), free_port()]
    ports.update(override)
    return ports


@pytest.fixture
def refsuite(impersonate, free_port, tmp_path):
    """A running impersonated refsuite server: (tree, profile_data, instance)."""
    cfg = str(tmp_path / "refsuite.ini")
    tree = impersonate(refsuite_tree(cfg))
    data = with_ports(shipped("refsuite"), refsuite_ports(tree, free_port))
    return tree, data, cfg


# ------------------------------------------------------------------------------ via Ansible


def test_all_online_through_ansible_then_a_killed_daemon_is_named(refsuite, ansible_module):
    tree, data, cfg = refsuite
    args = {"profile_data": data, "roles": ["server"], "instance": cfg}
    result = ansible_module("health_info", args)
    assert result.get("failed") is not True, result.get("msg")
    assert result["status"] == "SUCCESS", result["msg"]
    assert result["msg"] == "All daemons online"
    assert result["changed"] is False
    qm = tree.pid("refsuite-qm")
    assert result["status_lines"][0] == f"qm [{qm:>6}]: online"
    assert "ctrl : unused" in result["status_lines"]
    assert result["summary"] == {
        "total": 10,
        "online": 9,
        "offline": 0,
        "degraded": 0,
        "unused": 1,
        "clients": 0,
    }
    daemons = result["daemons"]
    assert daemons["data_server"]["pids"] == sorted(tree.pids("refsuite-data_server"))
    assert daemons["data_server"]["ancestry"]["ok"] is True
    assert daemons["data_server"]["ancestry"]["chain"][-1] == tree.pid("refsuite-sms")
    stpd = daemons["stpd"]
    assert stpd["pids"] == [tree.pid("refsuite-stpd")]
    assert stpd["ancestry"] == {"expected": "qm", "ok": True, "chain": [stpd["pids"][0], qm]}
    assert [p["owned"] for p in stpd["ports"]] == [True, True, True]
    assert stpd["ports"][0]["probe"] == {"ok": True, "detail": "HTTP 200"}
    assert stpd["uptime"] >= 0 and stpd["start_time"] <= time.time()
    assert daemons["ui"]["ports"][0]["probe"] == {"ok": True, "detail": "TCP connect ok"}

    tree.kill("refsuite-stpd")
    result = ansible_module("health_info", args, via="playbook")
    assert result["status"] == "FAILURE"
    assert result["msg"] == "stpd offline"
    assert "stpd : offline" in result["status_lines"]
    assert result["daemons"]["stpd"]["state"] == "offline"
    assert result["summary"]["offline"] == 1 and result["summary"]["online"] == 8


def test_many_clients_are_all_counted_and_the_peers_cut_to_peers_limit(refsuite, ansible_module):
    tree, data, cfg = refsuite
    port = tree.port("refsuite-ui")
    args = {"profile_data": data, "roles": ["server"], "instance": cfg, "probes": False}
    clients = []
    try:
        for _unused in range(40):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        peers = sorted(f"127.0.0.1:{client.getsockname()[1]}" for client in clients)
        assert wait_for(
            lambda: check(data, ["server"], cfg, probes=False)["summary"]["clients"] == 40
        ), "the server did not accept the 40 clients"

        result = ansible_module("health_info", dict(args, peers_limit=5))
        assert result["status"] == "SUCCESS", result["msg"]
        ui = result["daemons"]["ui"]["ports"][0]
        assert ui["clients"] == 40 and result["summary"]["clients"] == 40
        assert len(ui["peers"]) == 5 and set(ui["peers"]) <= set(peers)
        assert ui["peers"] == sorted(ui["peers"]) and ui["peers_truncated"] is True

        ui = ansible_module("health_info", args)["daemons"]["ui"]["ports"][0]  # default: 20
        assert (ui["clients"], len(ui["peers"]), ui["peers_truncated"]) == (40, 20, True)

        ui = ansible_module("health_info", dict(args, peers_limit=-1))["daemons"]["ui"]["ports"][0]
        assert (ui["clients"], ui["peers"], ui["peers_truncated"]) == (40, peers, False)

        ui = ansible_module("health_info", dict(args, peers_limit=0))["daemons"]["ui"]["ports"][0]
        assert (ui["clients"], ui["peers"], ui["peers_truncated"]) == (40, [], True)

        failed = ansible_module("health_info", dict(args, peers_limit=-2))
        assert failed.get("failed") is True and "peers_limit: -2" in failed["msg"]
        assert "-1 to list every peer" in failed["msg"]
    finally:
        for client in clients:
            client.close()


def test_check_mode_returns_the_same_and_no_change(refsuite, ansible_module):
    _tree, data, cfg = refsuite
    args = {"profile_data": data, "roles": ["server"], "instance": cfg}
    normal = ansible_module("health_info", args)
    checked = ansible_module("health_info", args, check=True)
    assert checked["changed"] is False and normal["changed"] is False
    for key in ("status", "msg", "status_lines", "summary", "roles", "profile"):
        assert checked[key] == normal[key], key
    assert {k: v["pids"] for k, v in checked["daemons"].items()} == {
        k: v["pids"] for k, v in normal["daemons"].items()
    }


def test_bad_roles_fail_naming_the_option(refsuite, ansible_module):
    _tree, data, cfg = refsuite
    result = ansible_module("health_info", {"profile_data": data, "instance": cfg})
    assert result["failed"] is True
    assert result["msg"].startswith("roles: no role given"), result["msg"]
    with pytest.raises(SuiteError, match=r"^roles: backup not a role of suite refsuite"):
        check(data, ["backup"], cfg)


# ------------------------------------------------------------------------------ ports


def test_port_held_by_a_foreign_process_is_named(impersonate, free_port, tmp_path):
    cfg = str(tmp_path / "refsuite.ini")
    nginx = impersonate(Proc("nginx", ["-g", "daemon off;"], ports=[0]))
    tree = impersonate(refsuite_tree(cfg, ui_port=False))
    port = nginx.port("nginx")
    data = with_ports(shipped("refsuite"), refsuite_ports(tree, free_port, ui=[port]))
    result = check(data, ["server"], cfg)
    ui = result["daemons"]["ui"]
    # named by what it is: the executable (Python here), with the argv[0] it shows
    exe = psutil.Process(nginx.pid("nginx")).exe()
    holder = f"{exe}[{nginx.pid('nginx')}] (argv[0] nginx)"
    assert ui["state"] == "degraded"
    assert ui["problems"] == [f"ui port {port} held by {holder}"]
    assert ui["ports"][0]["listening"] is True and ui["ports"][0]["owned"] is False
    assert ui["ports"][0]["holder"] == holder
    assert result["status"] == "FAILURE" and result["msg"] == f"ui port {port} held by {holder}"

    tree.kill("refsuite-ui")
    result = check(data, ["server"], cfg)
    assert result["msg"] == f"ui offline; ui port {port} held by {holder}"


def test_connected_client_is_counted_with_its_peer_and_closed_ones_are_not(refsuite):
    tree, data, cfg = refsuite
    port = tree.port("refsuite-ui")

    def ui_port() -> dict[str, Any]:
        return check(data, ["server"], cfg, probes=False)["daemons"]["ui"]["ports"][0]

    client = socket.create_connection(("127.0.0.1", port))
    peer = f"127.0.0.1:{client.getsockname()[1]}"
    try:
        seen = wait_for(lambda: ui_port()["clients"] == 1 and ui_port())
        assert seen, "the connected client was not counted"
        assert seen["peers"] == [peer]
        result = check(data, ["server"], cfg, probes=False)
        assert result["summary"]["clients"] == 1
    finally:
        client.close()
    assert wait_for(lambda: ui_port()["clients"] == 0), "a closed client is still counted"

    # the server closes first: its side of the connection (local port = the listened port)
    # goes to TIME_WAIT, which is not a client
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"QUIT\n")
    assert client.recv(10) == b""
    client.close()

    def server_time_wait() -> bool:
        return any(
            c.status == psutil.CONN_TIME_WAIT and c.laddr and c.laddr.port == port
            for c in psutil.net_connections("tcp")
        )

    assert wait_for(server_time_wait, 5), "expected a TIME_WAIT on the server port"
    port_report = ui_port()
    assert port_report["clients"] == 0 and port_report["peers"] == []


def test_ipv6_listener_and_client(impersonate, tmp_path, token):
    tree = impersonate(Proc("smsd", [token], ports=[("::1", 0)]))
    port = tree.port("smsd")
    base = shipped("sysman")
    data = {
        "suite": base["suite"],
        "daemons": [d for d in base["daemons"] if d["name"] == "smsd"],
    }
    data = with_ports(data, {"smsd": [port]})
    client = socket.create_connection(("::1", port))
    try:
        report = wait_for(
            lambda: (
                (r := check(data, ["member"], token))["daemons"]["smsd"]["ports"][0]["clients"]
                and r
            )
        )
        assert report, "the IPv6 client was not counted"
        smsd = report["daemons"]["smsd"]
        assert smsd["state"] == "online", smsd["problems"]
        assert smsd["ports"][0]["addresses"] == ["::1"]
        assert smsd["ports"][0]["owned"] is True
        assert smsd["ports"][0]["peers"] == [f"[::1]:{client.getsockname()[1]}"]
        assert smsd["ports"][0]["probe"] == {"ok": True, "detail": "TCP connect ok"}
    finally:
        client.close()


# ------------------------------------------------------------------------------ matching


def test_processes_that_only_mention_a_daemon_are_not_counted(refsuite, impersonate):
    tree, data, cfg = refsuite
    grep = impersonate.mention("refsuite-stpd", cfg)
    fake = impersonate(Proc("sleep", ["100", "#", "refsuite-stpd", "--config", cfg]))
    assert grep.poll() is None and fake.pids("sleep")
    stpd = check(data, ["server"], cfg)["daemons"]["stpd"]
    assert stpd["pids"] == [tree.pid("refsuite-stpd")] and stpd["count"] == 1
    assert stpd["state"] == "online"
    tree.kill("refsuite-stpd")
    stpd = check(data, ["server"], cfg)["daemons"]["stpd"]
    assert stpd["state"] == "offline" and stpd["pids"] == [] and stpd["count"] == 0


def test_instances_are_told_apart(impersonate, free_port, tmp_path):
    first, second = str(tmp_path / "a.ini"), str(tmp_path / "b.ini")
    tree_a = impersonate(refsuite_tree(first))
    tree_b = impersonate(refsuite_tree(second, stpd=False))
    data_a = with_ports(shipped("refsuite"), refsuite_ports(tree_a, free_port))
    data_b = with_ports(shipped("refsuite"), refsuite_ports(tree_b, free_port))
    a = check(data_a, ["server"], first)
    b = check(data_b, ["server"], second)
    assert a["status"] == "SUCCESS", a["msg"]
    assert a["daemons"]["qm"]["pids"] == [tree_a.pid("refsuite-qm")]
    assert b["daemons"]["qm"]["pids"] == [tree_b.pid("refsuite-qm")]
    assert b["msg"] == "stpd offline"


def test_config_file_overrides_enabled_and_ports(refsuite, impersonate, tmp_path):
    _tree, data, cfg = refsuite
    ctrl = impersonate(Proc("refsuite-ctrl", ["--config", cfg], ports=[0]))
    ini = tmp_path / "override.ini"
    ini.write_text(
        f"[suite]\nrole = server\n[ctrl]\nenabled = true\nport = {ctrl.port('refsuite-ctrl')}\n"
        "[sepuler]\nenabled = false\n"
    )
    result = check(data, ["server"], cfg, config_file=str(ini))
    assert result["daemons"]["sepuler"]["state"] == "unused"
    ctrl_report = result["daemons"]["ctrl"]
    # the ctrl process runs, but not under qm: not an instance (every rule must pass), so ctrl
    # is offline, the process is an impostor and the port it holds is not ctrl's
    pid = ctrl.pid("refsuite-ctrl")
    assert ctrl_report["pids"] == [] and ctrl_report["count"] == 0
    assert [(i["pid"], i["reason"]) for i in ctrl_report["impostors"]] == [
        (pid, "not a descendant of qm")
    ]
    assert ctrl_report["ports"][0]["owned"] is False
    assert ctrl_report["ports"][0]["holders"][0]["pid"] == pid
    assert ctrl_report["ancestry"]["ok"] is False
    assert ctrl_report["state"] == "offline"
    assert ctrl_report["problems"][0].startswith("ctrl offline (named like it but not ctrl: ")


def test_pid_records_in_a_sqlite_store(refsuite, tmp_path):
    tree, data, cfg = refsuite
    db = tmp_path / "state.db"
    qm = psutil.Process(tree.pid("refsuite-qm"))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE daemon_pids(name TEXT PRIMARY KEY, pid INTEGER, start_time REAL,"
            " boot_id TEXT, host TEXT, exe TEXT)"
        )
        conn.execute(
            "INSERT INTO daemon_pids VALUES (?, ?, ?, NULL, NULL, ?)",
            ("qm", qm.pid, qm.create_time(), qm.exe()),
        )
        dead = tree.kill("refsuite-sepuler")
        conn.execute(
            "INSERT INTO daemon_pids VALUES ('sepuler', ?, ?, NULL, NULL, NULL)",
            (dead, time.time() - 100),
        )
    conn.close()
    data = copy.deepcopy(data)
    data["suite"]["pid_store"] = {"type": "sqlite", "path": str(db), "table": "daemon_pids"}
    result = check(data, ["server"], cfg)
    assert result["daemons"]["qm"]["pid_record"]["status"] == "consistent"
    assert result["daemons"]["qm"]["pid_record"]["pid"] == qm.pid
    sepuler = result["daemons"]["sepuler"]
    assert sepuler["state"] == "offline"
    assert sepuler["pid_record"]["status"] == "stale"
    assert sepuler["pid_record"]["pid"] == dead
    assert result["daemons"]["db"]["pid_record"]["status"] == "missing"
    assert result["msg"].startswith("sepuler offline; sepuler pid record stale: ")


# ------------------------------------------------------------------------------ shipped profiles


def sesam_tree(token: str) -> Proc:
    """The Linux process tree of 'SEP sesam Processes' (ps -ef / pstree under sm_qm_main)."""
    t = [token]
    return Proc(
        "/opt/sesam/bin/sesam/sm_qm_main",
        t,
        children=[
            Proc(
                "/bin/sh",
                ["/opt/sesam/bin/sesam/sm_postgres", *t],
                children=[
                    Proc(
                        "su",
                        ["postgres", *t],
                        children=[
                            Proc(
                                "/usr/lib/postgresql/bin/postmaster",
                                ["-D", "/var/opt/sesam/var/db", *t],
                                children=[Proc("/usr/lib/postgresql/bin/postmaster", ["-D", *t])],
                            )
                        ],
                    )
                ],
            ),
            Proc("/opt/sesam/bin/sms/sm_passd", t),
            Proc(
                "/opt/sesam/bin/sms/sm_stpd_main",
                t,
                ports=[0, 0],
                threads=4,
                # the utility child holds the HTTPS port: a descendant of stpd, so owned
                children=[Proc("/opt/sesam/bin/sms//sm_stpd_utl_main", ["0", *t], ports=[0])],
            ),
            Proc("/opt/sesam/bin/sesam/sm_sms_watch", ["0", *t]),
            Proc("/opt/sesam/bin/sesam/sm_sms_watch", ["2", *t]),
            Proc("/opt/sesam/bin/sesam/sm_sepuler", ["-d", *t]),
            Proc("/opt/sesam/bin/sms/sm_sms_main", t),
            Proc(
                "/bin/sh",
                ["/opt/sesam/bin/sesam/sm_rmi_main", *t],
                children=[
                    Proc(
                        "java",
                        [
                            *("-classpath", "/opt/sesam/bin/gui//sm_ui.jar", *t),
                            *("de.sep.sesam.gui.server.GUIServer", "-p11401", "-ren"),
                        ],
                        ports=[0],
                    )
                ],
            ),
            Proc("/opt/sesam/bin/sesam/sm_sshd", t, ports=[0]),
        ],
    )


def test_sesam_server_through_ansible(impersonate, free_port, token, ansible_module):
    tree = impersonate(sesam_tree(token))
    stpd = [p for _unused, p in tree.ports("/opt/sesam/bin/sms/sm_stpd_main")]
    stpd.append(tree.port("/opt/sesam/bin/sms//sm_stpd_utl_main"))
    ports = {
        "rmi": [tree.port("java")],
        "stpd": stpd,
        "ctrl": [free_port()],
        "sshd": [tree.port("/opt/sesam/bin/sesam/sm_sshd")],
    }
    data = with_ports(shipped("sesam"), ports)
    args = {"profile_data": data, "roles": ["server"], "instance": token}
    result = ansible_module("health_info", args)
    assert result["status"] == "SUCCESS", result["msg"]
    daemons = result["daemons"]
    qm = tree.pid("/opt/sesam/bin/sesam/sm_qm_main")
    postmaster = min(tree.pids("/usr/lib/postgresql/bin/postmaster"))
    assert daemons["qm"]["pids"] == [qm]
    assert daemons["db"]["pids"] == [postmaster] and daemons["db"]["count"] == 1
    assert daemons["db"]["ancestry"]["chain"][0] == postmaster
    assert daemons["db"]["ancestry"]["chain"][-1] == qm
    assert len(daemons["db"]["ancestry"]["chain"]) == 4  # postmaster, su, sh sm_postgres, qm
    assert daemons["rmi"]["ports"][0]["owned"] is True
    assert [p["owned"] for p in daemons["stpd"]["ports"]] == [True, True, True]
    assert daemons["sms_watch"]["count"] == 2
    assert daemons["data_server"]["state"] == "online" and daemons["data_server"]["count"] == 0
    assert daemons["ctrl"]["state"] == "unused" and daemons["sds"]["state"] == "unused"
    assert result["status_lines"][0] == f"qm [{qm:>6}]: online"
    assert result["summary"]["online"] == 10 and result["summary"]["unused"] == 2

    tree.kill("/opt/sesam/bin/sms/sm_passd")
    result = ansible_module("health_info", dict(args, roles=["rds"]))
    assert result["status"] == "FAILURE"
    assert result["msg"] == "passd offline"
    assert "rmi" not in result["daemons"]  # a server-only daemon


@pytest.mark.parametrize("suite", ["seon", "os4x"])
def test_seon_and_os4x_receive_daemons(impersonate, free_port, token, suite):
    tree = impersonate(
        [
            Proc(
                f"/opt/{suite}/bin/{suite}rd",
                [token],
                children=[
                    Proc(f"{suite}rd_tcpip", [token], ports=[0]),
                    Proc(f"{suite}rd_tcpip_tls", [token], ports=[0]),
                    Proc(f"{suite}rd_capi_0", [token]),
                ],
            ),
            Proc(f"/opt/{suite}/bin/{suite}sqd", [token]),
            Proc(f"/opt/{suite}/bin/{suite}debugd", [token]),
        ]
    )
    ports = {
        f"{suite}rd_tcpip": [tree.port(f"{suite}rd_tcpip")],
        f"{suite}rd_tcpip_tls": [tree.port(f"{suite}rd_tcpip_tls")],
    }
    data = with_ports(shipped(suite), ports)
    result = check(data, ["server"], token)
    assert result["status"] == "SUCCESS", result["msg"]
    daemons = result["daemons"]
    master = tree.pid(f"/opt/{suite}/bin/{suite}rd")
    tls = tree.pid(f"{suite}rd_tcpip_tls")  # 16 characters: longer than the kernel's comm
    assert len(f"{suite}rd_tcpip_tls") > 15
    assert daemons[f"{suite}rd"]["pids"] == [master]
    assert daemons[f"{suite}rd_tcpip"]["pids"] == [tree.pid(f"{suite}rd_tcpip")]
    assert daemons[f"{suite}rd_tcpip_tls"]["pids"] == [tls]
    assert daemons[f"{suite}rd_tcpip_tls"]["ancestry"]["chain"] == [tls, master]
    assert daemons[f"{suite}rd_tcpip_tls"]["ports"][0]["owned"] is True
    assert daemons[f"{suite}rd_capi"]["count"] == 1
    assert daemons[f"{suite}clientd"]["state"] == "unused"
    assert result["summary"]["online"] == 6

    tree.kill(f"{suite}rd_tcpip_tls")
    result = check(data, ["server"], token)
    assert result["msg"] == f"{suite}rd_tcpip_tls offline"
    assert f"{suite}rd_tcpip_tls : offline" in result["status_lines"]


def test_sysman_member(impersonate, token):
    tree = impersonate(
        [
            Proc("/usr/sbin/esmd", [token], children=[Proc("/usr/sbin/evmd", [token])]),
            Proc("/usr/sbin/smsd", ["-d", token], ports=[0]),
        ]
    )
    data = with_ports(shipped("sysman"), {"smsd": [tree.port("/usr/sbin/smsd")]})
    result = check(data, ["member"], token)
    assert result["status"] == "SUCCESS", result["msg"]
    assert result["status_lines"] == [
        f"esmd [{tree.pid('/usr/sbin/esmd'):>6}]: online",
        f"evmd [{tree.pid('/usr/sbin/evmd'):>6}]: online",
        f"smsd [{tree.pid('/usr/sbin/smsd'):>6}]: online",
    ]
    # a second esmd is refused: only one instance can run
    impersonate(Proc("/usr/sbin/esmd", [token]))
    result = check(data, ["member"], token)
    assert result["daemons"]["esmd"]["state"] == "degraded"
    assert result["daemons"]["esmd"]["count"] == 2
    assert "esmd: 2 instances running" in result["msg"] and "expected at most 1" in result["msg"]


def test_roles_default_to_the_hosts_inventory_groups(refsuite, ansible_module):
    _tree, data, cfg = refsuite
    args = {"profile_data": data, "instance": cfg}
    result = ansible_module("health_info", args, groups=["server", "webservers"], via="playbook")
    assert result.get("failed") is not True, result.get("msg")
    assert result["roles"] == ["server"]
    assert result["status"] == "SUCCESS", result["msg"]


def test_a_compact_profile_injected_by_the_play_is_replaced_by_the_action_plugins(
    refsuite, ansible_module, tmp_path
):
    """The module trusts ``_profile`` without validating it, so only the action plugin may set
    it: a value in the task (here the same suite with stpd matching nothing, which would make
    stpd offline) is replaced by the profile the action plugin validated."""
    tree, data, cfg = refsuite
    wrong = copy.deepcopy(data)
    next(d for d in wrong["daemons"] if d["name"] == "stpd")["match"]["cmdline"] = "^no-such-cmd$"
    args = {
        "profile_data": data,
        "roles": ["server"],
        "instance": cfg,
        "_profile": load_profile(wrong).to_compact(),
    }
    result = ansible_module("health_info", args)
    assert result.get("failed") is not True, result.get("msg")
    assert result["status"] == "SUCCESS", result["msg"]
    assert result["daemons"]["stpd"]["pids"] == [tree.pid("refsuite-stpd")]
    # the same compact profile given to the module directly (no action plugin) is used as is
    direct = run_module_file(TOP / "plugins" / "modules" / "health_info.py", args, tmp_path)
    assert direct.get("failed") is not True, direct.get("msg")
    assert direct["status"] == "FAILURE" and "stpd offline" in direct["msg"], direct["msg"]


def test_the_payload_ships_no_controller_only_code(tmp_path):
    """What Ansible sends to the target for health_info (kept with ANSIBLE_KEEP_REMOTE_FILES):
    the validator for the fallback, but not the deploy validator nor the config module's code."""
    env = dict(
        os.environ,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_KEEP_REMOTE_FILES="1",
        ANSIBLE_REMOTE_TMP=str(tmp_path / "remote"),
    )
    result = run_adhoc(
        "daemonops.suite.health_info", {"profile": "refsuite", "roles": ["server"]}, env=env
    )
    assert result.get("failed") is not True, result.get("msg")
    payloads = list((tmp_path / "remote").rglob("AnsiballZ_health_info.py"))
    assert len(payloads) == 1, payloads
    text = payloads[0].read_text()
    data = base64.b64decode(re.search(r"^zip_data='([^']*)'", text, re.M).group(1))
    names = {
        name.rsplit("/", 1)[-1]
        for name in zipfile.ZipFile(io.BytesIO(data)).namelist()
        if "/module_utils/_suite/" in name
    }
    assert {"health.py", "module_kit.py", "profile.py", "profile_schema.py"} <= names, names
    assert not names & {"deploy.py", "ini_config.py"}, names


def test_a_container_process_is_not_this_hosts_daemon(tmp_path):
    """A process in a nested PID namespace (a container's daemon seen from the host) does not
    count as an instance on this host; the same command line in our namespace does."""
    token = f"nsprobe-{os.getpid()}"
    name = "refsuite-nsprobe"
    profile = load_profile(
        {
            "suite": {"name": "nstest", "roles": ["server"]},
            "daemons": [{"name": "probe", "roles": ["server"], "match": {"cmdline": f"^{name}"}}],
        }
    )
    script = f"exec -a {name}-{token} sleep 300"
    nested = subprocess.Popen(
        ["unshare", "--pid", "--fork", "bash", "-c", script], start_new_session=True
    )
    local = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            named = [
                p
                for p in psutil.process_iter(["cmdline"])
                if (p.info["cmdline"] or [""])[0] == f"{name}-{token}"
            ]
            if len(named) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        found = ProcessTable.scan().matching(profile.daemon("probe"), instance=token)
        assert len(named) == 2, "both the nested and the local process must be running"
        assert [proc.pid for proc in found] == [local.pid]
    finally:
        for proc in (nested, local):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
