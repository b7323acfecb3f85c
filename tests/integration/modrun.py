"""Running the collection's modules and throwaway daemon look-alikes from integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import psutil
import pytest

TOP = Path(__file__).resolve().parents[2]


def shipped_profile(name: str) -> dict[str, Any]:
    """A shipped profile's data as a task's ``profile_data`` would carry it: from
    ``profiles/<name>.yml`` or ``profiles/<name>/profile.yml``, without the ``deploy`` section
    (its templates stay in the profile's folder)."""
    import yaml

    from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
        profile_path,
    )

    with open(profile_path(name), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data.pop("deploy", None)
    return data


def run_module_file(
    module: Path, args: dict[str, Any], tmp_path: Path, check: bool = False, timeout: float = 120
) -> dict[str, Any]:
    """Run the real module file in a child Python, the way Ansible runs it on a target."""
    payload = dict(args, _ansible_check_mode=check, _ansible_diff=True)
    args_file = tmp_path / f"args-{time.monotonic_ns()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc = subprocess.run(
        [sys.executable, str(module), str(args_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"module printed no JSON: {proc.stdout}\n{proc.stderr}")


def run_adhoc(
    module: str,
    args: dict[str, Any],
    check: bool = False,
    extra: Sequence[str] = (),
    env: Optional[dict[str, str]] = None,
) -> dict[str, Any]:
    """Run a module through the real ``ansible`` CLI on localhost, return the host's result;
    ``extra`` adds arguments (``-e @vars.json``), ``env`` replaces the environment (it must
    keep the json callback)."""
    if env is None:
        env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    argv = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        module,
        "-a",
        json.dumps(args),
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "--diff",
        *extra,
    ]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    try:
        data = json.loads(proc.stdout)
        return data["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (json.JSONDecodeError, KeyError, IndexError):
        pytest.fail(f"ansible gave no JSON result: {proc.stdout}\n{proc.stderr}")


def spawn(argv0: str, *args: str) -> subprocess.Popen:
    """A real process whose argv[0] (and so /proc/PID/cmdline) starts with ``argv0``."""
    proc = subprocess.Popen(
        [argv0, "-c", "import time; time.sleep(300)", *args],
        executable=sys.executable,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(proc.pid).cmdline()[:1] == [argv0]:
                return proc
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    pytest.fail(f"{argv0} did not start")


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def find_free_port(address: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def ansible_env(tmp: Path, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment for ``ansible``/``ansible-playbook`` against this checkout."""
    collections = TOP / ".build" / "collections"
    link = collections / "ansible_collections" / "daemonops" / "suite"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(TOP)
        except FileExistsError:  # another test created it meanwhile
            pass
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(TOP / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LOCAL_TEMP=str(tmp / "local-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "remote-tmp"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    env.update(extra or {})
    return env


def text_playbook_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment for ``ansible-playbook`` against this checkout, with Ansible's default
    (text) output; ``extra`` adds or overrides variables."""
    collections = TOP / ".build" / "collections"
    assert (collections / "ansible_collections" / "daemonops" / "suite").exists(), (
        "run `. scripts/env.sh` once: it links the collection under .build/collections"
    )
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(TOP / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        PYTHONPATH=str(collections),
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp / "local-tmp"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    env.update(extra)
    return env


def run_ansible_json(
    cmd: list[str],
    work: Path,
    cwd: Path,
    timeout: float,
    env: Optional[dict[str, str]] = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run ``ansible``/``ansible-playbook`` ``cmd`` with ``ansible_env(work, env)``: the process
    and the json callback's output (the test fails, showing what the run printed, when there
    is none)."""
    proc = subprocess.run(
        cmd,
        env=ansible_env(work, env),
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"{' '.join(cmd[:6])} ... gave no JSON (rc {proc.returncode}):\n"
            f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
        )


def run_playbook(
    work: Path, *argv: str, cwd: Path = TOP, timeout: float = 600
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``ansible-playbook *argv`` with ``ansible_env(work)`` (see ``run_ansible_json``)."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), *argv]
    return run_ansible_json(cmd, work, cwd, timeout)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all bound at once, so none is handed out twice)."""
    socks = []
    try:
        for _index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()
