# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""safe_delete: validation functions on dangerous paths (never the delete routine on them), and
clear_tree only on trees under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import safe_delete
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import UnsafePathError


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/", "root directory"),
        ("//", "not normalised"),
        ("/var", "top-level system directory"),
        ("/var/", "top-level system directory"),
        ("/usr", "top-level system directory"),
        ("/etc", "top-level system directory"),
        ("/home", "top-level system directory"),
        ("/lib64", "top-level system directory"),
        ("/libfoo", "top-level system directory"),
        ("/tmp", "top-level system directory"),
        ("/usr/lib", "system directory"),
        ("/var/lib", "system directory"),
        ("/var/log", "system directory"),
        ("/usr/local", "system directory"),
        ("/var/cluster", "system directory"),
        ("/etc/refsuite", "inside the system directory /etc"),
        ("/usr/lib/x86_64-linux-gnu", "inside the system directory /usr/lib"),
        ("/proc/1", "inside the system directory /proc"),
        ("/home/alice", "home directory"),
        ("var/cluster/sms", "not absolute"),
        ("cluster", "not absolute"),
        ("", "non-empty"),
        ("/var/cluster/../../etc", "'..'"),
        ("/var/cluster/sms/..", "'..'"),
        ("..", "'..'"),
        ("/var//cluster/sms", "not normalised"),
        ("/var/./cluster/sms", "not normalised"),
        ("//var/cluster/sms", "not normalised"),
        ("/var/cluster/sms\x00", "NUL"),
    ],
)
def test_check_root_path_refuses_dangerous_paths(path, words):
    problems = safe_delete.check_root_path(path)
    assert problems, f"{path!r} must be refused"
    assert any(words in problem for problem in problems), problems


@pytest.mark.parametrize("path", ["/", "/var", "/usr/lib", "var/x", "/var/cluster/..", "/etc/x"])
def test_validate_root_raises_before_touching_anything(path):
    with pytest.raises(UnsafePathError, match="refusing to clear"):
        safe_delete.validate_root(path)


@pytest.mark.parametrize(
    "path",
    ["/var/cluster/sms", "/var/lib/refsuite/cluster", "/srv/cluster/data", "/opt/seon/cluster"],
)
def test_check_root_path_accepts_data_directories(path):
    assert safe_delete.check_root_path(path) == []


def test_validate_root_needs_an_existing_real_directory(tmp_path):
    assert safe_delete.validate_root(str(tmp_path)) == str(tmp_path)
    assert safe_delete.validate_root(str(tmp_path) + "/") == str(tmp_path)
    with pytest.raises(UnsafePathError, match="does not exist"):
        safe_delete.validate_root(str(tmp_path / "absent"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnsafePathError, match="not a directory"):
        safe_delete.validate_root(str(tmp_path / "file"))
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError, match="is a symlink"):
        safe_delete.validate_root(str(tmp_path / "link"))
    (tmp_path / "real" / "sub").mkdir()
    with pytest.raises(UnsafePathError, match="goes through a symlink"):
        safe_delete.validate_root(str(tmp_path / "link" / "sub"))


def make_tree(root: Path) -> None:
    """root/{m1,m2}/... like /var/cluster/sms/<member>/<files>."""
    for member in ("m1", "m2"):
        (root / member / "sub" / "deep").mkdir(parents=True)
        (root / member / "data.bin").write_text("data")
        (root / member / ".hidden").write_text("h")
        (root / member / "sub" / "deep" / "f").write_text("f")
    (root / "top.txt").write_text("stays: above the clearing depth")


def test_clear_tree_depth_two_removes_only_level_two(tmp_path):
    root = tmp_path / "sms"
    make_tree(root)
    removed = safe_delete.clear_tree(str(root), 2, check_mode=False)
    assert sorted(removed) == sorted(
        f"{root}/{m}/{n}" for m in ("m1", "m2") for n in (".hidden", "data.bin", "sub")
    )
    assert sorted(p.name for p in root.iterdir()) == ["m1", "m2", "top.txt"]
    assert list((root / "m1").iterdir()) == []
    assert safe_delete.clear_tree(str(root), 2, check_mode=False) == []


def test_clear_tree_check_mode_lists_and_keeps_everything(tmp_path):
    root = tmp_path / "sms"
    make_tree(root)
    before = sorted(str(p) for p in root.rglob("*"))
    listed = safe_delete.clear_tree(str(root), 2, check_mode=True)
    assert len(listed) == 6
    assert sorted(str(p) for p in root.rglob("*")) == before


def test_clear_tree_depth_one(tmp_path):
    root = tmp_path / "data"
    make_tree(root)
    assert len(safe_delete.clear_tree(str(root), 1, check_mode=False)) == 3
    assert list(root.iterdir()) == []
    assert root.is_dir()


@pytest.mark.parametrize("depth", [0, -1, True, "2", 1.5])
def test_clear_tree_refuses_bad_depth(tmp_path, depth):
    (tmp_path / "a").mkdir()
    with pytest.raises(UnsafePathError, match="depth"):
        safe_delete.clear_tree(str(tmp_path), depth, check_mode=False)
    assert (tmp_path / "a").is_dir()


def test_symlinks_are_removed_never_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "precious").write_text("keep")
    (outside / "file").write_text("keep")
    root = tmp_path / "tree"
    (root / "a").mkdir(parents=True)
    (root / "a" / "to_dir").symlink_to(outside / "dir")
    (root / "a" / "to_file").symlink_to(outside / "file")
    (root / "a" / "to_root").symlink_to("/")
    (root / "via").symlink_to(outside)  # above the depth: neither followed nor removed
    removed = safe_delete.clear_tree(str(root), 2, check_mode=False)
    assert sorted(removed) == sorted(f"{root}/a/{n}" for n in ("to_dir", "to_file", "to_root"))
    assert (outside / "dir" / "precious").read_text() == "keep"
    assert (outside / "file").read_text() == "keep"
    assert (root / "via").is_symlink()
    assert list((root / "a").iterdir()) == []


def test_second_guard_refuses_a_protected_directory_by_identity(tmp_path, monkeypatch):
    protected = tmp_path / "pretend-var"
    (protected / "x" / "y").mkdir(parents=True)
    monkeypatch.setattr(safe_delete, "GUARDED_DIRS", ("/", str(protected)))
    with pytest.raises(UnsafePathError, match="protected directory"):
        safe_delete.clear_tree(str(protected), 2, check_mode=False)
    assert (protected / "x" / "y").is_dir()


def test_second_guard_sees_through_a_hard_to_spot_alias(tmp_path, monkeypatch):
    """The same directory reached by another name (bind-mount-like alias) is still refused: the
    guard compares (st_dev, st_ino), not strings."""
    protected = tmp_path / "protected"
    (protected / "a" / "b").mkdir(parents=True)
    alias_parent = tmp_path / "alias"
    alias_parent.mkdir()
    monkeypatch.setattr(safe_delete, "GUARDED_DIRS", (str(protected),))
    real_fstat = os.fstat
    target = os.stat(protected)

    def fstat(fd):  # the opened root is reported as the protected directory
        st = real_fstat(fd)
        if os.path.samestat(st, os.stat(alias_parent)):
            return target
        return st

    monkeypatch.setattr(safe_delete.os, "fstat", fstat)
    with pytest.raises(UnsafePathError, match=str(protected)):
        safe_delete.clear_tree(str(alias_parent), 1, check_mode=False)


def test_guard_lists_cover_root_and_system_directories():
    assert "/" in safe_delete.GUARDED_DIRS
    for path in ("/var", "/usr", "/etc", "/usr/lib", "/var/lib", "/home", "/tmp"):
        assert path in safe_delete.GUARDED_DIRS


def test_mountinfo_unescape():
    assert safe_delete._unescape(r"/mnt/with\040space") == "/mnt/with space"
    assert "/" in safe_delete.read_mount_points()
