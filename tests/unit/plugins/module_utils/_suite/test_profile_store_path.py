# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PID store follows the instance's INI (``pid_store.config_key``) unless overridden."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import yaml

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import ProfileError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_facts import (
    file_checksum,
    suite_facts,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import (
    apply_config,
    with_pid_store_path,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import profile_path

TOP = Path(__file__).resolve().parents[5]


def refsuite() -> dict[str, t.Any]:
    data = yaml.safe_load(Path(profile_path("refsuite")).read_text())
    data.pop("deploy", None)  # its templates stay in the profile's folder
    return data


def test_shipped_refsuite_profile_follows_state_db(tmp_path: Path) -> None:
    ini = tmp_path / "second.ini"
    ini.write_text(f"[suite]\nrole = server\nstate_db = {tmp_path}/second/state.db\n")
    profile = load_profile(refsuite())
    assert profile.pid_store is not None and profile.pid_store.config_key == "suite.state_db"
    assert profile.pid_store.path == "/var/lib/refsuite/state.db"
    moved = apply_config(profile, str(ini))
    assert moved.pid_store is not None and moved.pid_store.path == f"{tmp_path}/second/state.db"
    assert load_profile(moved.to_dict()) == moved  # the key survives the round trip
    # an INI without the key leaves the profile's path
    plain = tmp_path / "plain.ini"
    plain.write_text("[suite]\nrole = server\n")
    assert apply_config(profile, str(plain)).pid_store == profile.pid_store


def test_explicit_path_wins_over_the_ini(tmp_path: Path) -> None:
    ini = tmp_path / "i.ini"
    ini.write_text("[suite]\nstate_db = /from/ini.db\n")
    profile = with_pid_store_path(load_profile(refsuite()), "/explicit/state.db")
    assert apply_config(profile, str(ini)).pid_store.path == "/explicit/state.db"  # type: ignore[union-attr]
    with pytest.raises(ProfileError, match="not an absolute path"):
        with_pid_store_path(load_profile(refsuite()), "relative.db")


def test_relative_state_db_and_bad_config_key_are_refused(tmp_path: Path) -> None:
    ini = tmp_path / "i.ini"
    ini.write_text("[suite]\nstate_db = state.db\n")
    with pytest.raises(ProfileError, match="must be absolute"):
        apply_config(load_profile(refsuite()), str(ini))
    data = refsuite()
    data["suite"]["pid_store"]["config_key"] = "state_db"
    with pytest.raises(ProfileError, match=r"section\.key"):
        load_profile(data)


def test_suite_facts_version_and_checksum(tmp_path: Path) -> None:
    ini = tmp_path / "i.ini"
    ini.write_text("[suite]\n")
    version = tmp_path / "VERSION"
    version.write_text("1.2.3\n")
    data = refsuite()
    data["suite"]["version_file"] = str(version)
    facts = suite_facts(load_profile(data), str(ini))
    assert facts["version"] == "1.2.3"
    assert facts["config_checksum"] == file_checksum(str(ini))
    ini.write_text("[suite]\nretry_interval = 5\n")
    assert suite_facts(load_profile(data), str(ini))["config_checksum"] != facts["config_checksum"]
    data["suite"]["version_file"] = str(tmp_path / "no-VERSION")  # not whatever /opt holds
    assert suite_facts(load_profile(data), str(tmp_path / "none.ini")) == {
        "version": None,
        "config_checksum": None,
    }
