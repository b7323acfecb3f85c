# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Identity you can trust (issue 12, and item 15 of issue 16), on real processes.

A process is an instance of a daemon only when it passes every rule of the daemon (name, exe,
user, ancestor); a record is judged with boot-relative facts (start ticks + boot id); a
multi-line pidfile gives its PID on the first line; a live record passing its daemon's rules is
never removed; our own probes are not clients. Each test here fails on the code before these
rules (see docs/reliability.md).
"""

from __future__ import annotations

import copy
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from impersonate import Proc
from modrun import run_module_file, shipped_profile
from pg_fixture import PostgresServer

from ansible_collections.daemonops.suite.plugins.module_utils._suite import cluster, probes
from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import HealthChecker
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
    probe_registry_dir,
)

TOP = Path(__file__).resolve().parents[2]
STALE_PIDS = TOP / "plugins" / "modules" / "stale_pids.py"
CLUSTER_DATA = TOP / "plugins" / "modules" / "cluster_data.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def shipped(name: str) -> dict[str, Any]:
    return shipped_profile(name)


def refsuite_data(ports: dict[str, list[int]]) -> dict[str, Any]:
    """The shipped refsuite profile (exe and user rules included) on the given ports, without
    its system paths (config file, PID store)."""
    data = shipped("refsuite")
    for key in ("config_file", "pid_store", "cluster_data"):
        data["suite"].pop(key, None)
    for daemon in data["daemons"]:
        if daemon.get("ports"):
            numbers = ports[daemon["name"]]
            daemon["ports"] = [dict(spec, port=n) for spec, n in zip(daemon["ports"], numbers)]
    return data


def refsuite_server(cfg: str, ui: bool = True) -> Proc:
    args = ["--config", cfg]
    children = [
        Proc("refsuite-db", args),
        Proc("refsuite-passd", args),
        Proc("refsuite-sms", args, children=[Proc("refsuite-data_server", ["1", *args])]),
        Proc("refsuite-sshd", args, ports=[0]),
        Proc("refsuite-sepuler", args),
        Proc("refsuite-stpd", args, ports=[0, 0, 0]),
    ]
    if ui:
        children.append(Proc("refsuite-ui", args, ports=[0]))
    return Proc("refsuite-qm", args, children=children)


def server_ports(tree, free_port, ui_port: int) -> dict[str, list[int]]:
    return {
        "ui": [ui_port],
        "sshd": [tree.port("refsuite-sshd")],
        "stpd": [port for _unused, port in tree.ports("refsuite-stpd")],
        "ctrl": [free_port()],
    }


def check(data: dict[str, Any], roles: list[str], instance: str, **kw: Any) -> dict[str, Any]:
    return HealthChecker(load_profile(data, "test"), roles, instance=instance, **kw).run()


def wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def spawn_renamed(argv: list[str], executable: str, **kw: Any) -> subprocess.Popen:
    """A real process showing ``argv`` (argv[0] chosen freely) while running ``executable``."""
    proc = subprocess.Popen(argv, executable=executable, start_new_session=True, **kw)
    wait_for(
        lambda: psutil.Process(proc.pid).cmdline()[:1] == argv[:1],
        f"{argv[0]} to show its command line",
    )
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def stat_ticks(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return int(data[data.rindex(b")") + 2 :].split()[19])


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


# ------------------------------------------------------------------------------ rule 1


def test_impostor_in_a_foreign_ancestry_holding_the_port_is_not_counted(
    impersonate, free_port, tmp_path
):
    cfg = str(tmp_path / "refsuite.ini")
    tree = impersonate(refsuite_server(cfg, ui=False))
    # named exactly like ui, with the instance's --config, but started outside qm's tree
    outsider = impersonate(Proc("refsuite-ui", ["--config", cfg], ports=[0]))
    pid, port = outsider.pid("refsuite-ui"), outsider.port("refsuite-ui")
    result = check(refsuite_data(server_ports(tree, free_port, port)), ["server"], cfg)
    ui = result["daemons"]["ui"]
    assert ui["count"] == 0 and ui["pids"] == [] and ui["state"] == "offline"
    exe = psutil.Process(pid).exe()
    assert ui["impostors"] == [
        {
            "pid": pid,
            "exe": exe,
            "exe_deleted": False,
            "comm": "refsuite-ui",
            "argv0": "refsuite-ui",
            "reason": "not a descendant of qm",
        }
    ]
    assert ui["ports"][0]["listening"] is True and ui["ports"][0]["owned"] is False
    assert ui["ports"][0]["holder"] == f"{exe}[{pid}] (argv[0] refsuite-ui)"
    assert result["status"] == "FAILURE"
    assert f"ui port {port} held by {exe}[{pid}]" in result["msg"]


# ------------------------------------------------------------------------------ rules 2, 3


def test_argv_renamed_program_with_another_exe_is_named_by_its_exe(impersonate, free_port):
    """A Python renamed bacula-sd holding the storage daemon's port: the Bacula profile's exe
    rule (/usr/sbin/bacula-sd) rejects it, and it is named by its executable."""
    marker = f"--identity-{uuid.uuid4().hex[:8]}"
    fake = impersonate(Proc("bacula-sd", ["-f", marker], ports=[0]))
    pid, port = fake.pid("bacula-sd"), fake.port("bacula-sd")
    data = shipped("bacula")
    for daemon in data["daemons"]:
        daemon["ports"] = [dict(spec, port=free_port()) for spec in daemon.get("ports") or []]
    sd = next(d for d in data["daemons"] if d["name"] == "bacula-sd")
    sd["ports"][0]["port"] = port
    result = check(data, ["rds"], marker, pid_records=False)
    report = result["daemons"]["bacula-sd"]
    exe = psutil.Process(pid).exe()
    assert report["count"] == 0 and report["state"] == "offline"
    assert [(i["pid"], i["exe"], i["argv0"]) for i in report["impostors"]] == [
        (pid, exe, "bacula-sd")
    ]
    assert report["impostors"][0]["reason"] == (
        f"executable {exe} does not match match.exe '^/usr/sbin/bacula-sd$'"
    )
    assert report["ports"][0]["owned"] is False
    assert report["ports"][0]["holder"] == f"{exe}[{pid}] (argv[0] bacula-sd)"
    assert f"held by bacula-sd[{pid}]" not in result["msg"]


def test_daemon_whose_binary_was_replaced_on_disk_is_still_itself(tmp_path):
    bindir = tmp_path / "sbin"
    bindir.mkdir()
    binary = bindir / "identd"
    shutil.copy2("/bin/sleep", binary)
    daemon = subprocess.Popen([str(binary), "300"], start_new_session=True)
    try:
        wait_for(lambda: psutil.Process(daemon.pid).cmdline()[:1] == [str(binary)], "identd")
        # a package upgrade: the new binary is written aside and renamed over the old one
        new = bindir / "identd.new"
        shutil.copy2("/bin/sleep", new)
        os.replace(new, binary)
        assert os.readlink(f"/proc/{daemon.pid}/exe") == f"{binary} (deleted)"
        data = {
            "suite": {"name": "t", "roles": ["s"]},
            "daemons": [
                {
                    "name": "identd",
                    "roles": ["s"],
                    "match": {"cmdline": "^(\\S*/)?identd( |$)", "exe": f"^{binary}$"},
                }
            ],
        }
        result = check(data, ["s"], None, pid_records=False)
        report = result["daemons"]["identd"]
        assert result["status"] == "SUCCESS", result["msg"]
        assert report["pids"] == [daemon.pid] and report["impostors"] == []
        assert report["notes"] == [
            f"PID {daemon.pid} runs {binary} (deleted): the binary was replaced or removed on "
            "disk since it started (restart it to run the new one)"
        ]
        # its pidfile (only a PID) is the live daemon's: stale_pids keeps it
        piddir = tmp_path / "run"
        piddir.mkdir()
        (piddir / "identd.pid").write_text(f"{daemon.pid}\n")
        args = {
            "profile_data": data,
            "store": {"type": "pidfile", "path": str(piddir)},
            "state": "absent",
            "remove_invalid": True,
        }
        out = run_module_file(STALE_PIDS, args, tmp_path)
        assert [(r["status"], r["removed"]) for r in out["records"]] == [("live", False)], out
        assert (piddir / "identd.pid").exists()
    finally:
        stop(daemon)


# ------------------------------------------------------------------------------ rule 4


def _record_table(db: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE daemon_pids (name TEXT, pid INTEGER, start_time REAL, boot_id TEXT,"
            " host TEXT, exe TEXT, start_ticks INTEGER)"
        )
        conn.executemany("INSERT INTO daemon_pids VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.chmod(0o600)


def _in_stepped_clock(argv: list[str], tmp_path: Path, shift: int) -> subprocess.CompletedProcess:
    """Run ``argv`` in a private mount namespace whose /proc/stat says the system booted
    ``shift`` seconds later: what every process sees after the wall clock is stepped forward
    (btime = now - uptime)."""
    stat = Path("/proc/stat").read_text()
    lines = [
        f"btime {int(line.split()[1]) + shift}" if line.startswith("btime ") else line
        for line in stat.splitlines()
    ]
    fake = tmp_path / "stat"
    fake.write_text("\n".join(lines) + "\n")
    script = 'mount --bind "$1" /proc/stat && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(fake), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_clock_step_leaves_a_live_daemon_record_live(tmp_path):
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to simulate a clock step")
    daemon = spawn_renamed(["tickd", "-c", "import time; time.sleep(300)"], sys.executable)
    try:
        pid = daemon.pid
        ticks = stat_ticks(pid)
        start = psutil.Process(pid).create_time()
        host = socket.gethostname()
        exe = psutil.Process(pid).exe()
        db = tmp_path / "state.db"
        # tickd: written now, with start ticks (the new form); tickd.old: the epoch form only
        _record_table(
            db,
            [
                ("tickd", pid, start, boot_id(), host, exe, ticks),
                ("tickd.old", pid, start, boot_id(), host, exe, None),
            ],
        )
        data = {
            "suite": {"name": "t", "roles": ["s"]},
            "daemons": [{"name": "tickd", "roles": ["s"], "match": {"cmdline": "^tickd( |$)"}}],
        }
        args = {
            "profile_data": data,
            "store": {"type": "sqlite", "path": str(db), "table": "daemon_pids"},
            "state": "absent",
            "_ansible_check_mode": False,
            "_ansible_diff": True,
        }
        args_file = tmp_path / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        proc = _in_stepped_clock([sys.executable, str(STALE_PIDS), str(args_file)], tmp_path, 3600)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        by_name = {r["name"]: r for r in out["records"]}
        assert (by_name["tickd"]["status"], by_name["tickd"]["removed"]) == ("live", False), out
        # the old form is fooled by the step (proof the step was seen), but the record of a live
        # process passing the daemon's rules is still never removed
        assert by_name["tickd.old"]["status"] == "stale"
        assert "(+3600.0 s)" in by_name["tickd.old"]["reason"]
        assert by_name["tickd.old"]["removed"] is False
        assert "kept: PID" in by_name["tickd.old"]["reason"]
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM daemon_pids").fetchone() == (2,)

        # the reference suite's own judgement of its records, under the same step
        refsuite_db = tmp_path / "refsuite.db"
        code = (
            "import sys, json; from refsuite import state;"
            f"db = state.StateDB({str(refsuite_db)!r});"
            f"db.register(state.PidRecord('tickd', {pid}, {start}, state.boot_id(), {host!r},"
            f" {exe!r}, start_ticks={ticks}));"
            "print(json.dumps(state.judge(db.get('tickd'))))"
        )
        env = dict(os.environ, PYTHONPATH=str(TOP / "refsuite"))
        first = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert json.loads(first.stdout) == [True, "recorded and alive"]
        judge_only = (
            "import json; from refsuite import state;"
            f"print(json.dumps(state.judge(state.StateDB({str(refsuite_db)!r}).get('tickd'))))"
        )
        stepped = _in_stepped_clock(
            ["env", f"PYTHONPATH={TOP / 'refsuite'}", sys.executable, "-c", judge_only],
            tmp_path,
            3600,
        )
        assert stepped.returncode == 0, stepped.stderr
        assert json.loads(stepped.stdout) == [True, "recorded and alive"]
    finally:
        stop(daemon)


# ------------------------------------------------------------------------------ rule 5


@pytest.fixture
def postgres_server() -> Any:
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()


def test_postmaster_pid_of_a_live_postgresql_is_read_and_kept(postgres_server, tmp_path):
    """A real PostgreSQL's postmaster.pid (PID, data directory, start time, port, socket
    directory, ...), copied where a pidfile store reads it: the record is live and kept, even
    with remove_invalid: true; garbage in a first line is still refused."""
    content = Path(postgres_server.data, "postmaster.pid").read_text()
    lines = content.splitlines()
    assert len(lines) > 5 and lines[1] == postgres_server.data
    postmaster = int(lines[0])
    piddir = tmp_path / "run"
    piddir.mkdir()
    (piddir / "db.pid").write_text(content)
    (piddir / "other.pid").write_text("postgres\n" + "\n".join(lines[1:]) + "\n")
    data = {
        "suite": {"name": "t", "roles": ["s"]},
        "daemons": [
            {
                "name": "db",
                "roles": ["s"],
                "match": {
                    "cmdline": "^(\\S*/)?postgres( |$)",
                    "exe": "^/usr/lib/postgresql/[0-9]+/bin/postgres$",
                    "user": "postgres",
                },
            },
        ],
    }
    args = {
        "profile_data": data,
        "store": {"type": "pidfile", "path": str(piddir)},
        "state": "absent",
        "remove_invalid": True,
        "instance": postgres_server.data,
    }
    out = run_module_file(STALE_PIDS, args, tmp_path)
    by_name = {r["name"]: r for r in out["records"]}
    assert by_name["db"]["pid"] == postmaster
    assert (by_name["db"]["status"], by_name["db"]["removed"]) == ("live", False), out
    assert (piddir / "db.pid").read_text() == content
    assert by_name["other"]["status"] == "invalid" and by_name["other"]["removed"] is True
    assert "'postgres' is not a decimal number" in by_name["other"]["reason"]


# ------------------------------------------------------------------------------ rule 6


def test_probe_connections_of_a_sibling_check_are_not_clients(impersonate, free_port, tmp_path):
    """Two instances on one host: while instance B's check has its probe connection open on
    instance A's ui port, A's health check, cluster_data and service's drain wait (through the
    health result) see no client; a real client is still counted."""
    cfg_a, cfg_b = str(tmp_path / "a.ini"), str(tmp_path / "b.ini")
    tree_a = impersonate(refsuite_server(cfg_a))
    impersonate(refsuite_server(cfg_b))
    port = tree_a.port("refsuite-ui")
    data_a = refsuite_data(server_ports(tree_a, free_port, port))
    with probes.probe_connection("127.0.0.1", port, timeout=5.0) as sock:
        probe_port = sock.getsockname()[1]
        wait_for(
            lambda: any(
                c.status == "ESTABLISHED"
                for c in psutil.net_connections(kind="tcp")
                if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == probe_port
            ),
            "the probe connection to be established",
        )
        result = check(data_a, ["server"], cfg_a, probes=False)
        ui = result["daemons"]["ui"]["ports"][0]
        assert (ui["clients"], ui["peers"]) == (0, []), ui
        assert cluster.connected_clients({port}) == []

        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            peer = f"127.0.0.1:{client.getsockname()[1]}"
            wait_for(
                lambda: (
                    check(data_a, ["server"], cfg_a, probes=False)["daemons"]["ui"]["ports"][0][
                        "peers"
                    ]
                    == [peer]
                ),
                "the real client to be counted",
            )
            assert cluster.connected_clients({port}) == [
                f"client {peer} is connected to port {port}"
            ]
        finally:
            client.close()
    # with the probe closed its registry entry is gone
    assert f"{probe_port}-{port}" not in os.listdir(probe_registry_dir())


# ------------------------------------------------------------------------------ #16 item 15


def test_unprivileged_process_named_like_refsuite_is_foreign(impersonate, free_port, tmp_path):
    """A local unprivileged user runs a Python named refsuite-qm with the instance's --config:
    health still SUCCESS (the process is reported as an impostor by the user rule) and
    cluster_data is not refused on its account."""
    nobody = pwd.getpwnam("nobody")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail(f"{SYSTEM_PYTHON} is needed to run a process as nobody")
    cfg = str(tmp_path / "refsuite.ini")
    tree = impersonate(refsuite_server(cfg))
    data = refsuite_data(server_ports(tree, free_port, tree.port("refsuite-ui")))
    foreign = spawn_renamed(
        ["refsuite-qm", "-c", "import time; time.sleep(300)", "--config", cfg],
        SYSTEM_PYTHON,
        user=nobody.pw_uid,
        cwd="/",
    )
    try:
        result = check(data, ["server"], cfg)
        assert result["status"] == "SUCCESS", result["msg"]
        qm = result["daemons"]["qm"]
        assert qm["pids"] == [tree.pid("refsuite-qm")]
        assert [(i["pid"], i["reason"]) for i in qm["impostors"]] == [
            (foreign.pid, f"runs as nobody (uid {nobody.pw_uid}), match.user is 'root'")
        ]
        # the suite stopped, only the foreign process left: cluster data can be cleared
        tree.stop()
        root = tmp_path / "cluster"
        (root / "m1").mkdir(parents=True)
        (root / "m1" / "state").write_text("x")
        args = {
            "profile_data": copy.deepcopy(data),
            "path": str(root),
            "depth": 2,
            "instance": cfg,
        }
        out = run_module_file(CLUSTER_DATA, args, tmp_path)
        assert not out.get("failed"), out.get("msg")
        assert out["changed"] is True and not (root / "m1" / "state").exists()
        warnings = json.dumps(out.get("warnings"))  # strings or structured, by Ansible version
        assert "argv[0] refsuite-qm) is named like qm but is not it" in warnings, warnings
        assert "match.user is 'root'" in warnings
    finally:
        stop(foreign)


# ------------------------------------------------------------------------------ rule 7


def _run_without_psutil(module: Path, args: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run a module file the way Ansible does, in an interpreter where ``import psutil`` fails."""
    args_file = tmp_path / f"args-{time.monotonic_ns()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    code = (
        "import runpy, sys; sys.modules['psutil'] = None; "
        f"sys.argv = [{str(module)!r}, {str(args_file)!r}]; "
        f"runpy.run_path({str(module)!r}, run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    return json.loads(proc.stdout)


def test_stale_pids_and_cluster_data_work_without_psutil(tmp_path):
    daemon = spawn_renamed(["nopsd", "-c", "import time; time.sleep(300)"], sys.executable)
    try:
        piddir = tmp_path / "run"
        piddir.mkdir()
        (piddir / "nopsd.pid").write_text(f"{daemon.pid}\n")
        gone = subprocess.Popen(["true"])
        gone.wait()
        (piddir / "gone.pid").write_text(f"{gone.pid}\n")
        data = {
            "suite": {"name": "t", "roles": ["s"]},
            "daemons": [
                {"name": "nopsd", "roles": ["s"], "match": {"cmdline": "^nopsd( |$)"}},
                {"name": "gone", "roles": ["s"], "match": {"cmdline": "^gone( |$)"}},
            ],
        }
        store = {"type": "pidfile", "path": str(piddir)}
        out = _run_without_psutil(
            STALE_PIDS, {"profile_data": data, "store": store, "state": "absent"}, tmp_path
        )
        assert not out.get("failed"), out.get("msg")
        status = {r["name"]: (r["status"], r["removed"]) for r in out["records"]}
        assert status == {"nopsd": ("live", False), "gone": ("stale", True)}

        root = tmp_path / "cluster"
        (root / "m1").mkdir(parents=True)
        (root / "m1" / "f").write_text("x")
        args = {"profile_data": data, "path": str(root), "depth": 2}
        out = _run_without_psutil(CLUSTER_DATA, args, tmp_path)
        assert out.get("failed") is True
        assert f"daemon nopsd runs as PID {daemon.pid}" in out["msg"]
        assert (root / "m1" / "f").exists()
    finally:
        stop(daemon)
