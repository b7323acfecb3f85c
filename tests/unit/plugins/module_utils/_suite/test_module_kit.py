"""Unit tests for module_kit: profile options, decorators, run_module's single error site."""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    SuiteError,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.module_kit import (
    PROFILE_ARG_RULES,
    PROFILE_ARGS,
    SuiteAction,
    merge_rules,
    profile_argument_spec,
    profile_from_params,
    run_module,
    skip_if_check_mode,
    trigger_change,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile_file,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))
REFSUITE = load_profile_file(os.path.join(ROOT, "profiles", "refsuite", "profile.yml")).to_dict()


class Writer(SuiteAction):
    """A toy action: 'writes' a value unless it is already there."""

    def run(self) -> dict[str, t.Any]:
        self.diff["before"] = {"value": "old"}
        if self.params["value"] != "old":
            self.write(self.params["value"])
        self.diff["after"] = {"value": self.params["value"]}
        self.result["extra"] = 1
        return {"written": self.written, "profile": self.params.get("profile")}

    written: t.Optional[str] = None

    @trigger_change
    @skip_if_check_mode
    def write(self, value: str) -> None:
        self.written = value


class Failing(SuiteAction):
    def run(self) -> dict[str, t.Any]:
        if self.params["value"] == "suite":
            raise SuiteError("profile 'x': daemon 'y' is wrong; fix it")
        if self.params["value"] == "details":
            raise SuiteError("refused", details={"drain": [{"t": 0.0, "clients": 1}]})
        raise KeyError("boom")


SPEC = profile_argument_spec(value=dict(type="str", default="old"))


def run(cls: type[SuiteAction], args: dict[str, t.Any], capsys: t.Any) -> tuple[int, dict]:
    with patch_module_args(args), pytest.raises(SystemExit) as info:
        run_module(cls, SPEC, **PROFILE_ARG_RULES)
    return int(info.value.code or 0), json.loads(capsys.readouterr().out)


def test_profile_args_shape() -> None:
    assert PROFILE_ARGS == {
        "profile": {"type": "str"},
        "profile_data": {"type": "dict"},
        "instance": {"type": "str"},
        "config_file": {"type": "path"},
    }
    spec = profile_argument_spec(x=dict(type="int"))
    spec["profile"]["type"] = "changed"
    assert PROFILE_ARGS["profile"]["type"] == "str"  # copies
    assert merge_rules(required_one_of=[["a", "b"]]) == {
        "required_one_of": [["profile", "profile_data"], ["a", "b"]]
    }


def test_run_module_changes_and_reports_diff(capsys: t.Any) -> None:
    code, out = run(
        Writer,
        {"profile": "refsuite", "profile_data": REFSUITE, "value": "new", "_ansible_diff": True},
        capsys,
    )
    assert code == 0
    assert out["changed"] is True
    assert out["written"] == "new"
    assert out["extra"] == 1
    assert out["profile"] == "refsuite"
    assert out["diff"] == {"before": {"value": "old"}, "after": {"value": "new"}}


def test_check_mode_predicts_change_without_acting(capsys: t.Any) -> None:
    code, out = run(
        Writer, {"profile_data": REFSUITE, "value": "new", "_ansible_check_mode": True}, capsys
    )
    assert code == 0
    assert out["changed"] is True
    assert out["written"] is None
    assert "diff" not in out


def test_no_change_when_nothing_to_do(capsys: t.Any) -> None:
    _unused, out = run(Writer, {"profile_data": REFSUITE}, capsys)
    assert out["changed"] is False and out["written"] is None


def test_suite_error_becomes_plain_failure(capsys: t.Any) -> None:
    code, out = run(Failing, {"profile_data": REFSUITE, "value": "suite"}, capsys)
    assert code == 1
    assert out["failed"] is True
    assert out["msg"] == "profile 'x': daemon 'y' is wrong; fix it"
    assert "exception" not in out


def test_suite_error_details_are_returned_with_the_failure(capsys: t.Any) -> None:
    code, out = run(Failing, {"profile_data": REFSUITE, "value": "details"}, capsys)
    assert code == 1 and out["failed"] is True and out["msg"] == "refused"
    assert out["drain"] == [{"t": 0.0, "clients": 1}]


def test_unexpected_error_carries_traceback(capsys: t.Any, monkeypatch: t.Any) -> None:
    from ansible.module_utils._internal import _traceback

    # ansible-core 2.19 includes `exception` only when tracebacks are enabled (-vvv)
    monkeypatch.setattr(_traceback, "_is_traceback_enabled", lambda *_a, **_k: True)
    code, out = run(Failing, {"profile_data": REFSUITE, "value": "other"}, capsys)
    assert code == 1
    assert out["failed"] is True
    assert "KeyError" in out["msg"] and "boom" in out["msg"]
    assert "Traceback" in out["exception"] and "raise KeyError" in out["exception"]


def test_required_one_of_profile_options(capsys: t.Any) -> None:
    code, out = run(Writer, {"value": "x"}, capsys)
    assert code == 1
    assert "profile, profile_data" in out["msg"]


def test_decorators_directly() -> None:
    class Module:
        check_mode = False
        params: t.ClassVar[dict[str, t.Any]] = {}

    action = Writer(t.cast("t.Any", Module()))
    action.write("a")
    assert (action.changed, action.written) == (True, "a")
    Module.check_mode = True
    action = Writer(t.cast("t.Any", Module()))
    assert action.write("b") is None
    assert (action.changed, action.written) == (True, None)


def test_profile_from_params_unresolved_name() -> None:
    with pytest.raises(ProfileError, match=r"must be resolved on the controller.*FQCN"):
        profile_from_params({"profile": "sesam", "profile_data": None})
    with pytest.raises(ProfileError, match=r"one of the options profile or profile_data"):
        profile_from_params({})


def test_profile_from_params_validates_and_names_source() -> None:
    data = json.loads(json.dumps(REFSUITE))
    data["daemons"][0]["ports"] = [{"port": 0}]
    with pytest.raises(ProfileError) as info:
        profile_from_params({"profile_data": data})
    assert str(info.value) == "profile_data: daemon 'qm': ports[0].port: 0 is outside 1-65535"


def test_profile_from_params_name_mismatch() -> None:
    with pytest.raises(ProfileError, match=r"profile is 'sesam' but profile_data describes"):
        profile_from_params({"profile": "sesam", "profile_data": REFSUITE})


def test_profile_from_params_applies_ini(tmp_path: t.Any) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text("[ctrl]\nenabled = true\n[stpd]\nports = 21000,21001,21443\n")
    params = {"profile": "refsuite", "profile_data": REFSUITE, "config_file": str(ini)}
    profile = profile_from_params(params)
    assert profile.daemon("ctrl").enabled is True
    assert profile.daemon("stpd").port_numbers == [21000, 21001, 21443]
    assert profile_from_params(params, apply_ini=False).daemon("ctrl").enabled is False
    # the shipped default /etc/refsuite/refsuite.ini is only read when it exists
    missing = dict(params, config_file=str(tmp_path / "none.ini"))
    assert profile_from_params(missing).daemon("ctrl").enabled is False
