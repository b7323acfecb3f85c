# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad and hostile input, each case on real files, processes or sockets (issue: hardening).

The sections follow docs/reliability.md, "Hostile input": one test (or a few) per item.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import yaml
from modrun import run_module_file

from ansible_collections.daemonops.suite.plugins.module_utils._suite import ini_config

TOP = Path(__file__).resolve().parents[2]
MODULES = TOP / "plugins" / "modules"
REFSUITE_PROFILE = yaml.safe_load((TOP / "profiles" / "refsuite.yml").read_text())
INI = "[suite]\nrole = server\n\n[ui]\nport = 11401\n"


def _facts() -> ini_config.ProfileFacts:
    return ini_config.ProfileFacts(
        name="refsuite", roles=["server", "rds", "client"], ports={"ui": [11401], "sshd": [11322]}
    )


# -- 1. config backup never follows a planted link ------------------------------------------
def test_config_backup_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text(INI)
    ini.chmod(0o640)
    decoy = tmp_path / "decoy-shadow"
    decoy.write_text("root:secret\n")
    # every name the old code could have picked in the next seconds, planted as a link
    planted = []
    now = time.time()
    for offset in range(-1, 8):
        stamp = time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime(now + offset))
        link = tmp_path / f"refsuite.ini.{os.getpid()}.{stamp}~"
        link.symlink_to(decoy)
        planted.append(link)
    result = ini_config.IniConfig(
        str(ini), {"suite": {"role": "rds"}}, "present", _facts(), backup=True
    ).run()
    assert decoy.read_text() == "root:secret\n"
    assert all(link.is_symlink() for link in planted)
    backup = Path(result["backup_file"])
    assert backup.parent == tmp_path and not backup.is_symlink()
    assert backup.name.startswith("refsuite.ini.") and backup.name.endswith("~")
    assert backup.read_text() == INI and stat.S_IMODE(backup.stat().st_mode) == 0o640
    assert "role = rds" in ini.read_text()


# -- 3. config refuses control characters ----------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "what"),
    [
        ({"suite": {"bind": "127.0.0.1\r[ctrl]\renabled = true\rport = 11322"}}, "value"),
        ({"suite": {"bind": "a\x0bb"}}, "value"),
        ({"suite": {"bind": "a\u2028b"}}, "value"),
        ({"suite": {"bind\rport": "1"}}, "key"),
        ({"ui\r[ctrl]": {"port": 11401}}, "section name"),
    ],
)
def test_config_refuses_control_characters(tmp_path: Path, settings: dict, what: str) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text(INI)
    result = run_module_file(
        MODULES / "config.py",
        {"profile_data": REFSUITE_PROFILE, "config_file": str(ini), "settings": settings},
        tmp_path,
    )
    assert result.get("failed") is True, result
    assert f"the {what} contains the control character" in result["msg"]
    assert ini.read_text() == INI


# -- 4. cluster_data never returns Ansible's reserved `skipped` ------------------------------
def _cluster_profile(cluster_path: str | None = None) -> dict:
    data: dict = {
        "suite": {"name": "hardening", "roles": ["server"]},
        "daemons": [
            {"name": "qm", "roles": ["server"], "match": {"cmdline": "^hardening-qm( |$)"}}
        ],
    }
    if cluster_path is not None:
        data["suite"]["cluster_data"] = {"path": cluster_path, "depth": 2}
    return data


def test_cluster_data_result_is_not_displayed_as_skipped(ansible_module, tmp_path: Path) -> None:
    tree = tmp_path / "cluster"
    (tree / "node1").mkdir(parents=True)
    (tree / "node1" / "members.dat").write_text("m")
    args = {"profile_data": _cluster_profile(), "path": str(tree), "depth": 2}
    result = ansible_module("cluster_data", args, via="playbook")
    assert result["changed"] is True and "skipped" not in result, result
    assert result["not_descended"] == [] and result["removed"] == [f"{tree}/node1/members.dat"]
