"""The collection builds into a tarball that installs and works on its own.

`ansible-galaxy collection build` then `ansible-galaxy collection install` into tmp_path; the
installed copy must hold the profiles, the bundled reference suite, the roles and the playbooks,
none of the development clutter, and a module must run from it with only the installed copy on
the collections path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((TOP / "galaxy.yml").read_text())


def tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run scripts/bootstrap.sh")
    return found


def clean_env(home: Path, collections: Path) -> dict[str, str]:
    """Only `collections` provides daemonops.suite: no checkout on PYTHONPATH or sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.pop("PYTHONPATH", None)
    env.update(
        ANSIBLE_HOME=str(home),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    return env


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, **kw)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("galaxy")
    collections = base / "collections"
    env = clean_env(base / "home", collections)
    run(
        [
            tool("ansible-galaxy"),
            "collection",
            "build",
            "--output-path",
            str(base / "dist"),
            str(TOP),
        ],
        env=env,
        cwd=base,
    )
    tarball = base / "dist" / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    assert tarball.is_file(), sorted(p.name for p in (base / "dist").iterdir())
    run(
        [
            tool("ansible-galaxy"),
            "collection",
            "install",
            "--offline",
            "-p",
            str(collections),
            str(tarball),
        ],
        env=env,
        cwd=base,
    )
    root = collections / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    assert (root / "MANIFEST.json").is_file()
    return root, env


def _relative_files(directory: Path) -> set[str]:
    return {
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_profiles_are_installed(installed: tuple[Path, dict[str, str]]) -> None:
    root = installed[0]
    expected = {p.name for p in (TOP / "profiles").glob("*.yml")}
    assert expected, "profiles/ has no profiles"
    assert {p.name for p in (root / "profiles").glob("*.yml")} == expected
    for name in expected:
        assert (root / "profiles" / name).read_bytes() == (TOP / "profiles" / name).read_bytes()


def test_refsuite_is_installed(installed: tuple[Path, dict[str, str]]) -> None:
    root = installed[0]
    assert (root / "refsuite").is_dir()
    missing = _relative_files(TOP / "refsuite") - _relative_files(root / "refsuite")
    assert not missing, f"refsuite files missing from the installed collection: {sorted(missing)}"


def test_roles_playbooks_and_plugins_are_installed(installed: tuple[Path, dict[str, str]]) -> None:
    root = installed[0]
    roles = sorted(p.name for p in (TOP / "roles").iterdir() if p.is_dir())
    assert roles, "roles/ has no roles"
    for role in roles:
        missing = _relative_files(TOP / "roles" / role) - _relative_files(root / "roles" / role)
        assert not missing, f"role {role}: files missing: {sorted(missing)}"
    for sub in ("playbooks", "plugins/modules", "plugins/module_utils", "meta"):
        if (TOP / sub).is_dir():
            missing = _relative_files(TOP / sub) - _relative_files(root / sub)
            assert not missing, f"{sub}: files missing: {sorted(missing)}"


def test_development_clutter_is_not_installed(installed: tuple[Path, dict[str, str]]) -> None:
    root = installed[0]
    for name in (".venv", ".build", ".git", ".ansible", "tests/output", "reports"):
        assert not (root / name).exists(), f"{name} was packaged into the collection"
    files = json.loads((root / "FILES.json").read_text())["files"]
    assert not [f["name"] for f in files if f["name"].endswith(".tar.gz")]


def test_module_runs_from_the_installed_copy(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = installed
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Health of the reference suite from the installed collection",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Check",
                            "daemonops.suite.health_info": {
                                "profile": "refsuite",
                                "roles": ["client"],
                                "probes": False,
                            },
                            "register": "health",
                        },
                        {
                            "name": "Save the result",
                            "ansible.builtin.copy": {
                                "content": "{{ health | to_json }}",
                                "dest": str(tmp_path / "health.json"),
                                "mode": "0644",
                            },
                        },
                    ],
                }
            ]
        )
    )
    run(
        [
            tool("ansible-playbook"),
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-v",
            str(playbook),
        ],
        env=env,
        cwd=tmp_path,
    )
    health = json.loads((tmp_path / "health.json").read_text())
    assert health["changed"] is False
    assert health["profile"] == "refsuite"
    assert health["status"] in ("SUCCESS", "FAILURE")
    assert "qm" in health["daemons"], health
    assert health["roles"] == ["client"]
    # and only the installed copy was on the collections path
    listed = run(
        [tool("ansible-galaxy"), "collection", "list", "daemonops.suite", "--format", "json"],
        env=env,
        cwd=tmp_path,
    )
    paths = json.loads(listed.stdout)
    assert list(paths) == [str(root.parent.parent)], paths
