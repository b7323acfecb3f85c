# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""daemonops.suite.service through ansible on localhost against a real refsuite instance
(tmp prefix, INI, state directory, free ports; the direct backend, as systemd is not PID 1)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from modrun import shipped_profile

from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import HealthChecker
from ansible_collections.daemonops.suite.plugins.module_utils._suite.ini_config import IniConfig
from ansible_collections.daemonops.suite.plugins.module_utils._suite.installer import (
    BundledInstaller,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.service import (
    DirectBackend,
    ServiceManager,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import ProfileFacts

TOP = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


class Instance:
    def __init__(self, root: Path, ports: list[int]) -> None:
        self.root = root
        self.prefix = root / "opt"
        self.ini = root / "etc" / "refsuite.ini"
        self.state = root / "state"
        self.ports = ports
        data = shipped_profile("refsuite")
        data["suite"]["config_file"] = str(self.ini)
        data["suite"]["pid_store"]["path"] = str(self.state / "state.db")
        data["suite"]["cluster_data"]["path"] = str(self.state / "cluster")
        self.profile_data = data
        self.use_prefix(self.prefix)

    def use_prefix(self, prefix: Path) -> None:
        """Run the refsuite installed under ``prefix``: its binary and the profile's control
        commands."""
        self.prefix = prefix
        self.binary = prefix / "bin" / "refsuite"
        argv = [str(self.binary), "--config", str(self.ini)]
        self.profile_data["suite"]["control"].update(
            start=[*argv, "start"],
            stop=[*argv, "stop"],
            status=[*argv, "status"],
            restart=[*argv, "restart"],
            start_daemon=[*argv, "start", "{daemon}"],
            stop_daemon=[*argv, "stop", "{daemon}"],
        )

    def setup(self, role: str = "client") -> None:
        self.role = role
        BundledInstaller(str(TOP / "refsuite"), str(self.prefix)).run()
        settings = {
            "suite": {
                "role": role,
                "state_db": str(self.state / "state.db"),
                "cluster_path": str(self.state / "cluster"),
                "log_file": str(self.root / "log" / "refsuite.log"),
                "data_dir": str(self.state / "data"),
                "tls_cert": str(self.root / "etc" / "tls.pem"),
                "tls_key": str(self.root / "etc" / "tls.key"),
            },
            "ctrl": {"port": self.ports[0]},
            "sshd": {"port": self.ports[1]},
            "ui": {"port": self.ports[2]},
            "stpd": {"ports": self.ports[3:6]},
        }
        for path in (self.state, self.root / "log"):
            path.mkdir(parents=True, exist_ok=True)
        facts = ProfileFacts.from_profile(load_profile(self.profile_data))
        IniConfig(str(self.ini), settings, "present", facts).run()

    def args(self, **extra: Any) -> dict[str, Any]:
        args = {
            "profile_data": self.profile_data,
            "roles": [getattr(self, "role", "client")],
            "config_file": str(self.ini),
            "instance": str(self.ini),
            "timeout": 60,
        }
        args.update(extra)
        return args

    def pids(self) -> dict[str, list[int]]:
        """Daemon name -> pids of this instance's processes (refsuite-<name> argv[0])."""
        found: dict[str, list[int]] = {}
        for proc in self.processes():
            name = proc.info["cmdline"][0][len("refsuite-") :]
            found.setdefault(name, []).append(proc.pid)
        return {name: sorted(pids) for name, pids in found.items()}

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if cmdline and cmdline[0].startswith("refsuite-") and str(self.ini) in cmdline:
                found.append(proc)
        return found

    def cleanup(self) -> None:
        if self.binary.exists():
            subprocess.run(
                [str(self.binary), "--config", str(self.ini), "stop", "--force"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        for proc in self.processes():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def instance(tmp_path: Path, free_port) -> Iterator[Instance]:
    inst = Instance(tmp_path, [free_port() for _unused in range(6)])
    inst.setup()
    try:
        yield inst
    finally:
        inst.cleanup()


def test_start_stop_check_apply_idempotent(ansible_module, instance: Instance) -> None:
    started = instance.args(state="started")
    first = ansible_module("service", started, check=True, diff=True)
    assert first["changed"] is True and first["operation"] == "start", first.get("msg")
    assert first["backend"] == "direct" and instance.processes() == []
    applied = ansible_module("service", started)
    assert applied["changed"] is True and applied["status"] == "SUCCESS", applied.get("msg")
    assert applied["daemons"] == ["qm", "ctrl", "sshd"]
    names = sorted(p.info["cmdline"][0] for p in instance.processes())
    assert names == ["refsuite-qm", "refsuite-sshd"]
    for check in (True, False):
        again = ansible_module("service", started, check=check)
        assert again["changed"] is False and again["operation"] == "none", again.get("msg")

    stopped = instance.args(state="stopped")
    first = ansible_module("service", stopped, check=True)
    assert first["changed"] is True and len(instance.processes()) == 2
    applied = ansible_module("service", stopped)
    assert applied["changed"] is True, applied.get("msg")
    assert instance.processes() == []
    for check in (True, False):
        assert ansible_module("service", stopped, check=check)["changed"] is False


def test_stop_refuses_while_clients_are_connected(ansible_module, instance: Instance) -> None:
    assert ansible_module("service", instance.args(state="started"))["changed"] is True
    sshd_port = instance.ports[1]
    with socket.create_connection(("127.0.0.1", sshd_port), timeout=10) as client:
        time.sleep(0.5)
        refused = ansible_module("service", instance.args(state="stopped"))
        assert refused["failed"] is True
        assert "clients are connected" in refused["msg"] and f"port {sshd_port}" in refused["msg"]
        assert "force: true" in refused["msg"]
        assert len(instance.processes()) == 2
        forced = ansible_module("service", instance.args(state="stopped", force=True))
        assert forced["changed"] is True, forced.get("msg")
        client.close()
    assert instance.processes() == []


def test_failed_start_names_the_daemon_and_shows_log_lines(
    ansible_module, instance: Instance
) -> None:
    # something else holds sshd's port: sshd cannot come up
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", instance.ports[1]))
        blocker.listen()
        result = ansible_module("service", instance.args(state="started", timeout=8))
    assert result["failed"] is True
    assert "did not come up within 8 s" in result["msg"] and "sshd" in result["msg"]
    assert "Last log lines (" in result["msg"] and "refsuite.log" in result["msg"]


def test_unknown_daemon_and_role_are_refused(ansible_module, instance: Instance) -> None:
    result = ansible_module("service", instance.args(state="started", daemons=["stpd"]))
    assert result["failed"] is True and result["msg"].startswith("daemons: 'stpd'")
    result = ansible_module("service", instance.args(state="started", roles=["master"]))
    assert result["failed"] is True and "master" in result["msg"]
    no_roles = instance.args(state="started", drain_timeout=-1)
    del no_roles["roles"]
    result = ansible_module("service", no_roles)  # localhost is in no suite-role group
    assert result["failed"] is True and result["msg"].startswith("roles: give the host's suite")
    result = ansible_module("service", instance.args(state="stopped", drain_timeout=-1))
    assert result["failed"] is True and result["msg"].startswith("drain_timeout: -1 must be")
    assert instance.processes() == []


@pytest.fixture
def rds(tmp_path: Path, free_port) -> Iterator[Instance]:
    """An rds instance: qm, passd, sms (with data_server children), stpd, sshd."""
    inst = Instance(tmp_path, [free_port() for _unused in range(6)])
    inst.setup(role="rds")
    try:
        yield inst
    finally:
        inst.cleanup()


def test_per_daemon_stop_start_restart_in_dependency_order(ansible_module, rds: Instance) -> None:
    applied = ansible_module("service", rds.args(state="started"))
    assert applied["changed"] is True and applied["status"] == "SUCCESS", applied.get("msg")
    suite = rds.pids()
    assert sorted(suite) == ["data_server", "passd", "qm", "sms", "sshd", "stpd"]

    # stop one daemon: only it goes, qm holds it down
    stop_sshd = rds.args(state="stopped", daemons=["sshd"])
    planned = ansible_module("service", stop_sshd, check=True)
    assert planned["changed"] is True and planned["stopped"] == ["sshd"]
    assert rds.pids() == suite
    stopped = ansible_module("service", stop_sshd)
    assert stopped["changed"] is True and stopped["stopped"] == ["sshd"], stopped.get("msg")
    assert stopped["status"] == "SUCCESS" and stopped["msg_health"] == "Stopped: sshd"
    assert "sshd" not in rds.pids()
    assert rds.pids() == {k: v for k, v in suite.items() if k != "sshd"}
    assert ansible_module("service", stop_sshd)["changed"] is False

    # started starts exactly what is offline (sshd, held down by qm), nothing else moves
    started = rds.args(state="started")
    planned = ansible_module("service", started, check=True)
    assert planned["changed"] is True and planned["started"] == ["sshd"]
    assert "sshd" not in rds.pids()
    result = ansible_module("service", started)
    assert result["changed"] is True and result["started"] == ["sshd"], result.get("msg")
    assert result["stopped"] == [] and result["commands"][0].startswith("start sshd: exit 0")
    now = rds.pids()
    assert {k: v for k, v in now.items() if k != "sshd"} == {
        k: v for k, v in suite.items() if k != "sshd"
    }
    assert now["sshd"] != suite["sshd"]

    # a daemon killed outright (qm would retry only after its retry_interval) is started now
    os.kill(now["stpd"][0], signal.SIGKILL)
    result = ansible_module("service", started)
    assert result["started"] == ["stpd"] and result["status"] == "SUCCESS", result.get("msg")
    assert rds.pids()["qm"] == suite["qm"]

    # restart sms and stpd: stop the child side last-in-first-out, start ancestors first
    before = rds.pids()
    result = ansible_module("service", rds.args(state="restarted", daemons=["stpd", "sms"]))
    assert result["changed"] is True and result["status"] == "SUCCESS", result.get("msg")
    assert result["daemons"] == ["sms", "stpd"]
    actions = [line.split(":")[0] for line in result["commands"]]
    assert actions == ["stop stpd", "stop sms", "start sms", "start stpd"]
    assert sorted(result["stopped"]) == ["data_server", "sms", "stpd"]
    assert result["started"] == ["sms", "stpd"]
    after = rds.pids()
    for name in ("sms", "stpd", "data_server"):
        assert set(after[name]).isdisjoint(before[name]), name
    for name in ("qm", "passd", "sshd"):
        assert after[name] == before[name], name


def test_per_daemon_start_brings_up_an_offline_ancestor_first(
    ansible_module, instance: Instance
) -> None:
    result = ansible_module("service", instance.args(state="started", daemons=["sshd"]))
    assert result["changed"] is True, result.get("msg")
    assert result["started"] == ["qm", "sshd"] and result["status"] == "SUCCESS"
    assert sorted(instance.pids()) == ["qm", "sshd"]


def test_drain_waits_then_refuses_and_force_stops(ansible_module, instance: Instance) -> None:
    assert ansible_module("service", instance.args(state="started"))["changed"] is True
    sshd_port = instance.ports[1]
    with socket.create_connection(("127.0.0.1", sshd_port), timeout=10):
        time.sleep(0.5)
        refused = ansible_module("service", instance.args(state="stopped", drain_timeout=2))
        assert refused["failed"] is True
        assert "after waiting" in refused["msg"] and f"port {sshd_port}" in refused["msg"]
        assert refused["drain"][0] == {"t": 0.0, "clients": 1}
        assert refused["drain"][-1]["clients"] == 1 and refused["drain"][-1]["t"] >= 2
        assert sorted(instance.pids()) == ["qm", "sshd"]
        planned = ansible_module(
            "service", instance.args(state="stopped", drain_timeout=30), check=True
        )
        assert planned["changed"] is True and planned["drain"] == [{"t": 0.0, "clients": 1}]
        forced = ansible_module(
            "service", instance.args(state="stopped", drain_timeout=1, force=True)
        )
        assert forced["changed"] is True and forced["status"] == "SUCCESS", forced.get("msg")
        assert forced["drain"][-1]["clients"] == 1
    assert instance.processes() == []


def test_drain_stops_once_the_last_client_leaves(ansible_module, instance: Instance) -> None:
    """The stop waits while a real client is connected; the client leaves during the wait."""
    assert ansible_module("service", instance.args(state="started"))["changed"] is True
    profile = load_profile(instance.profile_data)
    client = socket.create_connection(("127.0.0.1", instance.ports[1]), timeout=10)
    seen_alive: list[bool] = []

    def health() -> dict:
        return HealthChecker(
            profile, ["client"], instance=str(instance.ini), config_file=str(instance.ini)
        ).run()

    def sleep_and_leave(seconds: float) -> None:
        # the first pause of the drain: the daemons still run, then the client leaves
        if not seen_alive:
            seen_alive.append(sorted(instance.pids()) == ["qm", "sshd"])
            client.close()
        time.sleep(seconds)

    try:
        deadline = time.monotonic() + 30
        while not ServiceManager._clients(health())[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        result = ServiceManager(
            profile,
            ["client"],
            "stopped",
            DirectBackend(profile, config_file=str(instance.ini)),
            health,
            drain_timeout=120,
            sleep=sleep_and_leave,
        ).run()
    finally:
        client.close()
    assert seen_alive == [True]
    assert result["drain"][0] == {"t": 0.0, "clients": 1}
    assert result["drain"][-1]["clients"] == 0 and len(result["drain"]) == 2
    assert result["stopped"] == ["qm", "sshd"] and result["status"] == "SUCCESS"
    assert instance.processes() == []
