# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""daemonops.suite.install through ansible on localhost: bundled refsuite and release archives."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
SRC = TOP / "refsuite"


def four_times(ansible_module, args: dict) -> list[dict]:
    """check mode -> apply -> check mode again -> apply again."""
    results = []
    prefix = Path(args["prefix"])
    existed = prefix.exists()
    for check in (True, False, True, False):
        result = ansible_module("install", args, check=check, diff=True)
        assert not result.get("failed"), result.get("msg")
        if not results:
            assert prefix.exists() == existed, "check mode created the prefix"
        results.append(result)
    return results


def test_bundled_install_check_apply_idempotent(ansible_module, tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    args = {"source": "bundled", "src": str(SRC), "prefix": str(prefix)}
    first, applied, check_again, again = four_times(ansible_module, args)
    assert first["changed"] is True
    assert "bin/refsuite" in first["diff"]["after"]
    assert applied["changed"] is True
    version = (SRC / "VERSION").read_text().strip()
    assert applied["version"] == version
    assert check_again["changed"] is False and again["changed"] is False
    assert (prefix / "lib" / "refsuite" / "cli.py").read_bytes() == (
        SRC / "refsuite" / "cli.py"
    ).read_bytes()
    out = subprocess.run(
        [str(prefix / "bin" / "refsuite"), "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == version
    # a changed file on the target is put back (content, not timestamps, decides)
    (prefix / "lib" / "refsuite" / "cli.py").write_text("# tampered\n")
    repaired = ansible_module("install", args)
    assert repaired["changed"] is True and repaired["files"] == ["lib/refsuite/cli.py"]


def test_bundled_shipped_by_the_action_plugin(ansible_module, tmp_path: Path) -> None:
    """source=bundled without src: the action plugin ships the collection's refsuite/."""
    prefix = tmp_path / "opt"
    args = {"source": "bundled", "prefix": str(prefix)}
    first, applied, check_again, again = four_times(ansible_module, args)
    assert first["changed"] is True and "lib/refsuite/cli.py" in first["files"]
    assert "bin/refsuite  (absent)" in first["diff"]["before"]
    assert applied["changed"] is True and applied["files"] == first["files"]
    assert check_again["changed"] is False and again["changed"] is False
    assert again["files"] == []
    # the module got the files' content, the echoed arguments only a summary of it
    shipped = again["invocation"]["module_args"]["bundle"]
    assert isinstance(shipped, str) and "files of the collection's refsuite/" in shipped
    package = {
        p.relative_to(SRC / "refsuite").as_posix()
        for p in (SRC / "refsuite").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    installed = {
        p.relative_to(prefix / "lib" / "refsuite").as_posix()
        for p in (prefix / "lib" / "refsuite").rglob("*")
        if p.is_file()
    }
    assert installed == package
    for rel in package:
        assert (prefix / "lib" / "refsuite" / rel).read_bytes() == (
            SRC / "refsuite" / rel
        ).read_bytes()
    assert not (prefix / "README.md").exists()
    version = (SRC / "VERSION").read_text().strip()
    assert applied["version"] == version and (prefix / "VERSION").read_text() == version + "\n"
    launcher = prefix / "bin" / "refsuite"
    assert launcher.read_text().splitlines()[0] == f"#!{sys.executable}"
    out = subprocess.run(
        [str(launcher), "version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == version


def make_release(path: Path, version: str) -> str:
    """A release archive in the layout archives use: refsuite-<v>/{bin,lib,VERSION}."""
    top = f"refsuite-{version}"
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted((SRC / "refsuite").glob("*.py")):
            tar.add(str(file), f"{top}/lib/refsuite/{file.name}")
        tar.add(str(SRC / "bin" / "refsuite"), f"{top}/bin/refsuite")
        data = f"{version}\n".encode()
        info = tarfile.TarInfo(f"{top}/VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_archive_install_upgrade_and_rollback(ansible_module, tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    one, two = tmp_path / "refsuite-1.0.tar.gz", tmp_path / "refsuite-2.0.tar.gz"
    sum_one, sum_two = make_release(one, "1.0"), make_release(two, "2.0")
    args = {"source": "archive", "archive": str(one), "sha256": sum_one, "prefix": str(prefix)}
    first, applied, check_again, again = four_times(ansible_module, args)
    assert first["changed"] is True
    assert applied["changed"] is True and applied["version"] == "1.0"
    assert check_again["changed"] is False and again["changed"] is False
    assert os.readlink(prefix / "current") == "releases/1.0"
    out = subprocess.run(
        [str(prefix / "bin" / "refsuite"), "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == (SRC / "VERSION").read_text().strip()

    upgrade = ansible_module(
        "install",
        {"source": "archive", "archive": f"file://{two}", "sha256": sum_two, "prefix": str(prefix)},
    )
    assert upgrade["changed"] is True and upgrade["version"] == "2.0"
    assert (prefix / "VERSION").read_text() == "2.0\n"

    rollback = {"source": "archive", "version": "1.0", "prefix": str(prefix)}
    results = four_times(ansible_module, rollback)
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert (prefix / "VERSION").read_text() == "1.0\n"
    assert results[1]["releases"] == ["1.0", "2.0"]


def test_archive_wrong_checksum_fails_before_anything_changes(
    ansible_module, tmp_path: Path
) -> None:
    archive = tmp_path / "refsuite-1.0.tar.gz"
    actual = make_release(archive, "1.0")
    prefix = tmp_path / "opt"
    wrong = "a" * 64
    result = ansible_module(
        "install",
        {"source": "archive", "archive": str(archive), "sha256": wrong, "prefix": str(prefix)},
    )
    assert result["failed"] is True
    assert result["msg"].startswith("sha256: checksum mismatch")
    assert f"expected {wrong}, actual {actual}" in result["msg"]
    assert not prefix.exists()


def test_archive_missing_or_without_checksum_is_refused(ansible_module, tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    missing = ansible_module(
        "install",
        {
            "source": "archive",
            "archive": str(tmp_path / "nope.tar.gz"),
            "sha256": "b" * 64,
            "prefix": str(prefix),
        },
    )
    assert missing["failed"] is True and missing["msg"].startswith("archive: ")
    assert "nope.tar.gz does not exist" in missing["msg"]
    no_sum = ansible_module(
        "install",
        {"source": "archive", "archive": str(tmp_path / "x.tar.gz"), "prefix": str(prefix)},
    )
    assert no_sum["failed"] is True and "sha256" in no_sum["msg"]
    bad_bundle = ansible_module(
        "install",
        {"source": "bundled", "prefix": str(prefix), "bundle": {"refsuite/x.py": "%%%"}},
    )
    assert bad_bundle["failed"] is True
    assert bad_bundle["msg"].startswith("bundle: entry 'refsuite/x.py' is not valid base64")
    both = ansible_module(
        "install", {"source": "bundled", "src": str(SRC), "bundle": {}, "prefix": str(prefix)}
    )
    assert both["failed"] is True and "mutually exclusive: src|bundle" in both["msg"]
    assert not prefix.exists()
