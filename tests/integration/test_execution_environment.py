"""meta/execution-environment.yml is a valid ansible-builder v3 definition.

`ansible-builder create` writes a build context (Containerfile and requirement files) without
building an image, so it runs offline; `ansible-builder introspect` is what a build of another
execution environment does with this collection once installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
EE_FILE = TOP / "meta" / "execution-environment.yml"


def tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run scripts/bootstrap.sh")
    return found


def requirement_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_definition_is_version_3_with_the_collection_files() -> None:
    data = yaml.safe_load(EE_FILE.read_text())
    assert data["version"] == 3
    deps = data["dependencies"]
    assert deps["python"] == "requirements-target.txt"
    assert deps["system"] == "bindep.txt"
    collections = [c["name"] for c in deps["galaxy"]["collections"]]
    assert "daemonops.suite" in collections


@pytest.mark.parametrize("name", ["requirements-target.txt", "bindep.txt"])
def test_meta_copies_match_the_root_files(name: str) -> None:
    # a direct build resolves paths relative to meta/, introspection relative to the root
    root, copy = TOP / name, TOP / "meta" / name
    assert copy.read_text() == root.read_text(), (
        f"meta/{name} differs from {name}; run `cp {name} meta/` after changing {name}"
    )


def test_ansible_builder_create_writes_the_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    result = subprocess.run(
        [tool("ansible-builder"), "create", "--file", str(EE_FILE), "--context", str(context)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    build = context / "_build"
    containerfile = (context / "Containerfile").read_text()
    base = yaml.safe_load(EE_FILE.read_text())["images"]["base_image"]["name"]
    assert f'EE_BASE_IMAGE="{base}"' in containerfile
    assert "introspect" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    # the requirement files land in the context as regular files with the same content
    for produced, source in [
        (build / "requirements.txt", TOP / "requirements-target.txt"),
        (build / "bindep.txt", TOP / "bindep.txt"),
    ]:
        assert produced.is_file() and not produced.is_symlink(), produced
        assert requirement_lines(produced) == requirement_lines(source)
    assert any(line.startswith("psutil") for line in requirement_lines(build / "requirements.txt"))
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    assert "daemonops.suite" in [c["name"] for c in galaxy["collections"]]


def test_introspection_of_the_installed_collection(tmp_path: Path) -> None:
    # lay the collection out the way an execution environment build installs it
    root = tmp_path / "ansible_collections" / "daemonops" / "suite"
    (root / "meta").mkdir(parents=True)
    for name in ("galaxy.yml", "requirements-target.txt", "bindep.txt"):
        shutil.copy(TOP / name, root / name)
    shutil.copy(EE_FILE, root / "meta" / EE_FILE.name)
    result = subprocess.run(
        [tool("ansible-builder"), "introspect", "--sanitize", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load(result.stdout)
    python = [line.split("#")[0].strip() for line in data["python"]]
    system = [line.split("#")[0].strip() for line in data["system"]]
    assert python == requirement_lines(TOP / "requirements-target.txt")
    assert system == requirement_lines(TOP / "bindep.txt")
