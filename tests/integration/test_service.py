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
import yaml

from ansible_collections.daemonops.suite.plugins.module_utils._suite.ini_config import (
    IniConfig,
    ProfileFacts,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.installer import (
    BundledInstaller,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import load_profile

TOP = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


class Instance:
    def __init__(self, root: Path, ports: list[int]) -> None:
        self.root = root
        self.prefix = root / "opt"
        self.ini = root / "etc" / "refsuite.ini"
        self.state = root / "state"
        self.ports = ports
        self.binary = self.prefix / "bin" / "refsuite"
        data = yaml.safe_load((TOP / "profiles" / "refsuite" / "profile.yml").read_text())
        argv = [str(self.binary), "--config", str(self.ini)]
        data["suite"]["control"].update(
            start=[*argv, "start"],
            stop=[*argv, "stop"],
            status=[*argv, "status"],
            restart=[*argv, "restart"],
        )
        data["suite"]["config_file"] = str(self.ini)
        data["suite"]["pid_store"]["path"] = str(self.state / "state.db")
        data["suite"]["cluster_data"]["path"] = str(self.state / "cluster")
        self.profile_data = data

    def setup(self) -> None:
        BundledInstaller(str(TOP / "refsuite"), str(self.prefix)).run()
        settings = {
            "suite": {
                "role": "client",
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
            "roles": ["client"],
            "config_file": str(self.ini),
            "instance": str(self.ini),
            "timeout": 60,
        }
        args.update(extra)
        return args

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
    assert instance.processes() == []
