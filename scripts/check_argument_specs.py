#!/usr/bin/env python
"""Check that each role's meta/argument_specs.yml mirrors its defaults/main.yml.

For every ``roles/<role>/`` (or the role directories given on the command line) the options of the
``main`` entry point are compared with the keys of ``defaults/main.yml``:

- both name the same public variables (``__private`` keys in defaults are ignored; an option with
  ``required: true`` may be left out of defaults, since it has no default);
- each default value fits the option's ``type`` (and ``elements`` for lists, ``choices`` when
  given); ``null`` and Jinja2-templated strings fit any type;
- when the option declares ``default``, it equals the value in defaults/main.yml.

Exit status 0 when every role agrees, 1 with one line per problem (naming role and variable),
2 on usage errors.

Usage: scripts/check_argument_specs.py [ROLE_DIR ...]   (default: every directory in roles/)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

TOP = Path(__file__).resolve().parent.parent

# type name in argument_specs -> predicate on a default value
_TYPE_CHECKS: dict[str, Any] = {
    "str": lambda v: isinstance(v, str),
    "path": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "raw": lambda v: True,
    "json": lambda v: isinstance(v, (str, dict, list)),
    "jsonarg": lambda v: isinstance(v, (str, dict, list)),
    "bytes": lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
    "bits": lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that accepts Ansible's tags (!unsafe, !vault) as plain values."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tagged)


class SpecError(Exception):
    """A file that cannot be read or does not have the expected shape."""


def load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read YAML: {exc}") from exc


def _is_templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _canonical(value: Any) -> str:
    """A comparison key that tells 1 from true and 1 from 1.0 (YAML keeps them apart too)."""

    def tag(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): tag(x) for k, x in v.items()}
        if isinstance(v, list):
            return [tag(x) for x in v]
        return [type(v).__name__, v]

    return json.dumps(tag(value), sort_keys=True, default=str)


def check_value(role: str, name: str, spec: dict[str, Any], value: Any) -> list[str]:
    """Problems of one default value against its option spec."""
    where = f"role {role}: variable {name}"
    problems: list[str] = []
    type_name = str(spec.get("type", "str"))
    if type_name not in _TYPE_CHECKS:
        return [f"{where}: meta/argument_specs.yml has unknown type '{type_name}'"]
    if value is None or _is_templated(value):
        return problems
    if not _TYPE_CHECKS[type_name](value):
        problems.append(
            f"{where}: default {value!r} in defaults/main.yml is {type(value).__name__}, "
            f"but meta/argument_specs.yml says type: {type_name}"
        )
        return problems
    elements = spec.get("elements")
    if type_name == "list" and elements is not None:
        check = _TYPE_CHECKS.get(str(elements))
        if check is None:
            problems.append(f"{where}: meta/argument_specs.yml has unknown elements '{elements}'")
        else:
            for index, item in enumerate(value):
                if item is not None and not _is_templated(item) and not check(item):
                    problems.append(
                        f"{where}: item {index} ({item!r}) of the default in defaults/main.yml "
                        f"is {type(item).__name__}, but meta/argument_specs.yml says "
                        f"elements: {elements}"
                    )
    choices = spec.get("choices")
    if choices is not None:
        items = value if type_name == "list" else [value]
        for item in items:
            if not _is_templated(item) and item not in choices:
                problems.append(
                    f"{where}: default {item!r} in defaults/main.yml is not one of the "
                    f"choices {choices} in meta/argument_specs.yml"
                )
    return problems


def check_role(role_dir: Path) -> list[str]:
    """All problems found in one role directory (empty list when it agrees)."""
    role = role_dir.name
    spec_path = role_dir / "meta" / "argument_specs.yml"
    defaults_path = role_dir / "defaults" / "main.yml"
    if not spec_path.is_file() and not defaults_path.is_file():
        return []
    if not spec_path.is_file():
        return [
            f"role {role}: defaults/main.yml exists but meta/argument_specs.yml does not; "
            "document every public variable under argument_specs.main.options"
        ]
    try:
        spec_doc = load_yaml(spec_path)
        defaults = load_yaml(defaults_path) if defaults_path.is_file() else {}
    except SpecError as exc:
        return [f"role {role}: {exc}"]
    defaults = defaults or {}
    if not isinstance(defaults, dict):
        return [f"role {role}: defaults/main.yml must be a mapping of variables"]
    try:
        options = spec_doc["argument_specs"]["main"].get("options") or {}
    except (TypeError, KeyError, AttributeError):
        return [f"role {role}: meta/argument_specs.yml has no argument_specs.main entry point"]
    if not isinstance(options, dict):
        return [f"role {role}: argument_specs.main.options must be a mapping"]

    problems: list[str] = []
    public_defaults = {k: v for k, v in defaults.items() if not str(k).startswith("__")}
    for name in sorted(set(public_defaults) - set(options)):
        problems.append(
            f"role {role}: variable {name} is in defaults/main.yml but not in "
            "meta/argument_specs.yml (add it under argument_specs.main.options)"
        )
    for name in sorted(options):
        spec = options[name]
        if not isinstance(spec, dict):
            problems.append(f"role {role}: variable {name}: option spec must be a mapping")
            continue
        if name not in public_defaults:
            if not spec.get("required", False):
                problems.append(
                    f"role {role}: variable {name} is in meta/argument_specs.yml but not in "
                    "defaults/main.yml (give it a default, or mark it required: true)"
                )
            continue
        value = public_defaults[name]
        problems.extend(check_value(role, name, spec, value))
        if "default" in spec and _canonical(spec["default"]) != _canonical(value):
            problems.append(
                f"role {role}: variable {name}: meta/argument_specs.yml says default "
                f"{spec['default']!r} but defaults/main.yml has {value!r}"
            )
    return problems


def role_dirs(paths: Iterable[str]) -> list[Path]:
    given = [Path(p) for p in paths]
    if given:
        return given
    roles = TOP / "roles"
    return sorted(p for p in roles.iterdir() if p.is_dir()) if roles.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roles", nargs="*", help="role directories (default: roles/*)")
    args = parser.parse_args(argv)
    dirs = role_dirs(args.roles)
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        for d in missing:
            print(f"check_argument_specs: {d} is not a directory", file=sys.stderr)
        return 2
    problems: list[str] = []
    for d in dirs:
        problems.extend(check_role(d))
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_argument_specs: {len(problems)} problem(s) in {len(dirs)} role(s)")
        return 1
    print(f"check_argument_specs: {len(dirs)} role(s) agree with their defaults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
