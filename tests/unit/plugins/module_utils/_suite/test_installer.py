# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.installer import (
    ArchiveInstaller,
    BundledInstaller,
    bundle_sources,
    read_version,
    tree_sources,
)


def make_src(root: Path, version: str = "1.0", body: str = "X = 1\n") -> Path:
    (root / "refsuite").mkdir(parents=True)
    (root / "refsuite" / "__init__.py").write_text('__version__ = "0.0"\n')
    (root / "refsuite" / "mod.py").write_text(body)
    (root / "refsuite" / "__pycache__").mkdir()
    (root / "refsuite" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    (root / "bin").mkdir()
    (root / "bin" / "refsuite").write_text("#!/usr/bin/env python3\nprint('hi')\n")
    (root / "VERSION").write_text(version + "\n")
    return root


def make_archive(path: Path, version: str, top: str = "", extra: dict | None = None) -> str:
    files = {
        "VERSION": f"{version}\n",
        "bin/refsuite": "#!/bin/sh\necho refsuite\n",
        "lib/refsuite/__init__.py": f'__version__ = "{version}"\n',
    }
    files.update(extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo((top + "/" if top else "") + name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_version(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src", version="2.3")
    assert read_version(str(src)) == "2.3"
    (src / "VERSION").unlink()
    assert read_version(str(src)) == "0.0"


def test_bundled_check_apply_idempotent(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    prefix = tmp_path / "opt"
    first = BundledInstaller(str(src), str(prefix), check_mode=True, python="/py").run()
    assert first["changed"] is True and not prefix.exists()
    applied = BundledInstaller(str(src), str(prefix), python="/py").run()
    assert applied["changed"] is True and applied["version"] == "1.0"
    assert "lib/refsuite/__pycache__/mod.cpython-311.pyc" not in applied["files"]
    assert (prefix / "bin" / "refsuite").read_text().startswith("#!/py\n")
    assert os.access(prefix / "bin" / "refsuite", os.X_OK)
    assert (prefix / "lib" / "refsuite" / "mod.py").read_text() == "X = 1\n"
    assert (prefix / "VERSION").read_text() == "1.0\n"
    assert (
        BundledInstaller(str(src), str(prefix), check_mode=True, python="/py").run()["changed"]
        is False
    )
    assert BundledInstaller(str(src), str(prefix), python="/py").run()["changed"] is False
    # content change -> only that file; a file the source dropped is removed
    (src / "refsuite" / "mod.py").write_text("X = 2\n")
    (prefix / "lib" / "refsuite" / "old.py").write_text("")
    again = BundledInstaller(str(src), str(prefix), python="/py").run()
    assert again["files"] == ["lib/refsuite/mod.py", "lib/refsuite/old.py"]
    assert "(removed)" in again["diff"]["after"]
    assert not (prefix / "lib" / "refsuite" / "old.py").exists()


def test_bundled_refuses_a_tree_without_the_package(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"src: .* is not a refsuite source tree"):
        BundledInstaller(str(tmp_path), str(tmp_path / "opt")).run()


def bundle_of(src: Path) -> dict[str, str]:
    """What the action plugin sends for a source tree: relpath -> base64 (package *.py only)."""
    paths = [src / "VERSION", src / "bin" / "refsuite", *sorted((src / "refsuite").rglob("*.py"))]
    return {p.relative_to(src).as_posix(): base64.b64encode(p.read_bytes()).decode() for p in paths}


def tree(prefix: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(prefix).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o7777)
        for p in sorted(prefix.rglob("*"))
        if p.is_file()
    }


def test_tree_sources_leave_out_caches(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    assert sorted(tree_sources(str(src))) == [
        "VERSION",
        "bin/refsuite",
        "refsuite/__init__.py",
        "refsuite/mod.py",
    ]


def test_bundled_from_bundle_same_as_from_src_and_idempotent(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    (src / "refsuite" / "sub").mkdir()
    (src / "refsuite" / "sub" / "deep.py").write_text("Y = 2\n")
    from_src, from_bundle = tmp_path / "a", tmp_path / "b"
    BundledInstaller(str(src), str(from_src), python="/py").run()
    bundle = bundle_of(src)
    assert "refsuite/sub/deep.py" in bundle
    check = BundledInstaller(None, str(from_bundle), True, "/py", bundle=bundle).run()
    assert check["changed"] is True and not from_bundle.exists()
    applied = BundledInstaller(None, str(from_bundle), python="/py", bundle=bundle).run()
    assert applied["changed"] is True and applied["version"] == "1.0"
    assert applied["files"] == [
        "VERSION",
        "bin/refsuite",
        "lib/refsuite/__init__.py",
        "lib/refsuite/mod.py",
        "lib/refsuite/sub/deep.py",
    ]
    assert tree(from_bundle) == tree(from_src)
    assert (from_bundle / "bin" / "refsuite").read_text() == "#!/py\nprint('hi')\n"
    for check_mode in (True, False):
        again = BundledInstaller(None, str(from_bundle), check_mode, "/py", bundle=bundle).run()
        assert again["changed"] is False and again["files"] == []
    # a file the bundle no longer has is removed; a changed one rewritten
    del bundle["refsuite/sub/deep.py"]
    bundle["refsuite/mod.py"] = base64.b64encode(b"X = 3\n").decode()
    changed = BundledInstaller(None, str(from_bundle), python="/py", bundle=bundle).run()
    assert changed["files"] == ["lib/refsuite/mod.py", "lib/refsuite/sub/deep.py"]
    assert (from_bundle / "lib" / "refsuite" / "mod.py").read_text() == "X = 3\n"
    assert not (from_bundle / "lib" / "refsuite" / "sub" / "deep.py").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"refsuite/mod.py": "not base64!"}, "bundle: entry 'refsuite/mod.py' is not valid base64"),
        ({"refsuite/mod.py": 42}, "bundle: entry 'refsuite/mod.py' must be base64 text"),
        ({"../evil.py": "eA=="}, "bundle: entry '../evil.py' is not a safe relative path"),
        ({"/etc/passwd": "eA=="}, "bundle: entry '/etc/passwd' is not a safe relative path"),
        ({"README.md": "eA=="}, "bundle: unexpected entry 'README.md'"),
        ({"refsuite/__init__.py": None}, "bundle: has no refsuite/__init__.py"),
    ],
)
def test_bad_bundle_is_refused_naming_bundle(tmp_path: Path, change: dict, message: str) -> None:
    bundle: dict = bundle_of(make_src(tmp_path / "src"))
    for key, value in change.items():
        if value is None:
            del bundle[key]
        else:
            bundle[key] = value
    prefix = tmp_path / "opt"
    with pytest.raises(SuiteError, match="^" + message.replace("(", r"\(")) as info:
        BundledInstaller(None, str(prefix), bundle=bundle).run()
    assert "do not set it yourself" in str(info.value)
    assert not prefix.exists()


def test_bundle_sources_skip_caches_and_need_one_source(tmp_path: Path) -> None:
    data = base64.b64encode(b"junk").decode()
    assert bundle_sources({"refsuite/__pycache__/x.cpython-311.pyc": data, "VERSION": data}) == {
        "VERSION": b"junk"
    }
    with pytest.raises(SuiteError, match="exactly one of src"):
        BundledInstaller(None, str(tmp_path / "opt"))
    with pytest.raises(SuiteError, match="exactly one of src"):
        BundledInstaller(str(tmp_path), str(tmp_path / "opt"), bundle={})


def test_archive_install_switch_and_rollback(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    a1, a2 = tmp_path / "r1.tar.gz", tmp_path / "r2.tar.gz"
    sum1 = make_archive(a1, "1.0", top="refsuite-1.0")
    sum2 = make_archive(a2, "2.0")
    check = ArchiveInstaller(str(prefix), str(a1), sum1, check_mode=True).run()
    assert check["changed"] is True and check["version"] == "1.0" and not prefix.exists()
    first = ArchiveInstaller(str(prefix), str(a1), sum1).run()
    assert first["changed"] is True
    assert os.readlink(prefix / "current") == "releases/1.0"
    assert (prefix / "VERSION").read_text() == "1.0\n"
    assert os.readlink(prefix / "bin") == "current/bin"
    assert (prefix / "releases" / "1.0" / "lib" / "refsuite" / "__init__.py").is_file()
    assert ArchiveInstaller(str(prefix), str(a1), sum1, check_mode=True).run()["changed"] is False
    assert ArchiveInstaller(str(prefix), str(a1), sum1).run()["changed"] is False
    ArchiveInstaller(str(prefix), str(a2), "sha256:" + sum2.upper()).run()
    assert (prefix / "VERSION").read_text() == "2.0\n"
    rollback = ArchiveInstaller(str(prefix), version="1.0").run()
    assert rollback["changed"] is True and rollback["releases"] == ["1.0", "2.0"]
    assert (prefix / "VERSION").read_text() == "1.0\n"
    assert ArchiveInstaller(str(prefix), version="1.0").run()["changed"] is False


def test_archive_checksum_mismatch_changes_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "r.tar.gz"
    actual = make_archive(archive, "1.0")
    with pytest.raises(SuiteError) as info:
        ArchiveInstaller(str(tmp_path / "opt"), str(archive), "0" * 64).run()
    assert f"expected {'0' * 64}, actual {actual}" in str(info.value)
    assert str(info.value).startswith("sha256: checksum mismatch")
    assert not (tmp_path / "opt").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"archive": "/nonexistent/r.tar.gz", "sha256": "a" * 64}, "archive: /nonexistent"),
        ({"archive": "/x.tar.gz", "sha256": "abc"}, "sha256: give the archive's SHA-256"),
        ({"version": "9.9"}, "version: release 9.9 is not installed"),
        ({}, "version: give version"),
        ({"version": "../evil"}, "version: '../evil' is not a valid version"),
    ],
)
def test_archive_bad_input(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(SuiteError, match="^" + message.replace("(", r"\(")):
        ArchiveInstaller(str(tmp_path / "opt"), **kwargs).run()
    assert not (tmp_path / "opt").exists()


def test_archive_with_escaping_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    digest = make_archive(archive, "1.0", extra={"../escape": "x"})
    with pytest.raises(SuiteError, match="leaves the release directory"):
        ArchiveInstaller(str(tmp_path / "opt"), str(archive), digest).run()
    assert not (tmp_path / "escape").exists()


def test_same_version_from_another_archive_is_refused(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    ArchiveInstaller(str(prefix), str(a), make_archive(a, "1.0")).run()
    other = make_archive(b, "1.0", extra={"lib/refsuite/new.py": ""})
    with pytest.raises(SuiteError, match=r"already installed .* from another archive"):
        ArchiveInstaller(str(prefix), str(b), other).run()


def test_archive_over_bundled_prefix_is_refused(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    BundledInstaller(str(make_src(tmp_path / "src")), str(prefix), python="/py").run()
    archive = tmp_path / "r.tar.gz"
    with pytest.raises(SuiteError, match="is a real file or directory"):
        ArchiveInstaller(str(prefix), str(archive), make_archive(archive, "1.0")).run()
    assert not (prefix / "releases").exists()
