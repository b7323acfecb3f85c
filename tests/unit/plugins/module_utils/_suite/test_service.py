# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import service as svc
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.service import (
    DirectBackend,
    ServiceManager,
    SystemdBackend,
    dependency_order,
)

TOP = Path(__file__).resolve().parents[5]
PROFILE = load_profile_file(str(TOP / "profiles" / "refsuite" / "profile.yml"))
CLIENT = ["qm", "ctrl", "sshd"]


def health(states: dict[str, str], clients: int = 0) -> dict[str, Any]:
    daemons = {}
    for name in CLIENT:
        state = states.get(name, "offline")
        daemons[name] = {
            "state": "unused" if name == "ctrl" else state,
            "problems": [] if state == "online" else [f"{name} {state}"],
            "pids": [100 + len(daemons)] if state in ("online", "degraded") else [],
            "ports": [{"port": 11322, "clients": clients, "peers": ["127.0.0.1:5555"] * clients}]
            if name == "sshd"
            else [],
        }
    failed = any(d["state"] in ("offline", "degraded") for d in daemons.values())
    return {"status": "FAILURE" if failed else "SUCCESS", "msg": "x", "daemons": daemons}


ONLINE = {"qm": "online", "sshd": "online"}
OFFLINE: dict[str, str] = {}


class FakeBackend(svc.Backend):
    name = "fake"

    def __init__(self, world: dict[str, Any]) -> None:
        self.world = world
        self.calls: list[tuple] = []

    def start(self, force: bool):
        self.calls.append(("start", force))
        self.world["states"] = dict(self.world.get("after_start", ONLINE))
        return 0, "started"

    def stop(self, force: bool):
        self.calls.append(("stop", force))
        self.world["states"] = {}
        return 0, "stopped"

    def reload(self, masters):
        self.calls.append(("reload", tuple(masters)))
        return 0, ""

    def logs(self):
        return "/var/log/x.log", ["line one", "line two"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def manager(world: dict, state: str, check_mode: bool = False, **kw) -> tuple:
    backend = FakeBackend(world)
    clock = Clock()
    mgr = ServiceManager(
        PROFILE,
        ["client"],
        state,
        backend,
        lambda: health(world["states"], world.get("clients", 0)),
        check_mode=check_mode,
        timeout=kw.pop("timeout", 5),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )
    return mgr, backend


def test_dependency_order() -> None:
    names = ["data_server", "sshd", "sms", "qm", "stpd"]
    assert dependency_order(PROFILE, names) == ["qm", "sms", "stpd", "sshd", "data_server"]


def test_start_check_apply_idempotent() -> None:
    world: dict[str, Any] = {"states": dict(OFFLINE)}
    mgr, backend = manager(world, "started", check_mode=True)
    result = mgr.run()
    assert result["changed"] is True and result["operation"] == "start" and backend.calls == []
    assert "qm: online" in result["diff"]["after"] and "qm: offline" in result["diff"]["before"]
    mgr, backend = manager(world, "started")
    assert mgr.run()["changed"] is True and backend.calls == [("start", False)]
    for check in (True, False):
        mgr, backend = manager(world, "started", check_mode=check)
        assert mgr.run()["changed"] is False and backend.calls == []


def test_start_that_never_comes_up_names_daemon_and_logs() -> None:
    world: dict[str, Any] = {"states": {}, "after_start": {"qm": "online", "sshd": "offline"}}
    mgr, _unused = manager(world, "started", timeout=3)
    with pytest.raises(SuiteError) as info:
        mgr.run()
    message = str(info.value)
    assert "did not come up within 3 s" in message and "sshd offline" in message
    assert "/var/log/x.log" in message and "line two" in message


def test_stop_refuses_with_clients_unless_forced() -> None:
    world: dict[str, Any] = {"states": dict(ONLINE), "clients": 2}
    for check in (True, False):
        mgr, backend = manager(world, "stopped", check_mode=check)
        with pytest.raises(SuiteError, match=r"clients are connected \(sshd port 11322: 2"):
            mgr.run()
        assert backend.calls == []
    mgr, backend = manager(world, "stopped", force=True)
    assert mgr.run()["changed"] is True and backend.calls == [("stop", True)]
    mgr, backend = manager(world, "stopped")
    assert mgr.run()["changed"] is False and backend.calls == []


def test_restart_and_reload_always_act() -> None:
    world: dict[str, Any] = {"states": dict(ONLINE)}
    mgr, backend = manager(world, "restarted")
    assert mgr.run()["changed"] is True
    assert backend.calls == [("stop", False), ("start", False)]
    mgr, backend = manager(world, "reloaded")
    assert mgr.run()["operation"] == "reload" and backend.calls == [("reload", (100,))]


def test_force_start_is_passed_to_backend() -> None:
    world: dict[str, Any] = {"states": {}}
    mgr, backend = manager(world, "started", force=True)
    mgr.run()
    assert backend.calls == [("start", True)]


def test_unknown_daemon_is_refused() -> None:
    with pytest.raises(SuiteError, match="daemons: 'stpd' is not a daemon of roles client"):
        manager({"states": {}}, "started", daemons=["stpd"])


def test_direct_backend_commands_and_log(tmp_path: Path) -> None:
    log = tmp_path / "refsuite.log"
    log.write_text("\n".join(f"l{i}" for i in range(50)) + "\n")
    ini = tmp_path / "r.ini"
    ini.write_text(f"[suite]\nlog_file = {log}   ; here\n")
    seen: list[list[str]] = []
    backend = DirectBackend(
        PROFILE, config_file=str(ini), runner=lambda argv, t: seen.append(argv) or (0, "")
    )
    backend.start(True)
    backend.stop(False)
    assert seen[0] == ["/opt/refsuite/bin/refsuite", "--config", str(ini), "start", "--force"]
    assert seen[1] == ["/opt/refsuite/bin/refsuite", "--config", str(ini), "stop"]
    where, lines = backend.logs()
    assert where == str(log) and lines == [f"l{i}" for i in range(30, 50)]


def test_direct_backend_reload_sends_sighup(monkeypatch) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(svc.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    DirectBackend(PROFILE).reload([42])
    assert sent == [(42, signal.SIGHUP)]


def test_run_detached_does_not_wait_for_background_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    try:
        rc, out = svc.run_detached(
            ["/bin/sh", "-c", f"echo hello; sleep 30 & echo $! > {pidfile}; exit 3"], timeout=10
        )
        assert rc == 3 and out == "hello"
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    rc, out = svc.run_detached(["/nonexistent/binary"], timeout=5)
    assert rc == 127 and "not found" in out


def test_systemd_backend_uses_systemctl_and_journal() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        return 0, "a\nb\n", ""

    backend = SystemdBackend("refsuite.service", run)
    backend.start(False)
    backend.stop(False)
    where, lines = backend.logs()
    assert calls[:3] == [
        ["systemctl", "reset-failed", "refsuite.service"],
        ["systemctl", "start", "refsuite.service"],
        ["systemctl", "stop", "refsuite.service"],
    ]
    assert calls[3][:4] == ["journalctl", "-u", "refsuite.service", "-n"]
    assert where == "journalctl -u refsuite.service" and lines == ["a", "b"]


def test_systemd_detection(tmp_path: Path) -> None:
    assert svc.systemd_is_pid1(str(tmp_path)) is True
    assert svc.systemd_is_pid1(str(tmp_path / "missing")) is False


def test_select_backend(monkeypatch) -> None:
    def run(argv: list[str]) -> tuple[int, str, str]:
        return 0, "", ""

    monkeypatch.setattr(svc, "systemd_is_pid1", lambda: False)
    direct = svc.select_backend(PROFILE, "auto", run, "/etc/x.ini", timeout=5)
    assert isinstance(direct, DirectBackend)
    assert (direct.config_file, direct.timeout) == ("/etc/x.ini", 5)
    monkeypatch.setattr(svc, "systemd_is_pid1", lambda: True)
    systemd = svc.select_backend(PROFILE, "auto", run)
    assert isinstance(systemd, SystemdBackend) and systemd.run is run
    assert systemd.unit == PROFILE.systemd_unit
    assert isinstance(systemd.direct, DirectBackend)  # refsuite has a control command
    assert isinstance(svc.select_backend(PROFILE, "direct", run), DirectBackend)
    bare = load_profile(
        {
            "suite": {"name": "t", "roles": ["s"]},
            "daemons": [{"name": "d", "roles": ["s"], "match": {"cmdline": "^d$"}}],
        }
    )
    with pytest.raises(SuiteError, match=r"^backend: the t profile has no suite\.systemd_unit"):
        svc.select_backend(bare, "systemd", run)


# -- per-daemon units (a suite with one unit per daemon and no suite-wide unit) ---------------
UNITS = load_profile(
    {
        "suite": {"name": "units", "roles": ["server"]},
        "daemons": [
            {
                "name": "top",
                "roles": ["server"],
                "match": {"cmdline": "^top"},
                "systemd_unit": "top.service",
            },
            {
                "name": "mid",
                "roles": ["server"],
                "match": {"cmdline": "^mid"},
                "ancestor": "top",
                "systemd_unit": "mid.service",
                "log_file": "/nonexistent/mid.log",
                "ports": [{"port": 9101}],
            },
            {
                "name": "leaf",
                "roles": ["server"],
                "match": {"cmdline": "^leaf"},
                "ancestor": "mid",
                "systemd_unit": "leaf.service",
            },
        ],
    }
)


class UnitWorld:
    """systemctl/journalctl on a dict of unit states; a unit in ``broken`` never comes up."""

    def __init__(self, states: dict[str, str], broken: tuple[str, ...] = ()) -> None:
        self.states = dict(states)
        self.broken = broken
        self.calls: list[str] = []
        self.clients: list[int] = []

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        if argv[0] == "journalctl":
            return 0, f"journal of {argv[2]}\n", ""
        action, unit = argv[1], argv[2].split(".")[0]
        if action == "reset-failed":
            return 0, "", ""
        self.calls.append(f"{action} {unit}")
        if action == "start" and unit not in self.broken:
            self.states[unit] = "online"
        elif action == "stop":
            self.states[unit] = "offline"
        return 0, "", ""

    def health(self) -> dict[str, Any]:
        clients = self.clients.pop(0) if self.clients else 0
        daemons = {
            name: {
                "state": self.states.get(name, "offline"),
                "problems": [],
                "pids": [],
                "ports": [{"port": 9101, "clients": clients}] if name == "mid" else [],
            }
            for name in ("top", "mid", "leaf")
        }
        return {"status": "x", "msg": "m", "daemons": daemons}


def unit_manager(world: UnitWorld, state: str, **kw: Any) -> ServiceManager:
    clock = Clock()
    return ServiceManager(
        UNITS,
        ["server"],
        state,
        SystemdBackend(None, world.run),
        world.health,
        timeout=kw.pop("timeout", 5),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def test_started_starts_only_offline_daemons_in_order() -> None:
    world = UnitWorld({"top": "online"})
    planned = unit_manager(world, "started", check_mode=True).run()
    assert planned["started"] == ["mid", "leaf"] and world.calls == []
    result = unit_manager(world, "started").run()
    assert world.calls == ["start mid", "start leaf"]
    assert result["started"] == ["mid", "leaf"] and result["status"] == "SUCCESS"
    assert unit_manager(world, "started").run()["changed"] is False


def test_daemons_restrict_and_bring_offline_ancestors_first() -> None:
    world = UnitWorld({})
    result = unit_manager(world, "started", daemons=["mid"]).run()
    assert world.calls == ["start top", "start mid"] and result["started"] == ["top", "mid"]
    assert result["daemons"] == ["mid"] and result["msg_health"] == "Selected daemons online"


def test_stop_goes_in_reverse_order_and_reports_success() -> None:
    world = UnitWorld({"top": "online", "mid": "online", "leaf": "online"})
    result = unit_manager(world, "stopped").run()
    assert world.calls == ["stop leaf", "stop mid", "stop top"]
    assert result["status"] == "SUCCESS" and result["stopped"] == ["top", "mid", "leaf"]
    assert result["msg_health"] == "Stopped: top, mid, leaf"


def test_restart_of_some_daemons_stops_descendants_first() -> None:
    world = UnitWorld({"top": "online", "mid": "online", "leaf": "online"})
    result = unit_manager(world, "restarted", daemons=["leaf", "mid"]).run()
    assert world.calls == ["stop leaf", "stop mid", "start mid", "start leaf"]
    assert result["stopped"] == ["mid", "leaf"] and result["started"] == ["mid", "leaf"]


def test_failed_start_shows_the_daemons_own_log_source() -> None:
    world = UnitWorld({"top": "online"}, broken=("leaf",))
    with pytest.raises(SuiteError) as info:
        unit_manager(world, "started", timeout=2).run()
    message = str(info.value)
    assert "leaf offline" in message and "journalctl -u leaf.service" in message
    assert "journal of leaf.service" in message
    world = UnitWorld({"top": "online"}, broken=("mid",))
    with pytest.raises(SuiteError, match=r"No log lines \(/nonexistent/mid.log\)"):
        unit_manager(world, "started", timeout=2).run()


def test_drain_polls_until_clients_leave() -> None:
    world = UnitWorld({"top": "online", "mid": "online", "leaf": "online"})
    world.clients = [3, 3, 2, 2, 0]
    result = unit_manager(world, "stopped", daemons=["mid"], drain_timeout=60).run()
    assert [d["clients"] for d in result["drain"]] == [3, 2, 0]
    assert world.calls == ["stop leaf", "stop mid"] and result["stopped"] == ["mid", "leaf"]


def test_drain_timeout_refuses_or_forces() -> None:
    world = UnitWorld({"top": "online", "mid": "online"})
    world.clients = [1] * 100
    with pytest.raises(SuiteError, match="after waiting 3 s") as info:
        unit_manager(world, "stopped", daemons=["mid"], drain_timeout=3).run()
    assert info.value.details["drain"][0] == {"t": 0.0, "clients": 1}
    assert info.value.details["drain"][-1] == {"t": 3.0, "clients": 1}
    assert world.calls == []
    # leaf is not connected to: stopping it alone does not wait
    result = unit_manager(world, "stopped", daemons=["top"], force=True, drain_timeout=1).run()
    assert result["drain"][-1]["clients"] == 1 and world.calls == ["stop mid", "stop top"]


def test_stop_of_one_daemon_without_per_daemon_control_is_refused() -> None:
    world: dict[str, Any] = {"states": dict(ONLINE)}
    mgr, backend = manager(world, "stopped", daemons=["sshd"])
    with pytest.raises(SuiteError, match="no way to stop sshd alone"):
        mgr.run()
    assert backend.calls == []


def test_direct_backend_per_daemon_commands() -> None:
    seen: list[list[str]] = []
    backend = DirectBackend(
        PROFILE, config_file="/x/r.ini", runner=lambda argv, t: seen.append(argv) or (0, "")
    )
    sshd = PROFILE.daemon("sshd")
    assert backend.can_act_on(sshd)
    backend.start_daemon(sshd, True)
    backend.stop_daemon(sshd, False)
    assert seen == [
        ["/opt/refsuite/bin/refsuite", "--config", "/x/r.ini", "start", "sshd", "--force"],
        ["/opt/refsuite/bin/refsuite", "--config", "/x/r.ini", "stop", "sshd"],
    ]
