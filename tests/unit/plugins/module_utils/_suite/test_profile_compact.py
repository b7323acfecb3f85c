"""Unit tests for the compact profile: the validated profile the action plugin sends to a module
(``_profile``), built back without validation; the fallback to full validation without it."""

from __future__ import annotations

import copy
import dataclasses
import glob
import json
import os
import subprocess
import sys
import typing as t

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import ProfileError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (
    profile_argument_spec,
    profile_from_params,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
    COMPACT_OPTION,
    Profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
    resolve_profile,
    resolve_profile_args,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))
SHIPPED = sorted(
    glob.glob(os.path.join(ROOT, "profiles", "*.yml"))
    + glob.glob(os.path.join(ROOT, "profiles", "*", "profile.yml"))
)

EVERY_FIELD: dict[str, t.Any] = {
    "suite": {
        "name": "tsuite",
        "description": "every field set",
        "roles": ["server", "client"],
        "control": {
            "start": ["/opt/t/bin/t", "start"],
            "stop": ["/opt/t/bin/t", "stop"],
            "status": ["/opt/t/bin/t", "status"],
            "restart": ["/opt/t/bin/t", "restart"],
            "force_option": "--force",
            "start_daemon": ["/opt/t/bin/t", "start", "{daemon}"],
            "stop_daemon": ["/opt/t/bin/t", "stop", "{daemon}"],
        },
        "systemd_unit": "t.service",
        "config_file": "/etc/t/t.ini",
        "version_file": "/opt/t/VERSION",
        "pid_store": {
            "type": "pidfile",
            "path": "/run/t",
            "pattern": "{name}-{port}.pid",
            "config_key": "suite.pid_dir",
        },
        "cluster_data": {"path": "/var/lib/t/cluster", "depth": 3},
    },
    "daemons": [
        {
            "name": "qm",
            "description": "queue manager",
            "roles": ["server", "client"],
            "match": {"cmdline": "^t-qm( |$)", "exe": "/t-qm$", "user": 0},
            "count": {"min": 2, "max": 4},
            "essential": True,
            "systemd_unit": "t-qm.service",
            "log_file": "/var/log/t/qm.log",
            "ports": [{"port": 11000, "probe": {"type": "http", "path": "/h", "status": 204}}],
        },
        {
            "name": "ui",
            "roles": ["server"],
            "match": {"cmdline": "^t-ui", "user": "tuser"},
            "ancestor": "qm",
            "enabled": False,
            "ports": [{"port": 11001}, {"port": 11002, "probe": {"type": "tcp"}}],
        },
    ],
}


def through_json(compact: dict[str, t.Any]) -> t.Any:
    """What the module receives: the compact form after Ansible's JSON transport."""
    return json.loads(json.dumps(compact))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_profiles_round_trip_to_an_equal_profile(path: str) -> None:
    profile = load_profile_file(path)
    again = Profile.from_compact(through_json(profile.to_compact()))
    # deploy serves the controller only and is not sent; everything else is equal
    assert again == dataclasses.replace(profile, deploy=None)
    assert again.source == profile.source
    assert again.to_dict() == dataclasses.replace(profile, deploy=None).to_dict()


def test_every_field_round_trips_with_the_models_types() -> None:
    profile = load_profile(copy.deepcopy(EVERY_FIELD), source="t.yml")
    again = Profile.from_compact(through_json(profile.to_compact()))
    assert again == profile
    qm, ui = again.daemons
    assert again.roles == ("server", "client") and isinstance(qm.roles, tuple)
    assert again.control is not None and again.control.start_daemon == (
        "/opt/t/bin/t",
        "start",
        "{daemon}",
    )
    assert qm.cmdline_regex.search("t-qm --x") and qm.exe_regex is not None
    assert qm.exe_regex.search("/opt/t/bin/t-qm")
    assert (qm.user, ui.user) == (0, "tuser")
    assert (qm.count_min, qm.count_max, qm.essential, ui.enabled) == (2, 4, True, False)
    assert qm.ports[0].probe == profile.daemons[0].ports[0].probe
    assert [p.port for p in ui.ports] == [11001, 11002] and isinstance(ui.ports, tuple)
    assert ui.ancestor == "qm" and qm.ancestor is None
    assert again.pid_store == profile.pid_store and again.cluster_data == profile.cluster_data
    assert again.version_file == "/opt/t/VERSION"
    assert again.daemon_command("start_daemon", "ui") == ["/opt/t/bin/t", "start", "ui"]


def test_the_compact_form_is_smaller_than_the_profile_data() -> None:
    profile = resolve_profile("refsuite")
    assert len(json.dumps(profile.to_compact())) < len(json.dumps(profile.to_dict()))


@pytest.mark.parametrize(
    ("compact", "fragment"),
    [
        ({"compact": 99, "name": "x"}, "not a compact profile this module reads"),
        ("not a mapping", "not a compact profile this module reads"),
        ({"compact": 1, "name": "x"}, "malformed compact profile (KeyError"),
        (
            {"compact": 1, "name": "x", "roles": ["a"], "daemons": [{"name": "d"}]},
            "malformed compact profile (KeyError",
        ),
        (
            {
                "compact": 1,
                "name": "x",
                "description": "",
                "roles": ["a"],
                "daemons": [{"name": "d", "description": "", "roles": ["a"], "cmdline_regex": "("}],
            },
            "malformed compact profile (error",
        ),
    ],
)
def test_a_bad_compact_profile_is_refused_naming_the_option(compact: t.Any, fragment: str) -> None:
    with pytest.raises(ProfileError) as info:
        Profile.from_compact(compact)
    assert str(info.value).startswith(f"{COMPACT_OPTION}: "), str(info.value)
    assert fragment in str(info.value)


# ------------------------------------------------------------------- the module's side


def test_modules_declare_the_internal_option() -> None:
    assert profile_argument_spec()[COMPACT_OPTION] == {"type": "dict"}


def test_the_compact_profile_is_used_without_validating_profile_data() -> None:
    profile = resolve_profile("refsuite")
    # profile_data the validator would refuse: the compact profile is used instead
    params = {
        "profile": "refsuite",
        "profile_data": {"suite": {}},
        COMPACT_OPTION: through_json(profile.to_compact()),
        "config_file": "/nonexistent/refsuite.ini",
    }
    assert profile_from_params(params) == dataclasses.replace(profile, deploy=None)


def test_without_the_compact_profile_profile_data_is_validated_completely() -> None:
    bad = copy.deepcopy(EVERY_FIELD)
    bad["daemons"][1]["ancestor"] = "nobody"
    with pytest.raises(ProfileError, match=r"^profile_data: daemon 'ui': ancestor"):
        profile_from_params({"profile_data": bad, "config_file": None})
    good = profile_from_params({"profile_data": copy.deepcopy(EVERY_FIELD), "config_file": None})
    assert good == load_profile(copy.deepcopy(EVERY_FIELD))


def test_the_fallback_ignores_a_deploy_section_which_only_the_controller_reads() -> None:
    data = copy.deepcopy(EVERY_FIELD)
    data["deploy"] = {"source": "nowhere", "unknown": 1}
    with pytest.raises(ProfileError, match="deploy"):
        load_profile(copy.deepcopy(data))  # the controller refuses it
    assert profile_from_params({"profile_data": data, "config_file": None}).deploy is None


def test_the_compact_name_must_agree_with_profile() -> None:
    profile = resolve_profile("refsuite")
    params = {"profile": "sesam", "profile_data": {}, COMPACT_OPTION: profile.to_compact()}
    with pytest.raises(ProfileError, match="profile is 'sesam' but profile_data describes"):
        profile_from_params(params)


IMPORTED = """
import json, sys
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (
    profile_from_params,
)
params = json.loads(sys.argv[1])
profile_from_params(params)
print(json.dumps(sorted(name.rsplit(".", 1)[-1] for name in sys.modules
                        if name.startswith("ansible_collections.daemonops") or name == "difflib")))
"""


def imported_by(params: dict[str, t.Any]) -> list[str]:
    """The collection's modules (and difflib) a fresh interpreter imports for ``params``."""
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED, json.dumps(params)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return json.loads(proc.stdout)


def test_with_the_compact_profile_and_no_ini_neither_validator_nor_ini_reader_is_imported() -> None:
    profile = resolve_profile("refsuite")
    params = {
        "profile": "refsuite",
        "profile_data": profile.to_dict(),
        COMPACT_OPTION: profile.to_compact(),
        "config_file": "/nonexistent/refsuite.ini",
    }
    loaded = imported_by(params)
    assert "profile" in loaded and "module_kit" in loaded
    for heavy in ("profile_schema", "schema", "deploy", "suite_ini", "ini_config", "difflib"):
        assert heavy not in loaded, loaded
    # without it, the validator runs (and the deploy validator stays out: no deploy section)
    params.pop(COMPACT_OPTION)
    loaded = imported_by(params)
    assert "profile_schema" in loaded and "deploy" not in loaded, loaded


def test_the_ini_reader_is_imported_when_the_ini_exists(tmp_path: t.Any) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text("[ui]\nenabled = false\n")
    profile = resolve_profile("refsuite")
    params = {
        "profile": "refsuite",
        "profile_data": {},
        COMPACT_OPTION: profile.to_compact(),
        "config_file": str(ini),
    }
    assert "suite_ini" in imported_by(params)
    assert profile_from_params(params).daemon("ui").enabled is False


# ------------------------------------------------------------------ the controller's side


def test_the_action_plugin_always_sets_the_compact_profile_itself() -> None:
    injected = resolve_profile("sesam").to_compact()
    args = resolve_profile_args({"profile": "refsuite", COMPACT_OPTION: injected})
    assert args[COMPACT_OPTION] == resolve_profile("refsuite").to_compact()
    inline = dict(EVERY_FIELD)
    args = resolve_profile_args({"profile_data": inline, COMPACT_OPTION: {"compact": 1}})
    assert Profile.from_compact(through_json(args[COMPACT_OPTION])) == load_profile(
        copy.deepcopy(EVERY_FIELD), source="profile_data"
    )
    # no profile in the task (the install module): an injected value is dropped
    assert COMPACT_OPTION not in resolve_profile_args({"source": "bundled", COMPACT_OPTION: {}})
