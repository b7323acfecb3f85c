# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compatibility claims of README.md "Requirements", checked on real runs.

Run by ``scripts/compat.sh`` (the ``compat`` stage of ``scripts/test.sh``), which finds the
interpreters and builds the controller virtualenvs and passes them in:

- ``COMPAT_CONTROLLERS="2.16=<bin dir>;2.21=<bin dir>"``: ansible-core virtualenvs (an empty bin
  dir = no suitable Python on this machine, the test says so and skips);
- ``COMPAT_TARGETS="3.9=<python>;3.13=<python>"``: target interpreters without psutil.

Against one real refsuite instance (client role, own INI, free ports, tmp paths): ad-hoc
health_info, the health audit playbook and ``site.yml --check`` with each ansible-core; the
modules (health_info, config, install, stale_pids) with each target Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))
sys.path.insert(0, str(TOP / "tests" / "integration" / "refsuite"))

from modrun import ansible_env, find_free_port, shipped_profile  # noqa: E402
from refsuite_testlib import BIN, RefSuite, wait_until  # noqa: E402
from test_site import site_vars  # noqa: E402


def _pairs(variable: str) -> list[tuple[str, str]]:
    text = os.environ.get(variable, "")
    return [tuple(item.split("=", 1)) for item in text.split(";") if "=" in item]  # type: ignore[misc]


CONTROLLERS = _pairs("COMPAT_CONTROLLERS")
TARGETS = _pairs("COMPAT_TARGETS")


def test_the_stage_was_given_its_interpreters() -> None:
    assert CONTROLLERS and TARGETS, (
        "run these tests through scripts/compat.sh, which sets COMPAT_CONTROLLERS and "
        "COMPAT_TARGETS"
    )


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running refsuite client instance and a copy of the profile pointing at it."""
    root = tmp_path_factory.mktemp("compat")
    suite = RefSuite(root, role="client")
    try:
        suite.start()
        wait_until(lambda: suite.online("sshd"), 60, "refsuite sshd online")
        profile = shipped_profile("refsuite")  # without deploy: its templates stay behind
        spec = profile["suite"]
        spec["config_file"] = str(suite.ini)
        spec["pid_store"]["path"] = str(suite.state_db)
        spec["cluster_data"]["path"] = str(suite.cluster)
        # the control commands of this instance: the same argv with its launcher and INI
        for action, argv in list(spec.get("control", {}).items()):
            if isinstance(argv, list):
                spec["control"][action] = [sys.executable, str(BIN), "--config", str(suite.ini)]
                spec["control"][action] += argv[argv.index("--config") + 2 :]
        path = root / "profile.yml"
        path.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
        yield {"suite": suite, "profile": profile, "profile_path": path, "root": root}
    finally:
        suite.cleanup()


def _run(argv: list[str], tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        # ansible-core alone has no json callback: the default and minimal ones print JSON results
        env=ansible_env(
            tmp,
            {
                "ANSIBLE_STDOUT_CALLBACK": "default",
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "0",
                "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            },
        ),
        cwd=str(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _adhoc(bindir: Path, interpreter: str, module: str, args: dict, tmp: Path, *extra: str) -> dict:
    """``ansible localhost -m module`` with the given controller and target Python."""
    argv = [
        str(bindir / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
        "-e", f"ansible_python_interpreter={interpreter}",
        "-m", f"daemonops.suite.{module}", "-a", json.dumps(args), *extra,
    ]  # fmt: skip
    proc = _run(argv, tmp)
    # the ad-hoc output is 'localhost | STATUS => {json}' whatever the stdout callback setting
    head, sep, body = proc.stdout.partition(" => ")
    if not sep:
        pytest.fail(f"{module}: no result (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(body)
    # the minimal callback leaves 'failed' out of the JSON and says it in the line
    result["failed"] = bool(result.get("failed")) or "FAILED!" in head or "UNREACHABLE!" in head
    return result


def _controller(version: str, bindir: str) -> Path:
    if not bindir:
        pytest.skip(f"ansible-core {version}: no suitable controller Python on this machine")
    return Path(bindir)


def _target(version: str, python: str) -> str:
    if not python:
        pytest.skip(f"target Python {version}: not on this machine")
    return python


def _health_args(instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "profile_data": instance["profile"],
        "roles": ["client"],
        "instance": str(instance["suite"].ini),
    }


@pytest.mark.parametrize(("core", "bindir"), CONTROLLERS, ids=[pair[0] for pair in CONTROLLERS])
def test_controller_adhoc_health_info(core: str, bindir: str, instance, tmp_path: Path) -> None:
    bindir_path = _controller(core, bindir)
    version = _run([str(bindir_path / "ansible"), "--version"], tmp_path).stdout
    assert f"core {core}." in version, version
    result = _adhoc(
        bindir_path, str(bindir_path / "python"), "health_info", _health_args(instance), tmp_path
    )
    assert result.get("status") == "SUCCESS", result
    assert set(result["daemons"]) >= {"qm", "sshd"}
    assert result["changed"] is False


@pytest.mark.parametrize(("core", "bindir"), CONTROLLERS, ids=[pair[0] for pair in CONTROLLERS])
def test_controller_health_audit_playbook(core: str, bindir: str, instance, tmp_path: Path) -> None:
    bindir_path = _controller(core, bindir)
    reports = tmp_path / "reports"
    variables = {
        "health_audit_profile": str(instance["profile_path"]),
        "health_audit_roles": ["client"],
        "health_audit_instance": str(instance["suite"].ini),
        "health_audit_report_dir": str(reports),
        "ansible_python_interpreter": str(bindir_path / "python"),
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local\n")
    proc = _run(
        [
            str(bindir_path / "ansible-playbook"),
            str(TOP / "playbooks" / "health_audit.yml"),
            "-i",
            str(inventory),
            "-e",
            f"@{tmp_path / 'vars.json'}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    written = sorted(reports.glob("*.json"))
    assert written, f"no JSON report in {reports}: {proc.stdout[-2000:]}"
    report = json.loads(written[-1].read_text())
    assert report["healthy"] is True, report


@pytest.mark.parametrize(("core", "bindir"), CONTROLLERS, ids=[pair[0] for pair in CONTROLLERS])
def test_controller_site_check_mode(core: str, bindir: str, tmp_path: Path) -> None:
    bindir_path = _controller(core, bindir)
    variables = site_vars(tmp_path)
    variables["ansible_python_interpreter"] = str(bindir_path / "python")
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    proc = _run(
        [
            str(bindir_path / "ansible-playbook"),
            str(TOP / "playbooks" / "site.yml"),
            "-e",
            f"@{tmp_path / 'vars.json'}",
            "--check",
            "--diff",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "failed=0" in proc.stdout and "changed=0" not in proc.stdout, proc.stdout[-3000:]
    assert not Path(variables["common_prefix"]).exists(), "check mode created the prefix"


MAIN_BIN = Path(sys.executable).parent


@pytest.mark.parametrize(("version", "python"), TARGETS, ids=[pair[0] for pair in TARGETS])
def test_target_health_info_without_psutil(version: str, python: str, instance, tmp_path) -> None:
    interpreter = _target(version, python)
    probe = subprocess.run(
        [interpreter, "-c", "import sys, importlib.util as u; print(sys.version_info[:2], "
         "u.find_spec('psutil') is None)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip().endswith("True"), f"{interpreter} has psutil: {probe.stdout}"
    result = _adhoc(MAIN_BIN, interpreter, "health_info", _health_args(instance), tmp_path)
    assert result.get("status") == "SUCCESS", result
    assert result["daemons"]["sshd"]["ports"][0]["owned"] is True, result["daemons"]["sshd"]


@pytest.mark.parametrize(("version", "python"), TARGETS, ids=[pair[0] for pair in TARGETS])
def test_target_config_apply_then_no_change(version: str, python: str, instance, tmp_path) -> None:
    interpreter = _target(version, python)
    ini = tmp_path / "refsuite.ini"
    ini.write_text(instance["suite"].ini.read_text(encoding="utf-8"), encoding="utf-8")
    port = find_free_port()
    args = {
        "profile_data": instance["profile"],
        "config_file": str(ini),
        "settings": {"sshd": {"port": port}},
    }
    first = _adhoc(MAIN_BIN, interpreter, "config", args, tmp_path, "--diff")
    assert first["changed"] is True, first
    assert f"port = {port}" in ini.read_text(encoding="utf-8")
    second = _adhoc(MAIN_BIN, interpreter, "config", args, tmp_path)
    assert second["changed"] is False, second


@pytest.mark.parametrize(("version", "python"), TARGETS, ids=[pair[0] for pair in TARGETS])
def test_target_install_bundled_and_run_it(version: str, python: str, tmp_path: Path) -> None:
    interpreter = _target(version, python)
    prefix = tmp_path / "opt"
    first = _adhoc(MAIN_BIN, interpreter, "install", {"prefix": str(prefix)}, tmp_path)
    assert first["changed"] is True, first
    second = _adhoc(MAIN_BIN, interpreter, "install", {"prefix": str(prefix)}, tmp_path)
    assert second["changed"] is False, second
    launcher = prefix / "bin" / "refsuite"
    assert launcher.read_text(encoding="utf-8").startswith(f"#!{interpreter}"), "launcher Python"
    proc = subprocess.run(
        [str(launcher), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.mark.parametrize(("version", "python"), TARGETS, ids=[pair[0] for pair in TARGETS])
def test_target_stale_pids(version: str, python: str, instance, tmp_path: Path) -> None:
    """stale_pids works from /proc, or says that it needs psutil and for which interpreter."""
    interpreter = _target(version, python)
    result = _adhoc(
        MAIN_BIN, interpreter, "stale_pids", {"profile_data": instance["profile"]}, tmp_path
    )
    if result.get("failed"):
        message = result.get("msg", "")
        assert "psutil" in message and interpreter in message, result
        assert "unexpected error" not in message, result
    else:
        assert result["changed"] is False, result
        assert not result.get("stale"), result
        assert {entry["daemon"]: entry["status"] for entry in result["records"]} == {
            "qm": "live",
            "sshd": "live",
        }, result
