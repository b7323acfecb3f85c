"""Unit tests for module_kit: profile options and rules, run_module (changed, diff, warnings,
check mode) and its single error site."""

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
    PROFILE_ARGS,
    controller_only,
    profile_argument_spec,
    profile_from_params,
    profile_rules,
    run_module,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile_file,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))
REFSUITE = load_profile_file(os.path.join(ROOT, "profiles", "refsuite", "profile.yml")).to_dict()


class Writer:
    """A toy logic class in the module convention: 'writes' a value unless it is already
    there; acts only outside check mode; returns changed and diff with its result."""

    def __init__(self, value: str, check_mode: bool = False) -> None:
        self.value = value
        self.check_mode = check_mode
        self.written: t.Optional[str] = None

    def run(self) -> dict[str, t.Any]:
        changed = self.value != "old"
        if changed and not self.check_mode:
            self.written = self.value
        result: dict[str, t.Any] = {
            "changed": changed,
            "written": self.written,
            "extra": 1,
            "diff": {"before": {"value": "old"}, "after": {"value": self.value}},
        }
        if self.value == "warned":
            result["warnings"] = ["first warning", "second warning"]
        return result


def run_writer(module: t.Any) -> dict[str, t.Any]:
    """A module's ``run(module)``."""
    result = Writer(module.params["value"], check_mode=module.check_mode).run()
    result["profile"] = module.params.get("profile")
    return result


def run_failing(module: t.Any) -> dict[str, t.Any]:
    value = module.params["value"]
    if value == "suite":
        raise SuiteError("profile 'x': daemon 'y' is wrong; fix it")
    if value == "details":
        raise SuiteError("refused", details={"drain": [{"t": 0.0, "clients": 1}]})
    if value == "warned":
        raise SuiteError("refused", details={"warnings": ["seen before the refusal"]})
    raise KeyError("boom")


def run_bare(module: t.Any) -> dict[str, t.Any]:
    """A result without changed or diff (an info module)."""
    return {"value": module.params["value"]}


SPEC = profile_argument_spec(value=dict(type="str", default="old"))


def run(
    module_run: t.Callable[[t.Any], t.Mapping[str, t.Any]],
    args: dict[str, t.Any],
    capsys: t.Any,
) -> tuple[int, dict]:
    with patch_module_args(args), pytest.raises(SystemExit) as info:
        run_module(module_run, SPEC, **profile_rules())
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


def test_profile_rules_merge_the_module_own_rules() -> None:
    assert profile_rules() == {"required_one_of": [["profile", "profile_data"]]}
    assert profile_rules(required_one_of=[["a", "b"]]) == {
        "required_one_of": [["profile", "profile_data"], ["a", "b"]]
    }
    assert profile_rules(or_options=["store"]) == {
        "required_one_of": [["profile", "profile_data", "store"]]
    }
    assert profile_rules(mutually_exclusive=[("a", "b")], required_by={"a": ["c"]}) == {
        "required_one_of": [["profile", "profile_data"]],
        "mutually_exclusive": [["a", "b"]],
        "required_by": {"a": ["c"]},
    }


def test_run_module_changes_and_reports_diff(capsys: t.Any) -> None:
    code, out = run(
        run_writer,
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
        run_writer, {"profile_data": REFSUITE, "value": "new", "_ansible_check_mode": True}, capsys
    )
    assert code == 0
    assert out["changed"] is True
    assert out["written"] is None
    assert "diff" not in out  # returned only with --diff


def test_no_change_when_nothing_to_do(capsys: t.Any) -> None:
    _unused, out = run(run_writer, {"profile_data": REFSUITE}, capsys)
    assert out["changed"] is False and out["written"] is None


def test_changed_defaults_to_false_and_no_diff_without_one(capsys: t.Any) -> None:
    code, out = run(run_bare, {"profile_data": REFSUITE, "_ansible_diff": True}, capsys)
    assert code == 0
    assert out["changed"] is False and out["value"] == "old"
    assert "diff" not in out


@pytest.fixture
def warned(monkeypatch: t.Any) -> dict[str, list[str]]:
    """What reached ``module.warn`` and ``module.deprecate`` (Ansible routes warnings to the
    controller's display once a controller plugin is imported, so they are caught here)."""
    from ansible.module_utils.basic import AnsibleModule

    seen: dict[str, list[str]] = {"warn": [], "deprecate": []}
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, msg, **_kw: seen["warn"].append(msg))
    monkeypatch.setattr(
        AnsibleModule, "deprecate", lambda self, msg, **_kw: seen["deprecate"].append(msg)
    )
    return seen


def test_warnings_go_through_module_warn(capsys: t.Any, warned: dict[str, list[str]]) -> None:
    code, out = run(run_writer, {"profile_data": REFSUITE, "value": "warned"}, capsys)
    assert code == 0 and out["changed"] is True
    assert warned["warn"] == ["first warning", "second warning"]
    assert warned["deprecate"] == []  # not passed to exit_json (deprecated since 2.19)


def test_suite_error_becomes_plain_failure(capsys: t.Any) -> None:
    code, out = run(run_failing, {"profile_data": REFSUITE, "value": "suite"}, capsys)
    assert code == 1
    assert out["failed"] is True
    assert out["msg"] == "profile 'x': daemon 'y' is wrong; fix it"
    assert "exception" not in out


def test_suite_error_details_are_returned_with_the_failure(capsys: t.Any) -> None:
    code, out = run(run_failing, {"profile_data": REFSUITE, "value": "details"}, capsys)
    assert code == 1 and out["failed"] is True and out["msg"] == "refused"
    assert out["drain"] == [{"t": 0.0, "clients": 1}]


def test_suite_error_warnings_go_through_module_warn(
    capsys: t.Any, warned: dict[str, list[str]]
) -> None:
    code, out = run(run_failing, {"profile_data": REFSUITE, "value": "warned"}, capsys)
    assert code == 1 and out["msg"] == "refused"
    assert warned["warn"] == ["seen before the refusal"]
    assert warned["deprecate"] == []


def test_unexpected_error_carries_traceback(capsys: t.Any, monkeypatch: t.Any) -> None:
    from ansible.module_utils._internal import _traceback

    # ansible-core 2.19 includes `exception` only when tracebacks are enabled (-vvv)
    monkeypatch.setattr(_traceback, "_is_traceback_enabled", lambda *_a, **_k: True)
    code, out = run(run_failing, {"profile_data": REFSUITE, "value": "other"}, capsys)
    assert code == 1
    assert out["failed"] is True
    assert "KeyError" in out["msg"] and "boom" in out["msg"]
    assert "Traceback" in out["exception"] and "raise KeyError" in out["exception"]


def test_required_one_of_profile_options(capsys: t.Any) -> None:
    code, out = run(run_writer, {"value": "x"}, capsys)
    assert code == 1
    assert "profile, profile_data" in out["msg"]


def test_controller_only_module_fails_on_a_target(capsys: t.Any) -> None:
    code, out = run(controller_only("audit_x"), {"profile_data": REFSUITE}, capsys)
    assert code == 1
    assert out["msg"].startswith("daemonops.suite.audit_x runs on the controller only")
    assert "Call it as daemonops.suite.audit_x" in out["msg"]


def test_check_mode_is_the_logic_class_own_argument() -> None:
    writer = Writer("a")
    assert writer.run()["changed"] is True and writer.written == "a"
    writer = Writer("b", check_mode=True)
    assert writer.run()["changed"] is True and writer.written is None


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


def test_docstring_example_is_the_cluster_data_module() -> None:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite import module_kit

    doc = t.cast(str, module_kit.__doc__)
    example = doc.split("but for its documentation::\n\n", 1)[1].rstrip()
    code = "\n".join(line[4:] for line in example.splitlines())
    with open(os.path.join(ROOT, "plugins", "modules", "cluster_data.py")) as handle:
        module_text = handle.read()
    assert "def run(module" in code and "run_module(run, argument_spec" in code
    assert code in module_text
