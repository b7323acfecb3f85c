# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional

import psutil
import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import identity
from ansible_collections.daemonops.suite.plugins.module_utils._suite.pidstore import PidRecord
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

HOST = identity.HostFacts(hostname="node1.example.com", boot_id="boot-now")
PROFILE = load_profile(
    {
        "suite": {"name": "t", "roles": ["server"]},
        "daemons": [
            {"name": "qm", "roles": ["server"], "match": {"cmdline": "^refsuite-qm( |$)"}},
            {
                "name": "sms",
                "roles": ["server"],
                "match": {"cmdline": "^refsuite-sms( |$)", "exe": "/python[0-9.]*$"},
            },
            {"name": "data_server", "roles": ["server"], "match": {"cmdline": "^refsuite-data"}},
        ],
    },
    "test",
)
QM = PROFILE.daemon("qm")
SMS = PROFILE.daemon("sms")


@dataclass
class FakeProc:
    """Duck-typed proctable.ProcInfo."""

    pid: int
    cmdline: tuple
    exe: Optional[str] = "/usr/bin/python3"
    create_time: Optional[float] = 1000.0
    status: Optional[str] = "sleeping"


class FakeTable:
    def __init__(self, *procs: FakeProc) -> None:
        self.procs = {proc.pid: proc for proc in procs}

    def get(self, pid):
        return self.procs.get(pid)


def record(pid=4242, **kw) -> PidRecord:
    fields = {"name": "qm", "raw_pid": str(pid), "pid": pid, "source": "test"}
    fields.update(kw)
    return PidRecord(**fields)


def judge(rec, daemon=QM, *procs, instance=None):
    return identity.judge(rec, daemon, FakeTable(*procs), instance=instance, host=HOST)


def test_gone_process_is_stale():
    verdict = judge(record())
    assert verdict.status == "stale"
    assert "no process with PID 4242" in verdict.reason


def test_zombie_is_stale():
    proc = FakeProc(4242, ("refsuite-qm",), status="zombie")
    assert judge(record(), QM, proc).status == "stale"


def test_pid_only_record_of_matching_daemon_is_live():
    proc = FakeProc(4242, ("refsuite-qm", "--config", "/etc/a.ini"))
    verdict = judge(record(), QM, proc)
    assert verdict == identity.Verdict("live", verdict.reason)
    assert "matches daemon 'qm'" in verdict.reason


def test_pid_only_record_reused_by_other_program_is_stale():
    proc = FakeProc(4242, ("sleep", "300"), exe="/usr/bin/sleep")
    verdict = judge(record(), QM, proc)
    assert verdict.status == "stale"
    assert "sleep 300" in verdict.reason and "does not match" in verdict.reason


def test_pid_only_record_of_other_instance_is_stale():
    proc = FakeProc(4242, ("refsuite-qm", "--config", "/etc/b.ini"))
    assert judge(record(), QM, proc, instance="/etc/a.ini").status == "stale"
    assert judge(record(), QM, proc, instance="/etc/b.ini").status == "live"


def test_exe_rule_applies_only_when_exe_is_readable():
    wrong_exe = FakeProc(4242, ("refsuite-sms",), exe="/usr/bin/perl")
    assert judge(record(name="sms"), SMS, wrong_exe).status == "stale"
    unreadable = FakeProc(4242, ("refsuite-sms",), exe=None)
    assert judge(record(name="sms"), SMS, unreadable).status == "live"


def test_start_time_within_tolerance_is_live():
    proc = FakeProc(4242, ("anything",), create_time=1000.9)
    verdict = judge(record(start_time=1000.0), QM, proc)
    assert verdict.status == "live"


def test_start_time_beyond_tolerance_is_stale():
    proc = FakeProc(4242, ("refsuite-qm",), create_time=1001.2)
    verdict = judge(record(start_time=1000.0), QM, proc)
    assert verdict.status == "stale"
    assert "reused" in verdict.reason


def test_start_time_unreadable_is_unknown():
    proc = FakeProc(4242, ("refsuite-qm",), create_time=None)
    assert judge(record(start_time=1000.0), QM, proc).status == "unknown"


def test_recorded_exe_differs_is_stale_even_with_right_start_time():
    proc = FakeProc(4242, ("refsuite-qm",), exe="/usr/bin/bash", create_time=1000.0)
    rec = record(start_time=1000.0, exe="/usr/bin/python3")
    verdict = judge(rec, QM, proc)
    assert verdict.status == "stale" and "/usr/bin/bash" in verdict.reason


def test_recorded_exe_deleted_suffix_is_same_program():
    proc = FakeProc(4242, ("refsuite-qm",), exe="/usr/bin/python3 (deleted)")
    assert judge(record(exe="/usr/bin/python3"), QM, proc).status == "live"


def test_recorded_exe_unreadable_is_unknown():
    proc = FakeProc(4242, ("refsuite-qm",), exe=None)
    assert judge(record(exe="/usr/bin/python3"), QM, proc).status == "unknown"


def test_other_boot_is_stale_without_looking_at_the_pid():
    verdict = judge(record(boot_id="boot-before"), QM)
    assert verdict.status == "stale" and "another boot" in verdict.reason


def test_record_of_another_host_is_unknown():
    proc = FakeProc(4242, ("sleep", "300"))
    verdict = judge(record(host="node2"), QM, proc)
    assert verdict.status == "unknown" and "node2" in verdict.reason
    assert judge(record(host="NODE1"), QM, proc).status == "stale"  # short name, any case


def test_invalid_and_refused_records_are_never_looked_up():
    class Exploding:
        def get(self, pid):
            raise AssertionError("an invalid record must not be looked up")

    invalid = record(pid=None, raw_pid="-1", invalid_reason="PID -1 is not a process id")
    verdict = identity.judge(invalid, QM, Exploding(), host=HOST)
    assert verdict.status == "invalid" and "-1" in verdict.reason
    refused = record(pid=None, raw_pid=None, error="refused: pidfile is a symlink (insecure)")
    assert identity.judge(refused, QM, Exploding(), host=HOST).status == "unknown"


def test_pid_only_record_without_daemon_is_unknown():
    proc = FakeProc(4242, ("sleep", "300"))
    assert judge(record(name="ghost"), None, proc).status == "unknown"


def test_daemon_for_maps_instance_suffixes():
    daemons = {d.name: d for d in PROFILE.daemons}
    assert identity.daemon_for("qm", daemons) is QM
    assert identity.daemon_for("data_server.1", daemons).name == "data_server"
    assert identity.daemon_for("data_server_2", daemons).name == "data_server"
    assert identity.daemon_for("qmx", daemons) is None
    assert identity.daemon_for("unknown", daemons) is None


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(
        ["refsuite-qm", "-c", "import time; time.sleep(60)"], executable=sys.executable
    )
    yield proc
    proc.kill()
    proc.wait()


def test_psutil_facts_of_a_real_process(sleeper):
    for _unused in range(50):  # wait until the exec has happened
        if psutil.Process(sleeper.pid).cmdline()[:1] == ["refsuite-qm"]:
            break
        time.sleep(0.02)
    created = psutil.Process(sleeper.pid).create_time()
    rec = record(pid=sleeper.pid, start_time=created, exe=os.path.realpath(sys.executable))
    assert identity.judge(rec, QM).status == "live"
    assert identity.judge(record(pid=sleeper.pid), QM).status == "live"
    other = record(pid=sleeper.pid, name="sms")
    assert identity.judge(other, SMS).status == "stale"
    assert identity.judge(record(pid=sleeper.pid, start_time=created - 5), QM).status == "stale"


# ----------------------------------------------------------------------------- boot-relative starts


@dataclass
class TickProc(FakeProc):
    start_ticks: Optional[int] = 5000


def test_same_start_ticks_is_live_whatever_the_wall_clock_says():
    # the wall clock was stepped an hour: create_time moved, the ticks since boot did not
    proc = TickProc(4242, ("refsuite-qm",), create_time=4600.0, start_ticks=5000)
    rec = record(start_time=1000.0, start_ticks=5000, boot_id="boot-now")
    verdict = judge(rec, QM, proc)
    assert verdict.status == "live", verdict.reason


def test_other_start_ticks_is_stale_even_with_the_same_epoch_start():
    proc = TickProc(4242, ("refsuite-qm",), create_time=1000.0, start_ticks=5001)
    verdict = judge(record(start_time=1000.0, start_ticks=5000, boot_id="boot-now"), QM, proc)
    assert verdict.status == "stale"
    assert "started 5001 clock ticks after boot, the record says 5000" in verdict.reason


def test_start_ticks_of_another_boot_are_never_compared():
    proc = TickProc(4242, ("refsuite-qm",), start_ticks=5000)
    verdict = judge(record(start_ticks=5000, boot_id="boot-before"), QM, proc)
    assert verdict.status == "stale" and "another boot" in verdict.reason


def test_start_ticks_without_a_boot_id_are_compared():
    proc = TickProc(4242, ("refsuite-qm",), start_ticks=7)
    assert judge(record(start_ticks=7), QM, proc).status == "live"
    assert judge(record(start_ticks=8), QM, proc).status == "stale"


def test_unreadable_ticks_fall_back_to_the_epoch_start_or_unknown():
    proc = TickProc(4242, ("refsuite-qm",), create_time=1000.5, start_ticks=None)
    assert judge(record(start_time=1000.0, start_ticks=5000), QM, proc).status == "live"
    assert judge(record(start_ticks=5000), QM, proc).status == "unknown"


def test_old_form_record_is_still_judged_on_its_epoch_start():
    proc = TickProc(4242, ("refsuite-qm",), create_time=1003.0, start_ticks=5000)
    verdict = judge(record(start_time=1000.0, boot_id="boot-now"), QM, proc)
    assert verdict.status == "stale" and "(+3.0 s)" in verdict.reason


def test_a_record_with_ticks_is_not_only_a_pid():
    assert not record(start_ticks=1).only_pid and record().only_pid


# ----------------------------------------------------------------------------- process rules

RULES = load_profile(
    {
        "suite": {"name": "t", "roles": ["s"]},
        "daemons": [
            {
                "name": "master",
                "roles": ["s"],
                "match": {"cmdline": "^master( |$)", "exe": "^/opt/t/bin/master$", "user": "root"},
            },
            {
                "name": "worker",
                "roles": ["s"],
                "match": {"cmdline": "^worker( |$)", "user": 0},
                "ancestor": "master",
            },
        ],
    },
    "test",
)
MASTER, WORKER = RULES.daemon("master"), RULES.daemon("worker")


@dataclass
class RuleProc:
    pid: int
    ppid: int
    cmdline: tuple
    exe: Optional[str] = "/opt/t/bin/master"
    uid: Optional[int] = 0
    username: Optional[str] = "root"
    exe_read: bool = True
    exe_deleted: bool = False
    comm: str = "x"

    @property
    def identity(self) -> dict:
        return {"pid": self.pid, "exe": self.exe, "comm": self.comm}


class RuleTable:
    def __init__(self, *procs: RuleProc) -> None:
        self.procs = {proc.pid: proc for proc in procs}

    def named(self, daemon, instance=None):
        return [p for p in self.procs.values() if daemon.matches(p.cmdline, None, instance)]

    def ancestors(self, pid):
        chain, proc = [], self.procs.get(pid)
        while proc is not None and proc.ppid:
            chain.append(proc.ppid)
            proc = self.procs.get(proc.ppid)
        return chain


def test_rule_failure_names_the_failing_rule():
    ok = RuleProc(10, 1, ("master",))
    assert identity.rule_failure(MASTER, ok) == (None, [])
    renamed = RuleProc(11, 1, ("master",), exe="/usr/bin/python3.11")
    reason, _notes = identity.rule_failure(MASTER, renamed)
    assert reason == "executable /usr/bin/python3.11 does not match match.exe '^/opt/t/bin/master$'"
    other_user = RuleProc(12, 1, ("master",), uid=65534, username="nobody")
    reason, _notes = identity.rule_failure(MASTER, other_user)
    assert reason == "runs as nobody (uid 65534), match.user is 'root'"


def test_unreadable_exe_is_a_note_not_a_rejection():
    guessed = RuleProc(13, 1, ("master",), exe="/opt/t/bin/master", exe_read=False)
    reason, notes = identity.rule_failure(MASTER, guessed)
    assert reason is None
    assert notes == [
        "PID 13: executable unreadable (another user's process; run with become: true), "
        "match.exe not verified"
    ]


def test_replaced_binary_passes_the_exe_rule():
    upgraded = RuleProc(14, 1, ("master",), exe_deleted=True)
    assert identity.rule_failure(MASTER, upgraded)[0] is None


def test_identifier_applies_every_rule_before_counting():
    table = RuleTable(
        RuleProc(10, 1, ("master",)),
        RuleProc(20, 10, ("worker",)),
        RuleProc(30, 1, ("worker",)),  # outside master's tree
        RuleProc(40, 1, ("master",), exe="/usr/bin/bash"),  # renamed shell
        RuleProc(50, 40, ("worker",)),  # under the impostor master
    )
    ident = identity.Identifier(table, {"master": MASTER, "worker": WORKER})
    assert [p.pid for p in ident.members(MASTER)] == [10]
    assert [p.pid for p, _r in ident.impostors(MASTER)] == [40]
    assert [p.pid for p in ident.members(WORKER)] == [20]
    assert [(p.pid, r) for p, r in ident.impostors(WORKER)] == [
        (30, "not a descendant of master"),
        (50, "not a descendant of master"),
    ]
    assert ident.is_member(WORKER, 20) and not ident.is_member(WORKER, 30)


def test_identifier_says_when_the_ancestor_is_not_running():
    table = RuleTable(RuleProc(20, 1, ("worker",)))
    ident = identity.Identifier(table, {"master": MASTER, "worker": WORKER})
    assert ident.impostors(WORKER)[0][1] == "not a descendant of master (master not running)"


def test_missing_psutil_error_names_the_interpreter():
    error = identity.psutil_missing()
    assert isinstance(error, identity.SuiteError)
    assert sys.executable in error.msg and "pip install psutil" in error.msg


def test_user_rule_with_only_a_user_name_known():
    # the psutil path gives the user name, not the uid
    by_name = RuleProc(15, 1, ("worker",), uid=None, username="root")
    assert identity.rule_failure(WORKER, by_name)[0] is None  # match.user: 0
    nobody = RuleProc(16, 1, ("worker",), uid=None, username="nobody")
    assert "match.user is 0" in identity.rule_failure(WORKER, nobody)[0]
    unreadable = RuleProc(17, 1, ("worker",), uid=None, username=None)
    assert identity.rule_failure(WORKER, unreadable) == (
        None,
        ["PID 17: user unreadable, match.user not verified"],
    )
