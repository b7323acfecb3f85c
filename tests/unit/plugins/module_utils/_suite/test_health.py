# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HealthChecker state computation on fake process and socket tables."""

from __future__ import annotations

import socket
from collections import namedtuple
from typing import Any

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import (
    HealthChecker,
    limit_peers,
    status_line,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.pidstore import PidRecord
from ansible_collections.daemonops.suite.plugins.module_utils._suite.probes import ProbeResult
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
    ProcInfo,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
    Connection,
    SocketTable,
)

NOW = 10_000.0
SELF = 99_999

Addr = namedtuple("Addr", "ip port")
Conn = namedtuple("Conn", "fd family type laddr raddr status pid")


def profile_data() -> dict[str, Any]:
    return {
        "suite": {"name": "sesamlike", "roles": ["server", "rds", "client"]},
        "daemons": [
            {
                "name": "qm",
                "roles": ["server", "rds", "client"],
                "match": {"cmdline": "^sm_qm_main( |$)"},
                "count": {"min": 1, "max": 1},
                "essential": True,
            },
            {
                "name": "db",
                "roles": ["server"],
                "match": {"cmdline": "^postmaster( |$)"},
                "ancestor": "qm",
                "count": {"min": 1, "max": 1},
            },
            {
                "name": "stpd",
                "roles": ["server", "rds"],
                "match": {"cmdline": "^sm_stpd_main( |$)"},
                "ancestor": "qm",
                "ports": [
                    {"port": 11000, "probe": {"type": "http", "path": "/"}},
                    {"port": 11001},
                ],
            },
            {
                "name": "ui",
                "roles": ["server"],
                "match": {"cmdline": "^sm_ui( |$)"},
                "ports": [{"port": 11401}],
            },
            {
                "name": "ctrl",
                "roles": ["server", "client"],
                "match": {"cmdline": "^sm_ctrld_main( |$)"},
                "ports": [{"port": 11301}],
                "enabled": False,
            },
            {
                "name": "data_server",
                "roles": ["server"],
                "match": {"cmdline": "^sm_data_server( |$)"},
                "ancestor": "qm",
                "count": {"min": 2},
            },
        ],
    }


PROFILE = load_profile(profile_data(), "test")


def P(pid, ppid, *argv, create_time=None, status="sleeping"):
    return ProcInfo(
        pid=pid,
        ppid=ppid,
        name=argv[0][:15] if argv else "",
        cmdline=tuple(argv),
        exe="/usr/bin/x",
        create_time=float(1000 + pid) if create_time is None else create_time,
        status=status,
        username="root",
    )


def healthy_procs() -> list[ProcInfo]:
    return [
        P(1, 0, "/sbin/init"),
        P(100, 1, "sm_qm_main"),
        P(110, 100, "sm_postgres"),
        P(111, 110, "su"),
        P(112, 111, "postmaster", "-D", "/var/db"),
        P(113, 112, "postmaster", "-D", "/var/db"),  # forked backend: part of the instance
        P(120, 100, "sm_stpd_main", "-D"),
        P(121, 120, "sm_stpd_utl_main", "0"),
        P(130, 100, "sm_ui"),
        P(140, 100, "sm_data_server", "2"),
        P(141, 100, "sm_data_server", "3"),
        P(812, 1, "nginx: master process"),
        P(900, 1, "sshd"),
        P(901, 900, "ssh-client"),
    ]


def listen(port, pid, ip="0.0.0.0", family=socket.AF_INET):
    return Conn(3, family, socket.SOCK_STREAM, Addr(ip, port), (), "LISTEN", pid)


def established(port, peer_port, pid, status="ESTABLISHED"):
    return Conn(
        3,
        socket.AF_INET,
        socket.SOCK_STREAM,
        Addr("127.0.0.1", port),
        Addr("127.0.0.1", peer_port),
        status,
        pid,
    )


def healthy_sockets() -> list[Conn]:
    return [
        listen(11000, 120),
        listen(11001, 121),  # the utl child holds it: a descendant of stpd counts
        listen(11401, 130),
        listen(11401, 130, "::", socket.AF_INET6),
        established(11401, 50001, 130),
        established(11401, 50002, 130),
        established(11401, 50003, 130, "TIME_WAIT"),
        established(11000, 50004, None, "CLOSE_WAIT"),
    ]


def check(
    procs=None,
    socks=None,
    roles=("server",),
    probe_ok=True,
    probe_calls=None,
    **kwargs,
) -> dict[str, Any]:
    def probe_runner(spec, host, port, timeout):
        if probe_calls is not None:
            probe_calls.append((spec["type"], host, port, timeout))
        return ProbeResult(probe_ok, "HTTP 200" if probe_ok else "HTTP 500, expected 200")

    table = ProcessTable(healthy_procs() if procs is None else procs, self_pid=SELF)
    sockets = SocketTable.from_entries(healthy_sockets() if socks is None else socks)
    kwargs.setdefault("profile", PROFILE)
    return HealthChecker(
        roles=list(roles),
        hostname="backupsrv",
        proc_table=table,
        socket_table=sockets,
        probe_runner=probe_runner,
        now=NOW,
        **kwargs,
    ).run()


def test_all_online():
    calls: list = []
    result = check(probe_calls=calls)
    assert result["status"] == "SUCCESS"
    assert result["msg"] == "All daemons online"
    assert result["changed"] is False
    assert result["profile"] == "sesamlike" and result["host"] == "backupsrv"
    assert result["roles"] == ["server"]
    assert result["status_lines"] == [
        "qm [   100]: online",
        "db [   112]: online",
        "stpd [   120]: online",
        "ui [   130]: online",
        "ctrl : unused",
        "data_server [   140]: online",
    ]
    assert result["summary"] == {
        "total": 6,
        "online": 5,
        "offline": 0,
        "degraded": 0,
        "unused": 1,
        "clients": 2,
    }
    assert list(result["daemons"]) == ["qm", "db", "stpd", "ui", "ctrl", "data_server"]
    qm = result["daemons"]["qm"]
    assert qm["essential"] is True and qm["ancestry"] is None
    assert qm["start_time"] == 1100.0 and qm["uptime"] == NOW - 1100.0
    db = result["daemons"]["db"]
    assert db["pids"] == [112] and db["count"] == 1  # the forked backend 113 is not an instance
    assert db["ancestry"] == {"expected": "qm", "ok": True, "chain": [112, 111, 110, 100]}
    stpd = result["daemons"]["stpd"]
    assert stpd["ports"] == [
        {
            "port": 11000,
            "listening": True,
            "owned": True,
            "holder": None,
            "addresses": ["0.0.0.0"],
            "clients": 0,
            "peers": [],
            "peers_truncated": False,
            "probe": {"ok": True, "detail": "HTTP 200"},
            "holders": [],
        },
        {
            "port": 11001,
            "listening": True,
            "owned": True,
            "holder": None,
            "addresses": ["0.0.0.0"],
            "clients": 0,
            "peers": [],
            "peers_truncated": False,
            "probe": None,
            "holders": [],
        },
    ]
    assert calls == [("http", "127.0.0.1", 11000, 5.0)]  # the profile's default timeout
    ui = result["daemons"]["ui"]["ports"][0]
    assert ui["addresses"] == ["0.0.0.0", "::"]
    assert (ui["clients"], ui["peers"]) == (2, ["127.0.0.1:50001", "127.0.0.1:50002"])
    assert result["daemons"]["data_server"]["expected_count"] == {"min": 2, "max": None}
    assert result["daemons"]["ctrl"]["problems"] == [] and result["daemons"]["ctrl"]["pids"] == []
    for daemon in result["daemons"].values():
        assert daemon["pid_record"]["status"] == "not_applicable"


def test_offline_daemon_is_named_and_fails():
    procs = [p for p in healthy_procs() if p.pid != 120]
    socks = [s for s in healthy_sockets() if s.laddr.port != 11000]
    result = check(procs, socks)
    stpd = result["daemons"]["stpd"]
    assert result["status"] == "FAILURE"
    # the utl child still holds 11001 but is not a descendant of a running stpd any more
    assert stpd["state"] == "offline"
    # held by what it is: its executable, with argv[0] next to it
    utl = "/usr/bin/x[121] (argv[0] sm_stpd_utl_main)"
    assert stpd["problems"] == ["stpd offline", f"stpd port 11001 held by {utl}"]
    assert result["msg"] == f"stpd offline; stpd port 11001 held by {utl}"
    assert stpd["ports"][1]["holders"] == [
        {
            "pid": 121,
            "exe": "/usr/bin/x",
            "exe_deleted": False,
            "comm": "sm_stpd_utl_mai",
            "argv0": "sm_stpd_utl_main",
        }
    ]
    assert "stpd : offline" in result["status_lines"]
    assert stpd["pids"] == [] and stpd["start_time"] is None and stpd["uptime"] is None
    assert stpd["ancestry"] == {"expected": "qm", "ok": None, "chain": []}
    assert result["summary"]["offline"] == 1 and result["summary"]["online"] == 4


def test_port_held_by_another_process_degrades_and_names_the_holder():
    socks = [s for s in healthy_sockets() if s.laddr.port != 11401] + [listen(11401, 812)]
    result = check(socks=socks)
    ui = result["daemons"]["ui"]
    assert ui["state"] == "degraded"
    nginx = "/usr/bin/x[812] (argv[0] nginx: master process)"
    assert ui["problems"] == [f"ui port 11401 held by {nginx}"]
    assert ui["ports"][0]["owned"] is False and ui["ports"][0]["holder"] == nginx
    assert result["msg"] == f"ui port 11401 held by {nginx}"
    assert "ui [   130]: degraded" in result["status_lines"]


def test_port_also_held_and_unseen_holder():
    socks = [*healthy_sockets(), listen(11401, None, "10.0.0.1")]
    ui = check(socks=socks)["daemons"]["ui"]
    assert ui["state"] == "degraded"
    assert ui["ports"][0]["owned"] is True
    assert ui["problems"] == [
        "ui port 11401 also held by a process this user cannot see (run with become)"
    ]


def test_port_not_listening():
    socks = [s for s in healthy_sockets() if s.laddr.port != 11401]
    ui = check(socks=socks)["daemons"]["ui"]
    assert ui["state"] == "degraded"
    assert ui["problems"] == ["ui port 11401 not listening"]
    assert ui["ports"][0]["listening"] is False and ui["ports"][0]["clients"] == 0


def test_failed_probe_degrades():
    result = check(probe_ok=False)
    assert result["daemons"]["stpd"]["problems"] == [
        "stpd port 11000 probe failed: HTTP 500, expected 200"
    ]
    assert result["daemons"]["stpd"]["state"] == "degraded"


def test_probes_off():
    calls: list = []
    result = check(probe_ok=False, probe_calls=calls, probes=False)
    assert result["status"] == "SUCCESS" and calls == []
    assert result["daemons"]["stpd"]["ports"][0]["probe"] is None


def test_instance_count_outside_range():
    too_few = [p for p in healthy_procs() if p.pid != 141]
    result = check(too_few)
    assert result["daemons"]["data_server"]["problems"] == [
        "data_server: 1 instance(s) running, expected at least 2"
    ]
    assert result["daemons"]["data_server"]["state"] == "degraded"
    two_masters = [*healthy_procs(), P(200, 1, "sm_qm_main")]
    qm = check(two_masters)["daemons"]["qm"]
    assert qm["state"] == "degraded" and qm["count"] == 2 and qm["pids"] == [100, 200]
    assert qm["problems"] == [
        "qm: 2 instances running (sm_qm_main[100], sm_qm_main[200]), expected at most 1"
    ]


def test_wrong_ancestry():
    procs = [p for p in healthy_procs() if p.pid != 141] + [P(141, 1, "sm_data_server", "3")]
    ds = check(procs)["daemons"]["data_server"]
    # a process outside qm's tree is not an instance: not counted, reported as an impostor
    assert ds["state"] == "degraded" and ds["pids"] == [140] and ds["count"] == 1
    assert ds["ancestry"] == {"expected": "qm", "ok": True, "chain": [140, 100]}
    assert ds["problems"] == ["data_server: 1 instance(s) running, expected at least 2"]
    assert ds["impostors"] == [
        {
            "pid": 141,
            "exe": "/usr/bin/x",
            "exe_deleted": False,
            "comm": "sm_data_server",
            "argv0": "sm_data_server",
            "reason": "not a descendant of qm",
        }
    ]
    no_qm = [p for p in procs if p.pid != 100]
    ds = check(no_qm)["daemons"]["data_server"]
    assert ds["state"] == "offline" and ds["count"] == 0
    assert ds["ancestry"] == {"expected": "qm", "ok": False, "chain": [140, 100]}  # 100 gone
    assert [i["reason"] for i in ds["impostors"]] == ["not a descendant of qm (qm not running)"] * 2
    assert ds["problems"][0].startswith("data_server offline (named like it but not data_server: ")


def test_count_min_zero_is_online_without_process():
    data = profile_data()
    data["daemons"][5]["count"] = {"min": 0}
    procs = [p for p in healthy_procs() if p.pid not in (140, 141)]
    result = check(procs, profile=load_profile(data, "t"))
    assert result["daemons"]["data_server"]["state"] == "online"
    assert "data_server : online" in result["status_lines"]
    assert result["status"] == "SUCCESS"


def test_roles_select_daemons_and_bad_roles_are_refused():
    result = check(roles=["client"])
    assert list(result["daemons"]) == ["qm", "ctrl"]
    with pytest.raises(SuiteError, match=r"^roles: no role given"):
        check(roles=[])
    with pytest.raises(SuiteError, match=r"^roles: backup not a role of suite sesamlike"):
        check(roles=["server", "backup"])


def test_instance_filter():
    procs = [*healthy_procs(), P(300, 1, "sm_qm_main", "--config", "/etc/b.ini")]
    result = check(procs, instance="/etc/b.ini", roles=["client"])
    assert result["daemons"]["qm"]["pids"] == [300]
    assert result["instance"] == "/etc/b.ini"


def test_config_file_enables_and_moves_ports(tmp_path):
    ini = tmp_path / "suite.ini"
    ini.write_text("[ctrl]\nenabled = true\nport = 12301\n[ui]\nenabled = false\n")
    socks = [*healthy_sockets(), listen(12301, 150)]
    procs = [*healthy_procs(), P(150, 100, "sm_ctrld_main")]
    result = check(procs, socks, config_file=str(ini))
    assert result["daemons"]["ui"]["state"] == "unused"
    assert result["daemons"]["ui"]["problems"] == []
    ctrl = result["daemons"]["ctrl"]
    assert ctrl["state"] == "online" and ctrl["ports"][0]["port"] == 12301
    assert ctrl["ports"][0]["owned"] is True
    assert "ctrl [   150]: online" in result["status_lines"]
    # the suite's own config_file is read the same way
    data = profile_data()
    data["suite"]["config_file"] = str(ini)
    result = check(procs, socks, profile=load_profile(data, "t"))
    assert result["daemons"]["ui"]["state"] == "unused"
    with pytest.raises(SuiteError, match=r"^config_file: .*missing.ini is not a readable file"):
        check(config_file=str(tmp_path / "missing.ini"))


def test_socket_table_unavailable_is_reported_not_hidden():
    table = ProcessTable(healthy_procs(), self_pid=SELF)
    result = HealthChecker(
        PROFILE,
        ["server"],
        proc_table=table,
        socket_table=SocketTable.unavailable("cannot read the socket table (AccessDenied)"),
        now=NOW,
    ).run()
    assert result["status"] == "FAILURE"
    ui = result["daemons"]["ui"]
    assert ui["ports"][0]["listening"] is None and ui["ports"][0]["owned"] is None
    assert ui["problems"] == [
        "ui port 11401 not checked: cannot read the socket table (AccessDenied)"
    ]
    assert result["warnings"] == ["ports not checked: cannot read the socket table (AccessDenied)"]
    assert result["daemons"]["qm"]["state"] == "online"


def record(name, pid, start_time=None):
    return PidRecord(name=name, raw_pid=str(pid), pid=pid, source="test", start_time=start_time)


def test_pid_records_are_judged(tmp_path):
    data = profile_data()
    data["suite"]["pid_store"] = {"type": "sqlite", "path": str(tmp_path / "s.db"), "table": "t"}
    profile = load_profile(data, "t")
    records = [
        record("qm", 100, 1100.0),  # the running qm, same start time
        record("stpd", 4242, 500.0),  # no such process
        record("ui", 812, 1812.0),  # alive, but nginx: not a ui process
        record("data_server.1", 140, 1140.0),
        record("data_server.2", 141, 1141.0),
    ]
    result = check(profile=profile, records=records)
    daemons = result["daemons"]
    assert daemons["qm"]["pid_record"]["status"] == "consistent"
    assert daemons["qm"]["pid_record"]["pid"] == 100
    assert daemons["stpd"]["pid_record"]["status"] == "stale"
    assert daemons["stpd"]["state"] == "degraded"
    assert daemons["stpd"]["problems"][0].startswith("stpd pid record stale: no process with")
    assert daemons["ui"]["pid_record"]["status"] == "invalid"
    assert "not a process of ui" in daemons["ui"]["pid_record"]["reason"]
    assert daemons["db"]["pid_record"] == {
        "status": "missing",
        "pid": None,
        "reason": "no record in the PID store",
    }
    assert daemons["db"]["state"] == "online"
    assert daemons["data_server"]["pid_record"]["status"] == "consistent"
    assert daemons["ctrl"]["pid_record"]["status"] == "missing"
    assert daemons["ctrl"]["state"] == "unused"
    off = check(profile=profile, records=records, pid_records=False)["daemons"]["stpd"]
    assert off["pid_record"]["status"] == "not_applicable" and off["state"] == "online"


def test_unreadable_pid_store_is_unknown_not_an_error(tmp_path):
    data = profile_data()
    data["suite"]["pid_store"] = {"type": "sqlite", "path": str(tmp_path / "none.db"), "table": "t"}
    result = check(profile=load_profile(data, "t"))
    assert result["daemons"]["qm"]["pid_record"]["status"] == "unknown"
    assert result["daemons"]["qm"]["pid_record"]["reason"].startswith("cannot read the PID store")
    assert result["status"] == "SUCCESS"


def test_zombies_and_mentions_do_not_count():
    procs = [p for p in healthy_procs() if p.pid != 130] + [
        P(130, 100, "sm_ui", status="zombie"),
        P(131, 1, "grep", "sm_ui"),
        P(132, 1, "sleep", "100", "#", "sm_ui"),
    ]
    socks = [s for s in healthy_sockets() if s.laddr.port != 11401]
    ui = check(procs, socks)["daemons"]["ui"]
    assert ui["state"] == "offline" and ui["pids"] == []


def test_status_line_format():
    assert status_line("qm", "online", 2859) == "qm [  2859]: online"
    assert status_line("sms", "online", 108992) == "sms [108992]: online"
    assert status_line("ui", "unused", None) == "ui : unused"
    assert status_line("stpd", "offline", None) == "stpd : offline"


def conn(peer: str, pid: int = 7):
    return Connection(port=11000, address="0.0.0.0", peer=peer, family="ipv4", pid=pid)


def test_limit_peers_counts_every_peer_and_lists_at_most_the_limit():
    conns = [conn(f"10.0.0.{n}:5000") for n in (9, 3, 5, 1)]
    conns.append(conn("10.0.0.3:5000", pid=8))  # the same peer seen from another process
    assert limit_peers(conns, -1) == (
        4,
        ["10.0.0.1:5000", "10.0.0.3:5000", "10.0.0.5:5000", "10.0.0.9:5000"],
        False,
    )
    assert limit_peers(conns, 4) == limit_peers(conns, -1)
    assert limit_peers(conns, 2) == (4, ["10.0.0.3:5000", "10.0.0.9:5000"], True)  # first met
    assert limit_peers(conns, 0) == (4, [], True)
    assert limit_peers([], 0) == (0, [], False)


@pytest.mark.parametrize("bad", [-2, 1.5, True, "5"])
def test_a_bad_peers_limit_is_refused_naming_the_option(bad):
    with pytest.raises(SuiteError, match=r"^peers_limit: .* -1 to list every peer"):
        HealthChecker(PROFILE, ["server"], peers_limit=bad)


def test_peers_limit_cuts_the_listed_peers_not_the_client_count():
    socks = [*healthy_sockets(), *(established(11401, 40000 + n, 130) for n in range(1, 8))]
    ui = check(socks=socks)["daemons"]["ui"]["ports"][0]
    assert (ui["clients"], len(ui["peers"]), ui["peers_truncated"]) == (9, 9, False)
    result = check(socks=socks, peers_limit=3)
    ui = result["daemons"]["ui"]["ports"][0]
    assert (ui["clients"], len(ui["peers"]), ui["peers_truncated"]) == (9, 3, True)
    assert result["summary"]["clients"] == 9
