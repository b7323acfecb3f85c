# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover's whole proposal on a synthetic process table and socket table (a fake /proc for
the cgroups); the pure pieces are tested in test_proposal.py."""

from __future__ import annotations

import socket
from collections import namedtuple

import pytest
import yaml

from ansible_collections.daemonops.suite.plugins.module_utils._suite.discover import (
    Discovery,
    Hints,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
    ProcInfo,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import SocketTable

# The shape of psutil's ``sconn``, which ``SocketTable.from_entries`` reads.
ProcConn = namedtuple("ProcConn", "fd family type laddr raddr status pid")

# ----------------------------------------------------------------------------- whole proposal


def proc(pid, ppid, *argv, exe="/opt/s/bin/daemon", user="svc"):
    return ProcInfo(pid, ppid, argv[0][:15], argv, exe, float(pid), "sleeping", user)


def listen(port, pid, address="127.0.0.1"):
    return ProcConn(-1, socket.AF_INET, socket.SOCK_STREAM, (address, port), (), "LISTEN", pid)


BASE = 4_000_000  # pids no real process has (pid_max is at most 4194304)


@pytest.fixture
def suite_host(tmp_path):
    """A master with a logger, a listener, and a pre-forked pool sharing the pool parent's
    port; a foreign process; cgroups in a fake /proc."""
    procs = ProcessTable(
        [
            proc(1, 0, "/sbin/init", exe="/sbin/init"),
            proc(BASE + 1, 1, "acme-master", "-f", "/etc/acme.conf"),
            proc(BASE + 2, BASE + 1, "acme-log", "/etc/acme.conf"),
            proc(BASE + 3, BASE + 1, "acme-web", "/etc/acme.conf"),
            proc(BASE + 4, BASE + 3, "acme-worker", "/etc/acme.conf"),
            proc(BASE + 5, BASE + 3, "acme-worker", "/etc/acme.conf"),
            proc(BASE + 6, BASE + 3, "acme-worker", "/etc/acme.conf"),
            proc(BASE + 7, BASE + 6, "acme-worker", "/etc/acme.conf"),  # forked by a worker
            proc(BASE + 9, 1, "grep", "acme-master", exe="/bin/grep"),
        ],
        self_pid=BASE + 100,
    )
    socks = SocketTable.from_entries(
        [listen(8080, BASE + 6), listen(9000, BASE + 2), listen(22, 1)]
    )
    for pid in range(BASE + 1, BASE + 8):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text("0::/system.slice/acme.service\n")
    return procs, socks, tmp_path


def discover(suite_host, hints, **kw):
    procs, socks, fake_proc = suite_host
    return Discovery(procs, socks, proc=str(fake_proc), system_run_dirs=[], **kw).propose(hints)


def test_proposal_from_a_pid(suite_host):
    result = discover(suite_host, Hints(pid=BASE + 1))
    proposal = result["proposal"]
    load_profile(proposal)
    daemons = {d["name"]: d for d in proposal["daemons"]}
    assert list(daemons) == ["master", "log", "web", "worker"]
    assert proposal["suite"]["name"] == "acme"
    assert proposal["suite"]["systemd_unit"] == "acme.service"
    assert daemons["master"]["essential"] is True and "ancestor" not in daemons["master"]
    assert daemons["worker"]["ancestor"] == "web" and daemons["log"]["ancestor"] == "master"
    assert daemons["worker"]["count"] == {"min": 1}  # 3 instances under one parent
    assert daemons["log"]["ports"] == [{"port": 9000, "probe": {"type": "tcp"}}]
    assert daemons["web"]["ports"] == [{"port": 8080, "probe": {"type": "tcp"}}]  # from the pool
    assert "ports" not in daemons["worker"]
    assert daemons["master"]["match"] == {
        "cmdline": "^acme-master( |$)",
        "exe": "^/opt/s/bin/daemon$",
    }
    facts = {p["daemon"]: p for p in result["programs"]}
    assert facts["worker"]["pids"] == [BASE + 4, BASE + 5, BASE + 6]
    assert facts["worker"]["workers"] == [BASE + 7]
    assert result["instance"] == "/etc/acme.conf"
    assert yaml.safe_load(result["proposal_yaml"]) == proposal
    assert "guess: the port of its parent" in result["proposal_yaml"]
    assert "no pidfile" in " ".join(result["review"])


def test_other_hints_find_the_same_tree(suite_host):
    by_pid = discover(suite_host, Hints(pid=BASE + 1))["proposal"]
    assert discover(suite_host, Hints(name="^acme-m"))["proposal"]["daemons"] == by_pid["daemons"]
    assert discover(suite_host, Hints(unit="acme*.service"))["roots"] == [BASE + 1]
    # the port of a pool climbs to the topmost process with the same executable: the master
    assert discover(suite_host, Hints(ports=[8080]))["roots"] == [BASE + 1]


def test_bad_hints_and_options_name_the_option(suite_host):
    with pytest.raises(SuiteError, match=r"^pid: no process 12 runs here"):
        discover(suite_host, Hints(pid=12))
    with pytest.raises(SuiteError, match=r"^name: no process is called like 'nope'"):
        discover(suite_host, Hints(name="nope"))
    with pytest.raises(SuiteError, match=r"^unit: no process runs in a systemd unit"):
        discover(suite_host, Hints(unit="other.service"))
    with pytest.raises(SuiteError, match=r"^ports: nothing listens on port 1234"):
        discover(suite_host, Hints(ports=[1234]))
    with pytest.raises(SuiteError, match=r"^role: 'a b' is not a role name"):
        discover(suite_host, Hints(pid=BASE + 1), role="a b")
    with pytest.raises(SuiteError, match=r"^suite_name: 'My-Suite' must match"):
        discover(suite_host, Hints(pid=BASE + 1), suite_name="My-Suite")


def test_rules_that_match_outside_the_tree_lose_their_max(suite_host):
    procs, socks, fake_proc = suite_host
    other = ProcessTable(  # another instance (another config): the instance string tells apart
        [*procs, proc(BASE + 50, 1, "acme-log", "/etc/other.conf")], self_pid=BASE + 100
    )
    result = discover((other, socks, fake_proc), Hints(pid=BASE + 1))
    log = next(d for d in result["proposal"]["daemons"] if d["name"] == "log")
    assert log["count"] == {"min": 1, "max": 1}
    same = ProcessTable(  # a second logger of the same instance, outside the tree
        [*procs, proc(BASE + 50, 1, "acme-log", "/etc/acme.conf")], self_pid=BASE + 100
    )
    result = discover((same, socks, fake_proc), Hints(pid=BASE + 1))
    log = next(d for d in result["proposal"]["daemons"] if d["name"] == "log")
    assert log["count"] == {"min": 1}
    assert f"outside the walked tree match ({BASE + 50}" in result["proposal_yaml"]


def test_unreadable_executables_and_unseen_socket_owners_are_named(tmp_path):
    procs = ProcessTable(
        [
            proc(BASE + 1, 1, "acme-master", exe=None),
            proc(BASE + 2, BASE + 1, "acme-log", exe=None),
        ],
        self_pid=BASE + 100,
    )
    socks = SocketTable.from_entries([listen(7000, None)])
    result = discover((procs, socks, tmp_path), Hints(pid=BASE + 1))
    assert all("exe" not in d["match"] for d in result["proposal"]["daemons"])
    review = " | ".join(result["review"])
    assert "master, log: executable unreadable, no exe rule" in review
    assert "the owner of port(s) 7000 cannot be seen" in review
