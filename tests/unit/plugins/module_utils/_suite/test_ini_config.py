# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.ini_config import (
    IniConfig,
    atomic_write,
    format_value,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import (
    IniDocument,
    ProfileFacts,
)

TOP = Path(__file__).resolve().parents[5]
SAMPLE = """\
; refsuite configuration
[suite]
role = server                 ; server | rds | client
bind = 127.0.0.1

# the GUI server
[ui]
port = 11401
"""


@pytest.fixture(scope="module")
def facts() -> ProfileFacts:
    return ProfileFacts.from_profile(
        load_profile_file(str(TOP / "profiles" / "refsuite" / "profile.yml"))
    )


def test_facts_come_from_the_profile(facts: ProfileFacts) -> None:
    assert facts.name == "refsuite"
    assert facts.roles == ["server", "rds", "client"]
    assert facts.ports["stpd"] == [11000, 11001, 11443]
    assert facts.ports["qm"] == []


def test_format_value() -> None:
    assert format_value([11000, 11001]) == "11000,11001"
    assert format_value(True) == "true"
    assert format_value(30) == "30"
    assert format_value(" x ") == "x"


def test_editor_keeps_comments_and_order() -> None:
    doc = IniDocument(SAMPLE)
    assert doc.get("suite", "role") == "server"
    assert doc.set("suite", "role", "server") is False
    assert doc.set("suite", "role", "rds") is True
    assert doc.set("ui", "port", "12000") is True
    assert doc.set("stpd", "ports", "1,2,3") is True
    assert doc.set("suite", "retry_interval", "0") is True
    text = doc.render()
    assert text.splitlines()[0] == "; refsuite configuration"
    assert "role = rds                 ; server | rds | client" in text
    assert "# the GUI server" in text
    # a new key goes to the end of its section, a new section to the end of the file
    lines = text.splitlines()
    assert lines.index("retry_interval = 0") < lines.index("[ui]")
    assert lines[-2:] == ["[stpd]", "ports = 1,2,3"]
    assert doc.remove("ui", "port") is True
    assert doc.remove("ui", "port") is False
    assert "port = 12000" not in doc.render()


def _config(path: Path, settings: dict, facts: ProfileFacts, **kw) -> IniConfig:
    return IniConfig(str(path), settings, kw.pop("state", "present"), facts, **kw)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"stpd": {"ports": [70000, 2, 3]}}, "settings.stpd.ports: port 70000 is outside 1-65535"),
        ({"stpd": {"ports": "a,b,c"}}, "settings.stpd.ports: 'a' is not a port number"),
        ({"ui": {"port": 11000}}, "settings.ui.port: port 11000 is used by both ui and stpd"),
        ({"bogus": {"port": 1}}, "settings.bogus: unknown section 'bogus'"),
        ({"suite": {"role": "backup"}}, "settings.suite.role: unknown role 'backup'"),
        ({"stpd": {"ports": [1, 2]}}, "settings.stpd.ports: 2 port(s) given"),
        ({"passd": {"port": 1234}}, "settings.passd.port: daemon passd has no ports"),
        ({"ui": {"port": "1,2"}}, "settings.ui.port: give one port number"),
        ({"ctrl": {"enabled": "maybe"}}, "settings.ctrl.enabled: 'maybe' is not a boolean"),
        ({"ui": {"ports": 12000}}, "set either port or ports, not both"),
    ],
)
def test_bad_settings_fail_before_writing(
    tmp_path: Path, facts: ProfileFacts, settings: dict, message: str
) -> None:
    path = tmp_path / "refsuite.ini"
    path.write_text(SAMPLE)
    with pytest.raises(SuiteError) as info:
        _config(path, settings, facts).run()
    assert message in str(info.value)
    assert path.read_text() == SAMPLE


def test_clash_with_a_key_already_in_the_file_names_the_file(
    tmp_path: Path, facts: ProfileFacts
) -> None:
    path = tmp_path / "refsuite.ini"
    path.write_text(SAMPLE)
    with pytest.raises(SuiteError) as info:
        _config(path, {"sshd": {"port": 11401}}, facts).run()
    assert "port 11401 is used by both ui and sshd" in str(info.value)


def test_check_mode_apply_and_idempotence(tmp_path: Path, facts: ProfileFacts) -> None:
    path = tmp_path / "sub" / "refsuite.ini"
    settings = {"suite": {"role": "rds", "retry_interval": 0}, "stpd": {"ports": [1, 2, 3]}}
    result = _config(path, settings, facts, check_mode=True).run()
    assert result["changed"] is True and not path.exists()
    assert "ports = 1,2,3" in result["diff"]["after"] and result["diff"]["before"] == ""
    result = _config(path, settings, facts).run()
    assert result["changed"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(result["changed_keys"]) == ["stpd.ports", "suite.retry_interval", "suite.role"]
    assert _config(path, settings, facts, check_mode=True).run()["changed"] is False
    assert _config(path, settings, facts).run()["changed"] is False
    removed = _config(path, {"stpd": {"ports": None}}, facts, state="absent").run()
    assert removed["changed"] is True and "ports" not in path.read_text()


def test_existing_mode_is_kept_and_backup_made(tmp_path: Path, facts: ProfileFacts) -> None:
    path = tmp_path / "refsuite.ini"
    path.write_text(SAMPLE)
    os.chmod(path, 0o600)
    result = _config(path, {"ui": {"port": 12001}}, facts, backup=True).run()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Path(result["backup_file"]).read_text() == SAMPLE
    assert "port = 12001" in path.read_text()
    # no temp file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["refsuite.ini", Path(result["backup_file"]).name]
    )


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.ini"
    path.write_text("old\n")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        atomic_write(str(path), "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.ini"]


def test_a_clash_in_the_file_names_its_line(tmp_path: Path, facts: ProfileFacts) -> None:
    path = tmp_path / "refsuite.ini"
    path.write_text(SAMPLE + "\n[sshd]\nport = 12000\n")
    with pytest.raises(SuiteError) as info:
        _config(path, {"ui": {"port": 12000}}, facts).run()
    assert str(info.value).startswith(f"{path}: line 11: [sshd] port: port 12000 is used by both")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[suite]\nrole = server\nrole = rds\n",
            "line 3: not a valid INI file: [suite] role is set",
        ),
        ("[ui]\n[suite]\n[ui]\n", "line 3: not a valid INI file: section [ui] appears again"),
        ("role = server\n", "line 1: not a valid INI file: key 'role' comes before any"),
        ("[suite]\njunk\n", "line 2: not a valid INI file: 'junk' is not a [section] header"),
    ],
)
def test_a_file_the_suite_cannot_read_is_refused_with_its_line(
    tmp_path: Path, facts: ProfileFacts, text: str, message: str
) -> None:
    # the same strict reading as health_info and service (suite_ini.apply_config)
    path = tmp_path / "refsuite.ini"
    path.write_text(text)
    with pytest.raises(SuiteError) as info:
        _config(path, {"suite": {"bind": "127.0.0.1"}}, facts).run()
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert path.read_text() == text
