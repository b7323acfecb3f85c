"""The deploy section of a profile: normalisation and every refusal, with the field named."""

from __future__ import annotations

import copy
import os
import typing as t

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.deploy import validate_deploy
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import ProfileError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)

ROLES = ("server", "rds", "client")
DAEMONS = ("dird", "sd", "fd")

GOOD: dict[str, t.Any] = {
    "source": "packages",
    "packages": {"server": ["suite-dir"], "client": ["suite-fd"]},
    "vars": {"bind": "0.0.0.0"},
    "secrets": ["director"],
    "directories": [{"path": "{state_dir}/volumes", "owner": "suite", "mode": "0750"}],
    "files": [
        {
            "src": "dir.conf.j2",
            "dest": "/etc/suite/dir.conf",
            "mode": "0640",
            "validate": "/usr/sbin/dird -t -c %s",
            "restarts": ["dird"],
            "roles": ["server"],
        }
    ],
    "commands": [{"argv": ["{prefix}/bin/setup"], "creates": "{config_dir}/done"}],
    "units": [{"src": "x.service.j2", "name": "x.service", "enabled": True}],
    "profile": {"suite": {"config_file": "{config_file}"}},
    "health": {"timeout": 30},
}


def check(data: t.Any, folder: t.Optional[str] = None) -> dict[str, t.Any]:
    return validate_deploy(data, "p.yml", ROLES, DAEMONS, folder)


def test_good_section_is_normalised() -> None:
    result = check(copy.deepcopy(GOOD))
    assert result["directories"] == [
        {
            "path": "{state_dir}/volumes",
            "owner": "suite",
            "group": None,
            "mode": "0750",
            "roles": list(ROLES),
        }
    ]
    assert result["files"][0]["owner"] is None and result["files"][0]["roles"] == ["server"]
    assert result["units"][0] == {
        "src": "x.service.j2",
        "name": "x.service",
        "enabled": True,
        "started": False,
        "resume": False,
        "roles": list(ROLES),
    }
    assert result["health"] == {"timeout": 30, "delay": 1}
    assert result["ini"] is None
    # normalising twice changes nothing (profiles round-trip through to_dict)
    assert check(copy.deepcopy(result)) == result


def _bad(path: str, value: t.Any) -> dict[str, t.Any]:
    data = copy.deepcopy(GOOD)
    keys = path.split(".")
    target: t.Any = data
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("source", "rpm", "deploy.source: 'rpm' is not one of packages, bundled, archive"),
        (
            "packages",
            {"backup": ["x"]},
            "deploy.packages.backup: unknown key (allowed: server, rds, client)",
        ),
        ("packages", {}, "deploy.packages: source 'packages' needs packages"),
        ("vars", {"bad-name": 1}, "deploy.vars.bad-name: must be a plain name"),
        ("secrets", ["a", "a"], "deploy.secrets[1]: 'a' is listed twice"),
        ("directories", [{"mode": "0750"}], "deploy.directories[0].path: missing required field"),
        ("directories", [{"path": "relative"}], "must be an absolute path"),
        (
            "directories",
            [{"path": "/x", "mode": 750}],
            "deploy.directories[0].mode: must be an octal mode",
        ),
        ("files.0.validate", "dird -t", "deploy.files[0].validate: 'dird -t' must contain %s"),
        (
            "files.0.restarts",
            ["sdx"],
            "deploy.files[0].restarts[0]: 'sdx' is not a daemon of this profile",
        ),
        (
            "files.0.roles",
            ["backup"],
            "deploy.files[0].roles[0]: role 'backup' is not in suite.roles",
        ),
        ("files.0.src", "../x.j2", "must be a file name in the profile's templates/ folder"),
        ("files.0.dest", "{home}/x", "unknown placeholder '{home}'"),
        ("files.0.colour", "red", "deploy.files[0].colour: unknown key"),
        (
            "commands",
            [{"argv": [], "creates": "/x"}],
            "deploy.commands[0].argv: must be a non-empty argv list",
        ),
        ("commands", [{"argv": ["x"]}], "deploy.commands[0].creates: missing required field"),
        (
            "units",
            [{"src": "x.j2", "name": "x"}],
            "deploy.units[0].name: 'x' is not a systemd unit file name",
        ),
        (
            "units",
            [{"src": "x.j2", "name": "x.service\n"}],
            "is not a systemd unit file name",
        ),
        (
            "directories",
            [{"path": "/x", "mode": "0750\n"}],
            "deploy.directories[0].mode: must be an octal mode",
        ),
        ("secrets", ["pass\n"], "deploy.secrets[0]"),
        (
            "units",
            [{"src": "x.j2", "name": "x.service", "enabled": "yes"}],
            "must be true or false",
        ),
        ("health", {"timeout": 0}, "deploy.health.timeout: must be a positive integer"),
        ("profile", {"daemons": []}, "deploy.profile.daemons: unknown key (allowed: suite)"),
    ],
)
def test_bad_input_is_refused_naming_the_field(path: str, value: t.Any, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        check(_bad(path, value))
    assert str(info.value).startswith("p.yml: deploy"), str(info.value)
    assert message in str(info.value)


def test_two_files_with_one_destination_for_the_same_role_are_refused() -> None:
    data = copy.deepcopy(GOOD)
    data["files"].append(dict(data["files"][0], roles=["server", "rds"]))
    with pytest.raises(
        ProfileError,
        match=r"deploy\.files\[1\]\.dest: '/etc/suite/dir.conf' is also written by files\[0\]",
    ):
        check(data)
    data["files"][1]["roles"] = ["rds"]  # another role may have its own file at that path
    assert len(check(data)["files"]) == 2


def test_not_a_mapping() -> None:
    with pytest.raises(ProfileError, match=r"^p.yml: deploy: must be a mapping, got a list"):
        check([])


def test_templates_must_exist_in_the_folder(tmp_path: t.Any) -> None:
    os.makedirs(tmp_path / "templates")
    for name in ("dir.conf.j2",):
        (tmp_path / "templates" / name).write_text("x")
    with pytest.raises(
        ProfileError, match=r"deploy\.units\[0\]\.src: template 'x.service.j2' not found"
    ):
        check(copy.deepcopy(GOOD), folder=str(tmp_path))
    (tmp_path / "templates" / "x.service.j2").write_text("x")
    assert check(copy.deepcopy(GOOD), folder=str(tmp_path))["units"][0]["name"] == "x.service"


def test_profile_with_deploy_and_systemd_unit_round_trips() -> None:
    data = {
        "suite": {"name": "s", "roles": list(ROLES)},
        "daemons": [
            {
                "name": n,
                "roles": [r],
                "match": {"cmdline": f"^{n}$"},
                "systemd_unit": f"{n}.service",
            }
            for n, r in zip(DAEMONS, ROLES)
        ],
        "deploy": copy.deepcopy(GOOD),
    }
    profile = load_profile(data, "p.yml")
    assert profile.daemon("sd").systemd_unit == "sd.service"
    assert profile.deploy is not None and profile.deploy["secrets"] == ["director"]
    assert load_profile(profile.to_dict()) == profile
    data["daemons"][0]["systemd_unit"] = 5
    with pytest.raises(ProfileError, match=r"daemon 'dird': systemd_unit: must be a string"):
        load_profile(data, "p.yml")
