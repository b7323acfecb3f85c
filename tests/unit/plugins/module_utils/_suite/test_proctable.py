# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
    ProcInfo,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

PROFILE = load_profile(
    {
        "suite": {"name": "t", "roles": ["server"]},
        "daemons": [
            {"name": "qm", "roles": ["server"], "match": {"cmdline": "^sm_qm_main( |$)"}},
            {
                "name": "stpd",
                "roles": ["server"],
                "match": {"cmdline": "^(\\S*/)?sm_stpd_main( |$)"},
            },
            {
                "name": "tls",
                "roles": ["server"],
                "match": {"cmdline": "^seonrd_tcpip_tls( |$)"},
            },
        ],
    },
    "test",
)
QM, STPD, TLS = (PROFILE.daemon(n) for n in ("qm", "stpd", "tls"))


def proc(pid, ppid, *argv, status="sleeping", create_time=None, name=None, exe="/usr/bin/x"):
    return ProcInfo(
        pid=pid,
        ppid=ppid,
        name=name if name is not None else (os.path.basename(argv[0])[:15] if argv else ""),
        cmdline=tuple(argv),
        exe=exe,
        create_time=float(pid) if create_time is None else create_time,
        status=status,
        username="root",
    )


def table(*procs, self_pid=900):
    return ProcessTable(procs, self_pid=self_pid)


def test_anchored_match_ignores_processes_that_only_mention_the_name():
    procs = table(
        proc(1, 0, "/sbin/init"),
        proc(10, 1, "sm_qm_main"),
        proc(11, 10, "/opt/sesam/bin/sms/sm_stpd_main", "-D"),
        proc(20, 1, "grep", "--color=auto", "sm_stpd_main"),
        proc(21, 1, "sleep", "100", "#", "sm_stpd_main"),
        proc(22, 1, "/bin/sh", "-c", "sm_stpd_main -D"),
        proc(23, 1, "sm_stpd_main_old"),
        proc(24, 1, "vi", "/opt/sesam/bin/sms/sm_stpd_main"),
    )
    assert [p.pid for p in procs.matching(STPD)] == [11]
    assert [p.pid for p in procs.matching(QM)] == [10]


def test_long_names_match_on_the_full_cmdline_not_the_15_char_comm():
    procs = table(proc(30, 1, "seonrd_tcpip_tls", name="seonrd_tcpip_tl"))
    matched = procs.matching(TLS)
    assert [p.pid for p in matched] == [30]
    assert matched[0].display_name == "seonrd_tcpip_tls"
    assert matched[0].label == "seonrd_tcpip_tls[30]"


def test_excludes_self_its_ancestors_and_zombies():
    procs = table(
        proc(1, 0, "/sbin/init"),
        proc(500, 1, "sm_qm_main", "--pretend"),  # an ancestor of the module: excluded
        proc(600, 500, "/bin/sh", "-c", "python AnsiballZ_health_info.py"),
        proc(900, 600, "sm_qm_main", "self"),  # the module's own process: excluded
        proc(40, 1, "sm_qm_main", status="zombie"),
        proc(41, 1, "sm_qm_main"),
    )
    assert procs.excluded == {900, 600, 500, 1}
    assert [p.pid for p in procs.matching(QM)] == [41]


def test_instance_must_appear_in_cmdline_and_order_is_by_start_time():
    procs = table(
        proc(50, 1, "sm_qm_main", "--config", "/etc/a.ini", create_time=300.0),
        proc(51, 1, "sm_qm_main", "--config", "/etc/b.ini", create_time=100.0),
        proc(52, 1, "sm_qm_main", "--config", "/etc/a.ini", create_time=200.0),
    )
    assert [p.pid for p in procs.matching(QM)] == [51, 52, 50]
    assert [p.pid for p in procs.matching(QM, "/etc/a.ini")] == [52, 50]
    assert procs.matching(QM, "/etc/c.ini") == []


def test_ancestors_children_descendants_and_loops():
    procs = table(
        proc(1, 0, "/sbin/init"),
        proc(10, 1, "sm_qm_main"),
        proc(11, 10, "sm_postgres"),
        proc(12, 11, "su"),
        proc(13, 12, "postmaster"),
        proc(70, 71, "a"),  # a loop (cannot happen, must not hang)
        proc(71, 70, "b"),
    )
    assert procs.ancestors(13) == [12, 11, 10, 1]
    assert procs.ancestors(1) == []
    assert procs.ancestors(4242) == []
    assert procs.ancestors(70) == [71]
    assert procs.children(10) == [11]
    assert procs.is_descendant_or_self(13, [10])
    assert procs.is_descendant_or_self(10, [10])
    assert not procs.is_descendant_or_self(10, [13])
    assert procs.get(12).name == "su"
    assert procs.get(None) is None
    assert 13 in procs and 14 not in procs
    assert len(procs) == 7


def test_display_name_falls_back_to_name():
    assert proc(5, 1, name="kworker/0:1").display_name == "kworker/0:1"
    assert proc(5, 1, "/usr/sbin/nginx: master process").display_name == "nginx:"
    assert proc(5, 1, "nginx: worker").label == "nginx:[5]"
    empty = ProcInfo.from_info({"pid": 7, "ppid": None, "name": None, "cmdline": None})
    assert empty.cmdline == () and empty.display_name == "?" and empty.cmdline_str == ""


def test_scan_reads_the_real_process_table():
    procs = ProcessTable.scan()
    me = procs.get(os.getpid())
    assert me is not None
    assert me.cmdline and me.create_time and me.ppid == os.getppid()
    assert os.getpid() in procs.excluded and os.getppid() in procs.excluded
    assert procs.ancestors(os.getpid())[0] == os.getppid()
    assert len(procs) > 1


@pytest.mark.parametrize("status", ["zombie"])
def test_zombie_flag(status):
    assert proc(3, 1, "x", status=status).is_zombie
