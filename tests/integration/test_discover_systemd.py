# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""discover on a Debian-packaged PostgreSQL cluster run by systemd: a container of the project's
base image (scripts/build-image.sh) boots systemd as PID 1 and starts ``postgresql@15-main``;
the module runs in it through Ansible's podman connection, found by its unit glob."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modrun import TOP, ansible_env

from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

IMAGE = os.environ.get("DAEMONOPS_MOLECULE_IMAGE", "localhost/daemonops-base:latest")
CLUSTER_UNIT = "postgresql@15-main.service"


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    conf = TOP / ".build" / "containers.conf"
    if conf.exists():  # runc and no ulimits (docs/molecule.md); scripts/env.sh sets it too
        env.setdefault("CONTAINERS_CONF", str(conf))
    return env


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="module")
def cluster_container() -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.fail("podman not found: run scripts/bootstrap.sh")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        built = subprocess.run(  # what the molecule stage runs first; a no-op once built
            ["bash", str(TOP / "scripts" / "build-image.sh")],
            env=podman_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if built.returncode != 0 or podman("image", "exists", IMAGE, check=False).returncode:
            pytest.fail(f"image {IMAGE} could not be built: {built.stdout}{built.stderr}")
    name = f"daemonops-discover-{uuid.uuid4().hex[:10]}"
    # SYS_PTRACE: root in the container may read other users' /proc/PID/exe and fd links,
    # as root on a host does (socket owners and executables of the postgres processes)
    podman("run", "-d", "--name", name, "--systemd=always", "--cap-add", "SYS_PTRACE", IMAGE,
           "/sbin/init")  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        state = ""
        while time.monotonic() < deadline:
            state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout
            if state.strip() in ("running", "degraded"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"systemd in {name} did not finish booting: {state!r}")
        # no autovacuum: its workers come and go and would be proposed as daemons
        podman("exec", name, "sh", "-c",
               "echo 'autovacuum = off' > /etc/postgresql/15/main/conf.d/zz-test.conf")  # fmt: skip
        podman("exec", name, "systemctl", "start", CLUSTER_UNIT)
        yield name
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def in_container(container: str, tmp: Path, module: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``daemonops.suite.<module>`` in the container through Ansible's podman connection."""
    inventory = tmp / "inventory.json"
    host = {
        "ansible_connection": "containers.podman.podman",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    inventory.write_text(json.dumps({"all": {"hosts": {container: host}}}))
    cmd = [
        str(Path(sys.executable).parent / "ansible"),
        container,
        "-i",
        str(inventory),
        "-m",
        f"daemonops.suite.{module}",
        "-a",
        json.dumps(args),
    ]
    env = ansible_env(tmp)
    env.pop("ANSIBLE_REMOTE_TEMP")  # a path of this machine, not of the container
    env.update((k, v) for k, v in podman_env().items() if k == "CONTAINERS_CONF")
    proc = subprocess.run(
        cmd, env=env, cwd=str(tmp), capture_output=True, text=True, timeout=180, check=False
    )
    try:
        output = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"ansible gave no JSON (rc {proc.returncode}): {proc.stdout}{proc.stderr}")
    return output["plays"][0]["tasks"][0]["hosts"][container]


def test_debian_cluster_found_by_its_systemd_unit(cluster_container: str, tmp_path: Path):
    result = in_container(cluster_container, tmp_path, "discover", {"unit": "postgresql@*.service"})
    assert not result.get("failed"), result.get("msg")
    proposal = result["proposal"]
    load_profile(proposal)
    assert proposal["suite"]["systemd_unit"] == CLUSTER_UNIT
    daemons = {daemon["name"]: daemon for daemon in proposal["daemons"]}
    master = daemons["postgres"]
    assert master["match"] == {
        "cmdline": "^/usr/lib/postgresql/15/bin/postgres( |$)",
        "exe": "^/usr/lib/postgresql/15/bin/postgres$",
    }
    assert master["ports"] == [{"port": 5432, "probe": {"type": "tcp"}}]
    checkpointer = daemons["postgres_checkpointer"]
    assert checkpointer["match"]["cmdline"] == "^postgres: 15/main: checkpointer( |$)"
    assert checkpointer["ancestor"] == "postgres"
    assert all(d.get("ancestor") == "postgres" for name, d in daemons.items() if name != "postgres")
    facts = {prog["daemon"]: prog for prog in result["programs"]}
    assert facts["postgres"]["units"] == [CLUSTER_UNIT]
    assert facts["postgres"]["users"] == ["postgres"]
    pidfiles = {f["path"]: f["one_line"] for f in facts["postgres"]["pidfiles"]}
    assert pidfiles == {
        "/run/postgresql/15-main.pid": True,  # Debian's external_pid_file, found in /run
        "/var/lib/postgresql/15/main/postmaster.pid": False,  # the data directory (-D)
    }

    health = in_container(
        cluster_container, tmp_path, "health_info", {"profile_data": proposal, "roles": ["server"]}
    )
    assert health["status"] == "SUCCESS", health["msg"]
    assert health["daemons"]["postgres"]["ports"][0]["owned"] is True

    podman("exec", cluster_container, "systemctl", "stop", CLUSTER_UNIT)
    health = in_container(
        cluster_container, tmp_path, "health_info", {"profile_data": proposal, "roles": ["server"]}
    )
    assert health["status"] == "FAILURE" and "postgres offline" in health["msg"]
    gone = in_container(cluster_container, tmp_path, "discover", {"unit": "postgresql@*.service"})
    assert gone["failed"] and gone["msg"].startswith("unit: no process runs in a systemd unit")
