# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the benchmarks: environment, bounded load, an impersonated SEP sesam host,
an ansible-playbook runner with task timings, and medians.

Everything started here runs in its own process group and is killed (SIGKILL to the group) when
the context manager exits; all traffic is on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

TOP = Path(__file__).resolve().parents[2]
BENCH = TOP / "tests" / "bench"
COLLECTIONS = TOP / ".build" / "collections"
PYTHON = sys.executable
BIN = Path(sys.executable).parent
REFSUITE = TOP / "refsuite" / "bin" / "refsuite"

sys.path.insert(0, str(TOP / "tests" / "integration"))
from impersonate import ImpersonatedTree, Proc  # noqa: E402
from modrun import free_ports  # noqa: E402


def setup_env() -> dict[str, str]:
    """What ``. scripts/env.sh`` does, for this process and the commands it starts."""
    link = COLLECTIONS / "ansible_collections" / "daemonops" / "suite"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(TOP)
    os.environ["ANSIBLE_CONFIG"] = str(TOP / "ansible.cfg")
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(COLLECTIONS) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(COLLECTIONS), *paths])
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("ANSIBLE_NOCOLOR", "1")
    os.environ["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    os.environ.pop("PYTHONSTARTUP", None)
    return dict(os.environ)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def count_processes() -> int:
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


def kill_group(popen: subprocess.Popen) -> None:
    """SIGKILL ``popen``'s process group and every descendant (Ansible's workers call setsid,
    so they and the modules they run are not in the group)."""
    import psutil

    try:
        descendants = psutil.Process(popen.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in descendants:
        try:
            proc.kill()
        except psutil.Error:
            pass
    try:
        popen.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


# ----------------------------------------------------------------------------------- load


class LoadGen:
    """``procs`` idle processes and ``conns`` ESTABLISHED loopback connections held by one helper
    process (tests/bench/loadgen.py). ``connect``: a 127.0.0.1 port whose server keeps the other
    ends (else the helper holds both ends over its own listener)."""

    def __init__(
        self, procs: int = 0, conns: int = 0, connect: Optional[int] = None, timeout: float = 180
    ) -> None:
        self.procs, self.conns, self.connect, self.timeout = procs, conns, connect, timeout
        self.popen: Optional[subprocess.Popen] = None
        self.report: dict[str, Any] = {}

    def __enter__(self) -> LoadGen:
        if self.procs == 0 and self.conns == 0:
            return self
        cmd = [PYTHON, str(BENCH / "loadgen.py"), f"--procs={self.procs}", f"--conns={self.conns}"]
        if self.connect:
            cmd.append(f"--connect=127.0.0.1:{self.connect}")
        self.popen = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        assert self.popen.stdout is not None
        deadline = time.monotonic() + self.timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _unused, _unused = select.select([self.popen.stdout], [], [], max(0.0, left))
            chunk = os.read(self.popen.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.__exit__()
                raise RuntimeError(f"load generator not ready ({' '.join(cmd)})")
            line += chunk
        self.report = json.loads(line.decode().split("READY ", 1)[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.popen is not None:
            kill_group(self.popen)
            for pipe in (self.popen.stdin, self.popen.stdout):
                if pipe:
                    pipe.close()
            self.popen = None


# ------------------------------------------------------------------ impersonated sesam host

SESAM_PORTED = ("rmi", "stpd", "sshd")


@dataclass
class SesamHost:
    """An impersonated SEP sesam server (tests/integration/impersonate.py): sm_qm_main and its
    tree, with the listening daemons on free ports, and a copy of profiles/sesam.yml that names
    those ports. ``marker`` is in every process's command line (health_info ``instance``)."""

    workdir: Path
    marker: str = "bench"
    ports: dict[str, list[int]] = field(default_factory=dict)
    tree: Optional[ImpersonatedTree] = None
    _profile: Any = None

    @property
    def profile_path(self) -> Path:
        return self.workdir / f"sesam-{self.marker}.yml"

    def expected_daemons(self) -> list[str]:
        """Daemons of the server role that are enabled (what a check must find online)."""
        return [d["name"] for d in self.profile_data()["daemons"] if d.get("enabled", True)]

    def profile(self) -> Any:
        """The validated profile object (module_utils ``profile.load_profile``), cached."""
        if self._profile is None:
            from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
                load_profile,
            )

            self._profile = load_profile(self.profile_data(), str(self.profile_path))
        return self._profile

    def profile_data(self) -> dict[str, Any]:
        return yaml.safe_load(self.profile_path.read_text())

    def __enter__(self) -> SesamHost:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rmi, stpd1, stpd2, stpd3, sshd = free_ports(5)
        self.ports = {"rmi": [rmi], "stpd": [stpd1, stpd2, stpd3], "sshd": [sshd]}
        mark = ["--config", f"/etc/sesam/{self.marker}.ini"]
        root = Proc(
            "sm_qm_main",
            args=mark,
            children=[
                Proc(
                    "sm_postgres",
                    args=mark,
                    children=[Proc("su", args=mark, children=[Proc("postmaster", args=mark)])],
                ),
                Proc(
                    "sm_rmi_main",
                    args=mark,
                    children=[
                        Proc(
                            "java",
                            args=["-cp", "sesam.jar", "de.sep.sesam.gui.server.GUIServer", *mark],
                            ports=[rmi],
                        )
                    ],
                ),
                Proc("sm_passd", args=mark),
                Proc(
                    "sm_sms_main",
                    args=mark,
                    children=[Proc("sm_data_server", args=[str(i), *mark]) for i in (1, 2)],
                ),
                Proc("sm_sms_watch", args=["1", *mark]),
                Proc("sm_stpd_main", args=mark, ports=[stpd1, stpd2, stpd3]),
                Proc("sm_sshd", args=mark, ports=[sshd]),
                Proc("sm_sepuler", args=mark),
            ],
        )
        profile = yaml.safe_load((TOP / "profiles" / "sesam.yml").read_text())
        for daemon in profile["daemons"]:
            daemon["match"].pop("exe", None)  # the impersonated daemons run Python
            if daemon["name"] in self.ports:
                numbers = self.ports[daemon["name"]]
                for port, number in zip(daemon["ports"], numbers):
                    port["port"] = number
        self.profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
        self.tree = ImpersonatedTree(root, self.workdir, timeout=60).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tree is not None:
            self.tree.stop()
            self.tree = None

    def module_args(self) -> dict[str, Any]:
        """health_info arguments for this host (profile file resolved by the action plugin)."""
        return {
            "profile": str(self.profile_path),
            "roles": ["server"],
            "instance": f"/etc/sesam/{self.marker}.ini",
        }


# --------------------------------------------------------------------------------- ansible


@dataclass
class PlayRun:
    wall: float  # seconds, ansible-playbook start to exit
    tasks: float  # seconds, first task start to the last host result of the last task
    rc: int
    timer: dict[str, Any]
    output: str

    def task_seconds(self, name_part: str) -> float:
        """Duration of the task whose name contains ``name_part`` (first start to last result)."""
        for task in self.timer.get("tasks", []):
            if name_part in task["name"] and task["end"] is not None:
                return float(task["end"] - task["start"])
        raise KeyError(f"no finished task named like {name_part!r}")

    def tasks_per_host(self) -> float:
        stats = self.timer.get("stats", {})
        if not stats:
            return 0.0
        per_host = [
            sum(v for k, v in s.items() if k in ("ok", "changed", "skipped", "failures"))
            for s in stats.values()
        ]
        return sum(per_host) / len(per_host)


def write_inventory(
    path: Path,
    hosts: Sequence[str],
    group: str = "server",
    host_vars: Optional[dict[str, dict[str, Any]]] = None,
) -> Path:
    host_vars = host_vars or {}
    data = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": PYTHON},
            "children": {group: {"hosts": {h: host_vars.get(h) or None for h in hosts}}},
        }
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_play(path: Path, tasks: list[dict[str, Any]], hosts: str = "all") -> Path:
    play = [{"name": "bench", "hosts": hosts, "gather_facts": False, "tasks": tasks}]
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def run_playbook(
    playbook: Path,
    inventory: Path,
    workdir: Path,
    args: Sequence[str] = (),
    timeout: float = 600,
    forks: int = 50,
    check_rc: bool = True,
) -> PlayRun:
    """Run ansible-playbook with the bench_timer callback; raises on timeout (after killing the
    whole process group) and, with ``check_rc``, on a non-zero exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    timer_out = workdir / f"timer-{time.monotonic_ns()}.json"
    log = workdir / f"play-{time.monotonic_ns()}.log"
    env = dict(os.environ)
    env.update(
        ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="bench_timer",
        ANSIBLE_STDOUT_CALLBACK="default",
        BENCH_TIMER_OUT=str(timer_out),
        ANSIBLE_LOCAL_TEMP=str(workdir / "local-tmp"),
        ANSIBLE_REMOTE_TMP=str(workdir / "remote-tmp"),
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
    with open(log, "wb") as out:
        started = time.monotonic()
        popen = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(workdir),
            start_new_session=True,
        )
        try:
            rc = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(popen)
            raise TimeoutError(f"{playbook.name} took longer than {timeout:.0f} s") from None
        wall = time.monotonic() - started
    output = log.read_text(errors="replace")
    if check_rc and rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{output[-3000:]}")
    timer = json.loads(timer_out.read_text()) if timer_out.exists() else {}
    finished = [t for t in timer.get("tasks", []) if t["end"] is not None]
    tasks = (
        (max(t["end"] for t in finished) - min(t["start"] for t in finished)) if finished else 0.0
    )
    return PlayRun(wall=wall, tasks=tasks, rc=rc, timer=timer, output=output)


def run_module_json(module: str, args: dict[str, Any], workdir: Path, timeout: float = 300) -> dict:
    """One module run on localhost through ``ansible`` with the json callback; its result."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_LOCAL_TEMP=str(workdir / "local-tmp"),
    )
    cmd = [
        str(BIN / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={PYTHON}",
        "-m",
        module,
        "-a",
        json.dumps(args),
    ]
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=str(workdir),
    )
    try:
        data = json.loads(proc.stdout[proc.stdout.index("{") :])
        return data["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as exc:
        raise RuntimeError(
            f"{module}: no result (rc {proc.returncode}): {proc.stdout[-2000:]}"
            f"{proc.stderr[-2000:]}"
        ) from exc


def run_adhoc(
    module: str,
    args: dict[str, Any],
    inventory: Path,
    workdir: Path,
    pattern: str = "all",
    timeout: float = 300,
) -> float:
    """Wall seconds of one ``ansible PATTERN -m MODULE -a ARGS`` run (the whole command, like
    the playbook figures); raises when it times out or exits non-zero."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(ANSIBLE_LOCAL_TEMP=str(workdir / "local-tmp"), ANSIBLE_DEPRECATION_WARNINGS="0")
    cmd = [str(BIN / "ansible"), pattern, "-i", str(inventory), "-m", module]
    if args:
        cmd += ["-a", json.dumps(args)]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(workdir),
            check=False,  # the exit status is checked below, with the output in the message
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{' '.join(cmd)} took longer than {timeout:.0f} s") from None
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    return wall
