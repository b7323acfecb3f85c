# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures of the integration tests: free ports, impersonated process trees and a runner
that calls a real module of the collection through ``ansible`` / ``ansible-playbook``.

Fixtures:

- ``free_port(address="127.0.0.1") -> int``: a port nobody listens on right now (bind port 0).
- ``impersonate(roots, timeout=20.0) -> ImpersonatedTree``: start impersonated processes
  (``impersonate.Proc`` trees) and wait until they listen; killed (whole process groups) after
  the test. ``impersonate.mention(*words) -> Popen`` starts a ``grep -e words`` that only
  mentions daemon names; killed after the test too.
- ``ansible_module(module, args, check=False, diff=False, groups=(), via="adhoc", env=None,
  timeout=120) -> dict``: run ``daemonops.suite.<module>`` on localhost (connection local,
  interpreter = this virtualenv's Python, so psutil is there) and return the module's result
  as parsed from the ``json`` stdout callback (``failed``/``msg`` included when it failed).
  ``via="adhoc"`` runs ``ansible localhost -m ... -a '<json>'``; ``via="playbook"`` writes a
  one-task playbook and runs ``ansible-playbook``. ``groups`` puts localhost in those inventory
  groups (so the action plugin sees them as ``group_names``). The command line, return code
  and raw output are in ``result["_ansible_run"]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from impersonate import ImpersonatedTree, Proc, mention
from modrun import find_free_port, run_ansible_json


@pytest.fixture
def free_port() -> Callable[..., int]:
    """``free_port(address="127.0.0.1")``: a currently free TCP port (different each call)."""
    given: set[int] = set()

    def factory(address: str = "127.0.0.1") -> int:
        for _unused in range(50):
            port = find_free_port(address)
            if port not in given:
                given.add(port)
                return port
        raise RuntimeError("no free port found")  # pragma: no cover

    return factory


class _Impersonator:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.trees: list[ImpersonatedTree] = []
        self.mentions: list[subprocess.Popen] = []

    def __call__(
        self, roots: Union[Proc, Sequence[Proc]], timeout: float = 20.0
    ) -> ImpersonatedTree:
        tree = ImpersonatedTree(roots, self.workdir, timeout=timeout)
        self.trees.append(tree)
        return tree.start()

    def mention(self, *words: str) -> subprocess.Popen:
        proc = mention(*words)
        self.mentions.append(proc)
        return proc

    def cleanup(self) -> None:
        for tree in self.trees:
            tree.stop()
        for proc in self.mentions:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def impersonate(tmp_path: Path) -> Iterator[_Impersonator]:
    impersonator = _Impersonator(tmp_path)
    try:
        yield impersonator
    finally:
        impersonator.cleanup()


def _inventory(tmp: Path, groups: Sequence[str]) -> Path:
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory: dict[str, Any] = {"all": {"hosts": {"localhost": host}}}
    if groups:
        inventory["all"]["children"] = {group: {"hosts": {"localhost": {}}} for group in groups}
    path = tmp / "inventory.json"
    path.write_text(json.dumps(inventory))  # JSON is YAML
    return path


def _host_result(output: dict[str, Any]) -> dict[str, Any]:
    plays = output.get("plays") or []
    tasks = [task for play in plays for task in play.get("tasks", [])]
    for task in reversed(tasks):
        hosts = task.get("hosts") or {}
        if "localhost" in hosts:
            return dict(hosts["localhost"])
    raise AssertionError(f"no localhost result in ansible output: {json.dumps(output)[:2000]}")


class AnsibleRunner:
    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        bindir = Path(sys.executable).parent
        self.ansible = str(bindir / "ansible")
        self.playbook = str(bindir / "ansible-playbook")

    def __call__(
        self,
        module: str,
        args: dict[str, Any],
        check: bool = False,
        diff: bool = False,
        groups: Sequence[str] = (),
        via: str = "adhoc",
        env: Optional[dict[str, str]] = None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        tmp = self.tmp_path_factory.mktemp(f"ansible-{module}")
        inventory = _inventory(tmp, groups)
        fqcn = module if "." in module else f"daemonops.suite.{module}"
        if via == "adhoc":
            cmd = [self.ansible, "localhost", "-i", str(inventory), "-m", fqcn]
            cmd += ["-a", json.dumps(args)]
        elif via == "playbook":
            play = [
                {
                    "name": f"run {fqcn}",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [{"name": fqcn, fqcn: args}],
                }
            ]
            book = tmp / "playbook.yml"
            book.write_text(json.dumps(play))
            cmd = [self.playbook, "-i", str(inventory), str(book)]
        else:  # pragma: no cover
            raise ValueError(f"via must be adhoc or playbook, not {via!r}")
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc, output = run_ansible_json(cmd, tmp, tmp, timeout, env)
        result = _host_result(output)
        result["_ansible_run"] = {
            "cmd": cmd,
            "rc": proc.returncode,
            "stderr": proc.stderr,
        }
        return result


@pytest.fixture(scope="session")
def ansible_module(tmp_path_factory: pytest.TempPathFactory) -> AnsibleRunner:
    return AnsibleRunner(tmp_path_factory)
