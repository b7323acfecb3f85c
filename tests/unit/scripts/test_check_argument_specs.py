"""Unit tests for scripts/check_argument_specs.py, on role directories made under tmp_path."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check_argument_specs.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_argument_specs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cas = _load()

GOOD_OPTIONS: dict[str, Any] = {
    "demo_prefix": {"type": "path", "default": "/opt/demo", "description": "where"},
    "demo_port": {"type": "int", "default": 11401, "description": "port"},
    "demo_enabled": {"type": "bool", "default": True, "description": "on?"},
    "demo_ratio": {"type": "float", "default": 0.5, "description": "ratio"},
    "demo_roles": {
        "type": "list",
        "elements": "str",
        "default": ["server"],
        "choices": ["server", "rds", "client"],
        "description": "roles",
    },
    "demo_extra": {"type": "dict", "default": {}, "description": "extra"},
    "demo_backend": {
        "type": "str",
        "choices": ["systemd", "direct"],
        "default": "systemd",
        "description": "backend",
    },
    "demo_profile_data": {"type": "dict", "description": "no default declared"},
    "demo_host": {"type": "str", "description": "templated default"},
    "demo_token": {"type": "str", "required": True, "description": "no default at all"},
}
GOOD_DEFAULTS: dict[str, Any] = {
    "demo_prefix": "/opt/demo",
    "demo_port": 11401,
    "demo_enabled": True,
    "demo_ratio": 0.5,
    "demo_roles": ["server"],
    "demo_extra": {},
    "demo_backend": "systemd",
    "demo_profile_data": None,
    "demo_host": "{{ inventory_hostname }}",
    "__demo_private": "not part of the interface",
}


def make_role(
    root: Path,
    name: str = "demo",
    options: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Path:
    role = root / name
    if options is not None:
        (role / "meta").mkdir(parents=True)
        doc = {"argument_specs": {"main": {"short_description": "demo", "options": options}}}
        (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(doc))
    if defaults is not None:
        (role / "defaults").mkdir(parents=True)
        (role / "defaults" / "main.yml").write_text("---\n" + yaml.safe_dump(defaults))
    role.mkdir(parents=True, exist_ok=True)
    return role


def test_matching_role_has_no_problems(tmp_path: Path) -> None:
    role = make_role(tmp_path, options=GOOD_OPTIONS, defaults=GOOD_DEFAULTS)
    assert cas.check_role(role) == []
    assert cas.main([str(role)]) == 0


def test_variable_missing_from_spec_is_named(tmp_path: Path) -> None:
    defaults = {**GOOD_DEFAULTS, "demo_forgotten": 1}
    role = make_role(tmp_path, options=GOOD_OPTIONS, defaults=defaults)
    problems = cas.check_role(role)
    assert len(problems) == 1
    assert "role demo" in problems[0]
    assert "demo_forgotten" in problems[0]
    assert "not in meta/argument_specs.yml" in problems[0]


def test_variable_missing_from_defaults_is_named(tmp_path: Path) -> None:
    defaults = {k: v for k, v in GOOD_DEFAULTS.items() if k != "demo_port"}
    role = make_role(tmp_path, options=GOOD_OPTIONS, defaults=defaults)
    problems = cas.check_role(role)
    assert len(problems) == 1
    assert "demo_port" in problems[0]
    assert "not in defaults/main.yml" in problems[0]


@pytest.mark.parametrize(
    ("name", "bad_value", "needle"),
    [
        ("demo_port", "11401", "type: int"),
        ("demo_port", True, "type: int"),
        ("demo_enabled", "yes", "type: bool"),
        ("demo_roles", "server", "type: list"),
        ("demo_extra", [], "type: dict"),
        ("demo_prefix", 3, "type: path"),
    ],
)
def test_type_mismatch_is_named(tmp_path: Path, name: str, bad_value: Any, needle: str) -> None:
    options = {
        k: {kk: vv for kk, vv in v.items() if kk != "default"} for k, v in GOOD_OPTIONS.items()
    }
    defaults = {**GOOD_DEFAULTS, name: bad_value}
    role = make_role(tmp_path, options=options, defaults=defaults)
    problems = cas.check_role(role)
    assert any(name in p and needle in p for p in problems), problems


def test_list_elements_are_checked(tmp_path: Path) -> None:
    options = {"demo_ports": {"type": "list", "elements": "int", "description": "ports"}}
    role = make_role(tmp_path, options=options, defaults={"demo_ports": [11000, "11001"]})
    problems = cas.check_role(role)
    assert len(problems) == 1
    assert "item 1" in problems[0] and "elements: int" in problems[0]


def test_default_not_in_choices(tmp_path: Path) -> None:
    defaults = {**GOOD_DEFAULTS, "demo_backend": "upstart"}
    options = {**GOOD_OPTIONS}
    options["demo_backend"] = {k: v for k, v in options["demo_backend"].items() if k != "default"}
    role = make_role(tmp_path, options=options, defaults=defaults)
    problems = cas.check_role(role)
    assert len(problems) == 1
    assert "demo_backend" in problems[0] and "choices" in problems[0]


@pytest.mark.parametrize(
    ("name", "other"),
    [("demo_port", 11402), ("demo_ratio", 1.5), ("demo_roles", ["server", "rds"])],
)
def test_declared_default_must_equal_defaults(tmp_path: Path, name: str, other: Any) -> None:
    defaults = {**GOOD_DEFAULTS, name: other}
    role = make_role(tmp_path, options=GOOD_OPTIONS, defaults=defaults)
    problems = cas.check_role(role)
    assert len(problems) == 1
    assert f"variable {name}" in problems[0] and "says default" in problems[0]


def test_int_and_bool_are_not_equal_defaults(tmp_path: Path) -> None:
    options = {"demo_flag": {"type": "raw", "default": 1, "description": "raw"}}
    role = make_role(tmp_path, options=options, defaults={"demo_flag": True})
    problems = cas.check_role(role)
    assert len(problems) == 1 and "says default 1" in problems[0]


def test_role_without_argument_specs_fails(tmp_path: Path) -> None:
    role = make_role(tmp_path, defaults={"demo_port": 1})
    problems = cas.check_role(role)
    assert len(problems) == 1 and "meta/argument_specs.yml does not" in problems[0]


def test_spec_without_main_entry_point_fails(tmp_path: Path) -> None:
    role = make_role(tmp_path, defaults={"demo_port": 1})
    (role / "meta").mkdir()
    (role / "meta" / "argument_specs.yml").write_text("argument_specs:\n  other: {}\n")
    problems = cas.check_role(role)
    assert len(problems) == 1 and "argument_specs.main" in problems[0]


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    role = make_role(tmp_path, options=GOOD_OPTIONS, defaults=GOOD_DEFAULTS)
    (role / "defaults" / "main.yml").write_text("demo_port: [unclosed\n")
    problems = cas.check_role(role)
    assert len(problems) == 1 and "defaults/main.yml" in problems[0]


def test_ansible_tags_are_accepted(tmp_path: Path) -> None:
    options = {"demo_secret": {"type": "str", "description": "secret", "no_log": True}}
    role = make_role(tmp_path, options=options, defaults={})
    (role / "defaults" / "main.yml").write_text("demo_secret: !unsafe '{{ not templated }}'\n")
    assert cas.check_role(role) == []


def test_role_with_neither_file_is_skipped(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    (role / "tasks").mkdir()
    assert cas.check_role(role) == []


def test_command_line_exit_status_and_output(tmp_path: Path) -> None:
    make_role(tmp_path, "good", options=GOOD_OPTIONS, defaults=GOOD_DEFAULTS)
    bad = make_role(
        tmp_path, "bad", options=GOOD_OPTIONS, defaults={**GOOD_DEFAULTS, "demo_port": "x"}
    )
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "good"), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "role bad: variable demo_port" in result.stdout
    assert "role good" not in result.stdout
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "good")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "not a directory" in missing.stderr
