# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import fileio


def test_new_file_gets_default_mode_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.ini"
    fileio.atomic_write(str(path), b"x=1\n", default_mode=0o600)
    assert path.read_bytes() == b"x=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["a.ini"]


def test_existing_file_keeps_its_mode_unless_one_is_given(tmp_path):
    path = tmp_path / "a.ini"
    path.write_bytes(b"old")
    path.chmod(0o640)
    fileio.atomic_write(str(path), b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    fileio.atomic_write(str(path), b"newer", mode=0o755)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_failed_write_keeps_the_old_content_and_removes_the_temp(tmp_path, monkeypatch):
    path = tmp_path / "a.prom"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        fileio.atomic_write(str(path), b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.prom"]
