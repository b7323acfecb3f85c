"""Every module and role of the collection renders with ansible-doc.

Modules: `ansible-doc daemonops.suite.<module>` succeeds and shows EXAMPLES and RETURN VALUES;
the JSON form has non-empty examples and return documentation.  Roles: `ansible-doc -t role
daemonops.suite.<role>` shows the `main` entry point with every option of meta/argument_specs.yml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
MODULES = sorted(
    p.stem for p in (TOP / "plugins" / "modules").glob("*.py") if not p.name.startswith("_")
)
ROLES = (
    sorted(p.name for p in (TOP / "roles").iterdir() if p.is_dir())
    if (TOP / "roles").is_dir()
    else []
)


def tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run scripts/bootstrap.sh")
    return found


@pytest.fixture(scope="module")
def doc_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment where daemonops.suite is this checkout and nothing else."""
    collections = tmp_path_factory.mktemp("collections")
    namespace = collections / "ansible_collections" / "daemonops"
    namespace.mkdir(parents=True)
    (namespace / "suite").symlink_to(TOP, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.pop("PYTHONPATH", None)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOME=str(tmp_path_factory.mktemp("ansible_home")),
    )
    return env


def _run_doc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("ansible-doc"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class Doc(t.NamedTuple):
    text: str
    data: dict[str, t.Any]
    error: str


def _split_text(text: str, kind: str) -> dict[str, str]:
    """Split the text of several plugins at their `> MODULE name` / `> ROLE: *name*` headers."""
    header = re.compile(rf"^> {kind.upper()}:? \*?(\S+?)\*? ", re.MULTILINE)
    marks = list(header.finditer(text))
    return {
        m.group(1): text[m.start() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, m in enumerate(marks)
    }


def collect_docs(env: dict[str, str], kind: str, names: list[str]) -> dict[str, Doc]:
    """ansible-doc text and JSON of every plugin: one call for all, one per plugin on failure
    (so that one broken plugin does not hide the state of the others)."""
    fqcns = [f"daemonops.suite.{n}" for n in names]
    text = _run_doc(env, "-t", kind, *fqcns)
    data = _run_doc(env, "-t", kind, "--json", *fqcns)
    if text.returncode == 0 and data.returncode == 0 and "ERROR" not in text.stderr + data.stderr:
        texts = _split_text(text.stdout, kind)
        datas = json.loads(data.stdout)
        missing = f"ansible-doc -t {kind} returned no documentation for it:\n{data.stderr}"
        return {
            n: Doc(texts.get(f, ""), datas.get(f, {}), "" if datas.get(f) else missing)
            for n, f in zip(names, fqcns)
        }
    docs = {}
    for name, fqcn in zip(names, fqcns):
        one_text = _run_doc(env, "-t", kind, fqcn)
        one_data = _run_doc(env, "-t", kind, "--json", fqcn)
        error = ""
        for result in (one_text, one_data):
            if result.returncode != 0 or "ERROR" in result.stderr:
                error = f"ansible-doc -t {kind} {fqcn}:\n{result.stdout}{result.stderr}"
        parsed = json.loads(one_data.stdout).get(fqcn, {}) if not error else {}
        if not error and not parsed:
            error = f"ansible-doc -t {kind} {fqcn} returned no documentation:\n{one_data.stderr}"
        docs[name] = Doc(one_text.stdout, parsed, error)
    return docs


@pytest.fixture(scope="module")
def module_docs(doc_env: dict[str, str]) -> dict[str, Doc]:
    return collect_docs(doc_env, "module", MODULES)


@pytest.fixture(scope="module")
def role_docs(doc_env: dict[str, str]) -> dict[str, Doc]:
    return collect_docs(doc_env, "role", ROLES)


def test_the_collection_has_modules_and_roles() -> None:
    assert MODULES, "plugins/modules/ has no modules"
    assert ROLES, "roles/ has no roles"


@pytest.mark.parametrize("module", MODULES)
def test_module_documentation(module_docs: dict[str, Doc], module: str) -> None:
    fqcn = f"daemonops.suite.{module}"
    doc = module_docs[module]
    assert not doc.error, doc.error
    text = doc.text
    assert "EXAMPLES:" in text, f"{fqcn}: no EXAMPLES section\n{text}"
    assert "RETURN VALUES:" in text, f"{fqcn}: no RETURN VALUES section\n{text}"
    data = doc.data
    assert data["doc"]["module"] == module
    assert data["doc"].get("short_description"), f"{fqcn}: no short_description"
    assert data["examples"] and data["examples"].strip(), f"{fqcn}: EXAMPLES is empty"
    # the examples are YAML task lists that call the module by its FQCN
    examples = yaml.safe_load(data["examples"])
    assert isinstance(examples, list) and examples, f"{fqcn}: EXAMPLES is not a task list"
    assert fqcn in data["examples"], f"{fqcn}: EXAMPLES never call the module by its FQCN"
    assert isinstance(data["return"], dict) and data["return"], f"{fqcn}: RETURN is empty"
    for option, spec in data["doc"].get("options", {}).items():
        assert spec.get("description"), f"{fqcn}: option {option} has no description"


def _role_options(role: str) -> dict[str, t.Any]:
    spec_file = TOP / "roles" / role / "meta" / "argument_specs.yml"
    assert spec_file.is_file(), f"role {role}: meta/argument_specs.yml is missing"
    spec = yaml.safe_load(spec_file.read_text())
    return spec["argument_specs"]["main"].get("options") or {}


@pytest.mark.parametrize("role", ROLES)
def test_role_documentation(role_docs: dict[str, Doc], role: str) -> None:
    fqcn = f"daemonops.suite.{role}"
    options = _role_options(role)
    doc = role_docs[role]
    assert not doc.error, doc.error
    text = doc.text
    # without colour, ansible-doc 2.19 marks bold text with asterisks: "ENTRY POINT: *main*"
    assert re.search(r"ENTRY POINT: \*?main\*?", text), f"{fqcn}: no main entry point\n{text}"
    for option in options:
        assert option in text, f"{fqcn}: option {option} missing from ansible-doc output"
    main = doc.data["entry_points"]["main"]
    assert main.get("short_description"), f"{fqcn}: main entry point has no short_description"
    assert set(main.get("options", {})) == set(options)
