# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The profile resolver reads and validates a profile file once per version of the file: in the
process, and across the worker processes of one run through the run's local temporary
directory (simulated here by clearing the in-process caches)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils import profile_resolver as pr


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh process state and run cache directory; counts the YAML reads."""
    directory = tmp_path / "run-tmp"
    directory.mkdir()
    monkeypatch.setattr(pr, "_run_cache_dir", lambda: str(directory))
    monkeypatch.setattr(pr, "_PROFILES", {})
    monkeypatch.setattr(pr, "_PROFILE_JSON", {})
    return directory


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def counting(path: str) -> Any:
        calls.append(path)
        return load_profile_file(path)

    monkeypatch.setattr(pr, "load_profile_file", counting)
    return calls


def old_copy(tmp_path: Path, name: str = "sesam") -> Path:
    """A copy of a shipped profile whose modification time is a minute ago."""
    path = tmp_path / f"{name}.yml"
    shutil.copyfile(pr.profile_path(name), path)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def new_worker() -> None:
    """What a new worker process starts with: empty in-process caches."""
    pr._PROFILES.clear()
    pr._PROFILE_JSON.clear()


def test_data_is_the_validated_profile_and_a_new_dict_each_time(
    tmp_path: Path, run_dir: Path, reads: list[str]
) -> None:
    path = old_copy(tmp_path)
    first = pr.profile_file_data(str(path))
    assert first == load_profile_file(str(path)).to_dict()
    first["suite"]["roles"].append("changed by a caller")
    second = pr.profile_file_data(str(path))
    assert "changed by a caller" not in second["suite"]["roles"]
    assert reads == [str(path)]  # parsed and validated once in this process


def test_another_worker_of_the_run_reads_the_cache_not_the_yaml(
    tmp_path: Path, run_dir: Path, reads: list[str]
) -> None:
    path = old_copy(tmp_path)
    expected = pr.profile_file_data(str(path))
    assert len(list(run_dir.glob("daemonops-profile-*.json"))) == 1
    new_worker()
    assert pr.profile_file_data(str(path)) == expected
    assert reads == [str(path)]


def test_a_changed_file_is_read_again(tmp_path: Path, run_dir: Path, reads: list[str]) -> None:
    path = old_copy(tmp_path)
    pr.profile_file_data(str(path))
    path.write_text(path.read_text().replace("SEP sesam backup server", "changed"))
    past = time.time() - 30
    os.utime(path, (past, past))
    new_worker()
    assert pr.profile_file_data(str(path))["suite"]["description"].startswith("changed")
    assert pr.resolve_profile(str(path)).description.startswith("changed")
    assert len(reads) == 2  # the first version, then the changed one (for data and Profile)


def test_a_file_written_just_now_is_not_cached(
    tmp_path: Path, run_dir: Path, reads: list[str]
) -> None:
    path = tmp_path / "fresh.yml"
    shutil.copyfile(pr.profile_path("sesam"), path)  # modified now: could change again unseen
    pr.profile_file_data(str(path))
    pr.profile_file_data(str(path))
    assert reads == [str(path), str(path)]
    assert not list(run_dir.glob("daemonops-profile-*.json"))


def test_a_broken_cache_file_is_ignored_and_replaced(
    tmp_path: Path, run_dir: Path, reads: list[str]
) -> None:
    path = old_copy(tmp_path)
    expected = pr.profile_file_data(str(path))
    (cache,) = run_dir.glob("daemonops-profile-*.json")
    cache.write_text('{"suite": ')
    new_worker()
    assert pr.profile_file_data(str(path)) == expected
    assert len(reads) == 2
    new_worker()
    assert pr.profile_file_data(str(path)) == expected  # the replaced file serves again
    assert len(reads) == 2


def test_no_run_directory_still_caches_in_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_dir: Path, reads: list[str]
) -> None:
    monkeypatch.setattr(pr, "_run_cache_dir", lambda: None)
    path = old_copy(tmp_path)
    pr.profile_file_data(str(path))
    pr.profile_file_data(str(path))
    assert reads == [str(path)]


def test_resolve_profile_args_fills_data_and_roles_from_the_cache(
    tmp_path: Path, run_dir: Path, reads: list[str]
) -> None:
    path = old_copy(tmp_path)
    for _unused in range(3):
        args = pr.resolve_profile_args({"profile": str(path)}, group_names=["rds", "web", "server"])
        assert args["roles"] == ["server", "rds"]  # the suite's order
        assert args["profile_data"]["suite"]["name"] == "sesam"
    assert reads == [str(path)]
    given = pr.resolve_profile_args({"profile": str(path), "roles": ["client"]}, group_names=[])
    assert given["roles"] == ["client"]


def test_errors_are_unchanged(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(SuiteError, match=r"file 'missing\.yml' not found"):
        pr.resolve_profile_args({"profile": "missing.yml"}, find_file=lambda p: str(tmp_path / p))
    bad = tmp_path / "bad.yml"
    bad.write_text("suite: [\n")
    past = time.time() - 60
    os.utime(bad, (past, past))
    with pytest.raises(SuiteError, match="not valid YAML"):
        pr.profile_file_data(str(bad))
    with pytest.raises(SuiteError, match="not valid YAML"):  # a failure is not cached
        pr.profile_file_data(str(bad))
    assert not list(run_dir.glob("daemonops-profile-*.json"))


def test_the_config_check_leaves_the_data_for_the_workers(
    tmp_path: Path, run_dir: Path, reads: list[str]
) -> None:
    """audit_config resolves each profile (a Profile) once; the health_info workers that
    follow read the validated data from the run cache."""
    path = old_copy(tmp_path)
    profile = pr.resolve_profile(str(path))
    new_worker()
    assert pr.profile_file_data(str(path)) == profile.to_dict()
    assert reads == [str(path)]
