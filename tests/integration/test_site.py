# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/site.yml for real against localhost (server group), with a tmp prefix, config,
state and log directory and free ports, so it never collides with other tests or /opt/refsuite.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from modrun import find_free_port, run_playbook

TOP = Path(__file__).resolve().parents[2]
PLAYBOOK = TOP / "playbooks" / "site.yml"

pytestmark = pytest.mark.slow


def site_vars(root: Path) -> dict[str, Any]:
    ports: list[int] = []
    while len(ports) < 6:
        port = find_free_port()
        if port not in ports:
            ports.append(port)
    return {
        "common_prefix": str(root / "opt"),
        "common_config_file": str(root / "etc" / "refsuite.ini"),
        "common_state_dir": str(root / "state"),
        "common_log_dir": str(root / "log"),
        "common_ports": {
            "stpd": ports[0:3],
            "ui": [ports[3]],
            "ctrl": [ports[4]],
            "sshd": [ports[5]],
        },
        "common_service_timeout": 90,
    }


def run_site(root: Path, variables: dict[str, Any], *args: str) -> dict[str, Any]:
    """ansible-playbook site.yml with the default inventory; the json callback's output."""
    work = root / f"run-{len(list(root.glob('run-*')))}"
    work.mkdir(parents=True)
    (work / "vars.json").write_text(json.dumps(variables))
    proc, output = run_playbook(work, str(PLAYBOOK), "-e", f"@{work / 'vars.json'}", *args)
    output["_rc"] = proc.returncode
    return output


def stats(output: dict[str, Any]) -> dict[str, int]:
    return output["stats"]["localhost"]


def task_results(output: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [
        task["hosts"]["localhost"]
        for play in output["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith(name) and "localhost" in task["hosts"]
    ]


def failure_messages(output: dict[str, Any]) -> str:
    messages = []
    for play in output["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost") or {}
            if result.get("failed"):
                messages.append(str(result.get("msg", "")))
    return "\n".join(messages)


def changed_tasks(output: dict[str, Any]) -> list[str]:
    return [
        task["task"]["name"]
        for play in output["plays"]
        for task in play["tasks"]
        if (task["hosts"].get("localhost") or {}).get("changed")
    ]


def stop_refsuite(variables: dict[str, Any]) -> None:
    """Stop the instance of this test (refsuite stop --force, then kill leftovers of its INI)."""
    binary = Path(variables["common_prefix"]) / "bin" / "refsuite"
    ini = variables["common_config_file"]
    if binary.exists():
        subprocess.run(
            [str(binary), "--config", ini, "stop", "--force"],
            capture_output=True,
            timeout=120,
            check=False,
        )
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline and cmdline[0].startswith("refsuite-") and ini in cmdline:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, dict]]:
    root = tmp_path_factory.mktemp("site")
    variables = site_vars(root)
    try:
        output = run_site(root, variables)
        yield root, variables, output
    finally:
        stop_refsuite(variables)


def test_site_deploys_refsuite_and_health_says_success(deployed) -> None:
    _root, variables, output = deployed
    assert output["_rc"] == 0, failure_messages(output)
    assert stats(output)["failures"] == 0 and stats(output)["changed"] > 0
    health = task_results(output, "Check the suite's health")
    assert health and all(h["status"] == "SUCCESS" for h in health), health
    assert health[-1]["summary"]["online"] == 9 and health[-1]["summary"]["unused"] == 1
    stpd = health[-1]["daemons"]["stpd"]["ports"]
    assert [p["port"] for p in stpd] == variables["common_ports"]["stpd"]
    # installed where asked, and the suite itself agrees
    prefix = Path(variables["common_prefix"])
    assert (prefix / "VERSION").read_text().strip() == (
        TOP / "refsuite" / "VERSION"
    ).read_text().strip()
    status = subprocess.run(
        [str(prefix / "bin" / "refsuite"), "--config", variables["common_config_file"], "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0 and "STATUS=SUCCESS" in status.stdout, status.stdout
    ini = Path(variables["common_config_file"]).read_text()
    assert "role = server" in ini and f"port = {variables['common_ports']['ui'][0]}" in ini
    assert Path(variables["common_config_file"]).with_name("tls.pem").is_file()


def test_second_run_changes_nothing(deployed) -> None:
    root, variables, _unused = deployed
    output = run_site(root, variables)
    assert output["_rc"] == 0, failure_messages(output)
    assert stats(output)["changed"] == 0, changed_tasks(output)


def test_check_diff_on_deployed_host_changes_nothing(deployed) -> None:
    root, variables, _unused = deployed
    output = run_site(root, variables, "--check", "--diff")
    assert output["_rc"] == 0, failure_messages(output)
    assert stats(output)["changed"] == 0, changed_tasks(output)


def test_check_mode_on_a_fresh_host_reports_without_failing(tmp_path: Path) -> None:
    variables = site_vars(tmp_path)
    try:
        output = run_site(tmp_path, variables, "--check", "--diff")
        assert output["_rc"] == 0, failure_messages(output)
        assert stats(output)["changed"] > 0
        assert "Write the suite's INI configuration" in " ".join(changed_tasks(output))
        assert not Path(variables["common_prefix"]).exists()
        assert not Path(variables["common_config_file"]).exists()
    finally:
        stop_refsuite(variables)


def _archive(path: Path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        data = b"9.9\n"
        info = tarfile.TarInfo("VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown_role", "common_roles"),
        ("port_clash", "is used by both ui and sshd"),
        ("unknown_profile", "common_profile: profile 'nosuchsuite' is not shipped"),
        ("missing_archive", "common_archive: "),
        ("wrong_checksum", "common_archive_sha256: checksum mismatch"),
        ("unknown_daemon", "settings.nosuchdaemon: unknown section 'nosuchdaemon'"),
    ],
)
def test_bad_input_fails_before_anything_changes(tmp_path: Path, case: str, expected: str) -> None:
    variables = site_vars(tmp_path)
    if case == "unknown_role":
        variables["server_suite_roles"] = ["backup_master"]
        expected_more = "backup_master"
    elif case == "port_clash":
        variables["common_ports"]["sshd"] = variables["common_ports"]["ui"]
        expected_more = "common_ports"
    elif case == "unknown_profile":
        variables["common_profile"] = "nosuchsuite"
        expected_more = "refsuite"
    elif case == "missing_archive":
        missing = tmp_path / "missing-1.0.tar.gz"
        variables.update(
            common_source="archive", common_archive=str(missing), common_archive_sha256="0" * 64
        )
        expected_more = f"{missing} does not exist on the controller"
    elif case == "wrong_checksum":
        archive = tmp_path / "refsuite-9.9.tar.gz"
        actual = _archive(archive)
        variables.update(
            common_source="archive", common_archive=str(archive), common_archive_sha256="f" * 64
        )
        expected_more = f"expected {'f' * 64}, actual {actual}"
    else:
        variables["common_settings"] = {"nosuchdaemon": {"port": 1234}}
        expected_more = "common_settings"
    output = run_site(tmp_path, variables)
    messages = failure_messages(output)
    assert output["_rc"] != 0 and stats(output)["failures"] == 1, messages
    assert expected in messages and expected_more in messages, messages
    assert stats(output)["changed"] == 0
    for key in ("common_prefix", "common_state_dir", "common_log_dir"):
        assert not Path(variables[key]).exists(), key
    assert not Path(variables["common_config_file"]).parent.exists()
