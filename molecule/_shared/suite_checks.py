"""Testinfra helpers shared by the molecule scenarios (default, fleet, faults).

The expectations come from the suite profile (profiles/refsuite/profile.yml) and from the INI on the
target, never from the modules under test: processes are read with `ps`, listeners with `ss`,
so the checks are independent of the collection's own psutil code.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))
PROFILE_PATH = PROJECT / "profiles" / "refsuite" / "profile.yml"
REFSUITE = "/opt/refsuite/bin/refsuite"
CONFIG = "/etc/refsuite/refsuite.ini"
UNIT = "refsuite.service"
SUITE_ROLES = ("server", "rds", "client")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    args: str


@dataclass
class Expected:
    """One daemon expected on a host: profile data with the host's INI overrides applied."""

    name: str
    cmdline: re.Pattern[str]
    ancestor: str | None
    ports: list[int] = field(default_factory=list)
    count_min: int = 1
    count_max: int | None = None


def load_profile(path: Path = PROFILE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def podman_hosts(*names: str) -> list[str]:
    """`testinfra_hosts` entries for the containers: testinfra's podman backend runs each
    command with one `podman exec` (its ansible backend has no podman support and would start
    a whole `ansible` run per command)."""
    return [f"podman://{name}" for name in names]


@lru_cache(maxsize=1)
def _inventory() -> Any:
    from testinfra.utils.ansible_runner import AnsibleRunner

    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert path, "MOLECULE_INVENTORY_FILE is not set: run the tests through `molecule verify`"
    return AnsibleRunner(path)


def host_roles(host: Any) -> list[str]:
    """The suite roles of a host = its inventory groups that are suite roles."""
    groups = _inventory().get_variables(host.backend.hostname).get("group_names", [])
    return [g for g in groups if g in SUITE_ROLES]


def read_ini(host: Any, path: str = CONFIG) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    ini = host.file(path)
    assert ini.exists, f"{host.backend.hostname}: {path} missing (install/config did not run?)"
    parser.read_string(ini.content_string)
    return parser


def expected_daemons(host: Any, profile: dict[str, Any] | None = None) -> list[Expected]:
    """Daemons of the host's roles that are enabled (profile default or INI `enabled`)."""
    profile = profile or load_profile()
    roles = set(host_roles(host))
    assert roles, f"{host.backend.hostname} is in no suite group ({SUITE_ROLES})"
    ini = read_ini(host)
    result: list[Expected] = []
    for daemon in profile["daemons"]:
        if not roles.intersection(daemon["roles"]):
            continue
        name = daemon["name"]
        enabled = daemon.get("enabled", True)
        if ini.has_option(name, "enabled"):
            enabled = ini.getboolean(name, "enabled")
        if not enabled:
            continue
        ports = [p["port"] for p in daemon.get("ports", [])]
        for key in ("ports", "port"):
            if ini.has_option(name, key):
                override = [int(x) for x in ini.get(name, key).split(",") if x.strip()]
                ports = override + ports[len(override) :]
                break
        count = daemon.get("count", {})
        result.append(
            Expected(
                name=name,
                cmdline=re.compile(daemon["match"]["cmdline"]),
                ancestor=daemon.get("ancestor"),
                ports=ports,
                count_min=count.get("min", 1),
                count_max=count.get("max"),
            )
        )
    return result


def process_table(host: Any) -> dict[int, Proc]:
    out = host.check_output("ps -eo pid=,ppid=,args=")
    table: dict[int, Proc] = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        table[int(parts[0])] = Proc(int(parts[0]), int(parts[1]), parts[2])
    return table


def pids_of(table: dict[int, Proc], pattern: re.Pattern[str]) -> list[int]:
    return sorted(p.pid for p in table.values() if pattern.search(p.args))


def ancestors(table: dict[int, Proc], pid: int) -> list[int]:
    chain: list[int] = []
    current = table[pid].ppid if pid in table else 0
    while current > 1 and current in table and current not in chain:
        chain.append(current)
        current = table[current].ppid
    return chain


def listeners(host: Any) -> dict[int, set[int]]:
    """TCP port -> pids holding a listening socket on it (from `ss -Htlnp`)."""
    out = host.check_output("ss -Htlnp")
    result: dict[int, set[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        port = int(local.rsplit(":", 1)[1])
        result.setdefault(port, set()).update(int(p) for p in re.findall(r"pid=(\d+)", line))
    return result


def daemon_problems(host: Any) -> list[str]:
    """Everything wrong with the suite on this host, as readable strings (empty = healthy)."""
    expected = expected_daemons(host)
    by_name = {e.name: e for e in expected}
    table = process_table(host)
    held = listeners(host)
    problems: list[str] = []
    pids = {e.name: pids_of(table, e.cmdline) for e in expected}
    for exp in expected:
        found = pids[exp.name]
        if len(found) < exp.count_min or (exp.count_max is not None and len(found) > exp.count_max):
            problems.append(
                f"{exp.name}: {len(found)} processes, expected {exp.count_min}..{exp.count_max}"
            )
        if exp.ancestor and found:
            ancestor = by_name.get(exp.ancestor)
            ancestor_pids = set(pids.get(exp.ancestor, [])) if ancestor else set()
            for pid in found:
                if not ancestor_pids.intersection(ancestors(table, pid)):
                    problems.append(
                        f"{exp.name}[{pid}]: no {exp.ancestor} among ancestors "
                        f"{ancestors(table, pid)}"
                    )
        for port in exp.ports:
            holders = held.get(port, set())
            if not holders:
                problems.append(f"{exp.name}: port {port} not listening")
            elif not holders.issubset(found):
                problems.append(f"{exp.name}: port {port} held by {sorted(holders)}, not {found}")
    return problems


def assert_suite_healthy(host: Any) -> None:
    problems = daemon_problems(host)
    assert not problems, f"{host.backend.hostname}: " + "; ".join(problems)


def refsuite_status(host: Any) -> Any:
    return host.run(f"{REFSUITE} --config {CONFIG} status")


def assert_status_success(host: Any) -> None:
    result = refsuite_status(host)
    assert result.rc == 0 and "STATUS=SUCCESS" in result.stdout, (
        f"{host.backend.hostname}: refsuite status rc={result.rc}\n{result.stdout}{result.stderr}"
    )


def unit_properties(host: Any, unit: str = UNIT, *names: str) -> dict[str, str]:
    args = " ".join(f"-p {n}" for n in names)
    out = host.check_output(f"systemctl show {unit} {args}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def sha256_of(host: Any, path: str) -> str:
    return host.check_output(f"sha256sum {path}").split()[0]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def read_json(host: Any, path: str) -> Any:
    content = host.file(path)
    assert content.exists, f"{host.backend.hostname}: {path} missing (side_effect did not run?)"
    return json.loads(content.content_string)


def ansible_playbook(playbook: str, *args: str, timeout: float = 900) -> Any:
    """Run a playbook of the collection against the scenario's inventory, from a test, as a
    user would (`ansible-playbook -i <inventory> playbooks/<playbook>`); the CompletedProcess."""
    import subprocess
    import sys

    venv = Path(sys.executable).parent
    collections = [str(PROJECT / ".build" / "collections")]
    collections += [
        str(p) for p in (venv.parent / "lib").glob("python3*/site-packages/ansible_collections")
    ]
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=":".join(
            p.rsplit("/ansible_collections", 1)[0] for p in collections
        ),
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
        ANSIBLE_FORCE_COLOR="0",
        CONTAINERS_CONF=str(PROJECT / ".build" / "containers.conf"),
    )
    env.pop("ANSIBLE_CONFIG", None)
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "MOLECULE_INVENTORY_FILE is not set: run the tests through `molecule verify`"
    return subprocess.run(
        [
            str(venv / "ansible-playbook"),
            "-i",
            inventory,
            str(PROJECT / "playbooks" / playbook),
            *args,
        ],
        env=env,
        cwd=str(PROJECT),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
