# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""daemonops.suite.config through ansible on localhost, on a real INI file in tmp_path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

EXISTING = """\
; written by hand
[suite]
role = server   ; server | rds | client
log_file = /var/log/refsuite/refsuite.log

[ui]
port = 11401
"""


def test_config_check_apply_idempotent_with_diff_and_backup(ansible_module, tmp_path: Path) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text(EXISTING)
    os.chmod(ini, 0o640)
    args = {
        "profile": "refsuite",
        "config_file": str(ini),
        "settings": {
            "suite": {"role": "rds", "retry_interval": 0},
            "stpd": {"ports": [21000, 21001, 21443]},
            "ctrl": {"enabled": True},
        },
        "backup": True,
    }
    first = ansible_module("config", args, check=True, diff=True)
    assert first["changed"] is True and ini.read_text() == EXISTING
    assert "role = server" in first["diff"]["before"]
    assert "role = rds   ; server | rds | client" in first["diff"]["after"]
    applied = ansible_module("config", args, diff=True)
    assert applied["changed"] is True
    assert sorted(applied["changed_keys"]) == [
        "ctrl.enabled",
        "stpd.ports",
        "suite.retry_interval",
        "suite.role",
    ]
    assert Path(applied["backup_file"]).read_text() == EXISTING
    text = ini.read_text()
    assert text.startswith("; written by hand\n[suite]\nrole = rds   ; server | rds | client\n")
    assert "ports = 21000,21001,21443" in text and "enabled = true" in text
    assert stat.S_IMODE(ini.stat().st_mode) == 0o640
    for check in (True, False):
        again = ansible_module("config", args, check=check, diff=True)
        assert again["changed"] is False and "backup_file" not in again
    # state=absent removes a key, again idempotently
    absent = {
        "profile": "refsuite",
        "config_file": str(ini),
        "settings": {"ctrl": {"enabled": None}},
        "state": "absent",
    }
    results = [ansible_module("config", absent, check=c) for c in (True, False, True, False)]
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert "enabled" not in ini.read_text()


def test_config_creates_a_missing_file(ansible_module, tmp_path: Path) -> None:
    ini = tmp_path / "etc" / "refsuite" / "refsuite.ini"
    args = {
        "profile": "refsuite",
        "config_file": str(ini),
        "settings": {"suite": {"role": "client"}},
    }
    results = [ansible_module("config", args, check=c) for c in (True, False, True, False)]
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert ini.read_text() == "[suite]\nrole = client\n"
    assert stat.S_IMODE(ini.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"stpd": {"ports": [70000, 11001, 11443]}},
            "settings.stpd.ports: port 70000 is outside 1-65535",
        ),
        ({"ui": {"port": 11322}}, "settings.ui.port: port 11322 is used by both ui and sshd"),
        ({"nosuchdaemon": {"port": 1}}, "settings.nosuchdaemon: unknown section 'nosuchdaemon'"),
        ({"suite": {"role": "master"}}, "settings.suite.role: unknown role 'master'"),
    ],
)
def test_config_bad_input_leaves_file_alone(
    ansible_module, tmp_path: Path, settings: dict, message: str
) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text(EXISTING)
    result = ansible_module(
        "config", {"profile": "refsuite", "config_file": str(ini), "settings": settings}
    )
    assert result["failed"] is True
    assert message in result["msg"]
    assert ini.read_text() == EXISTING
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
