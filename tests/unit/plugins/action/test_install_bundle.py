# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install action plugin's bundle: which files of refsuite/ it ships, and when."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.action.install import (
    REFSUITE_DIR,
    BundleError,
    refsuite_bundle,
    wants_bundle,
)

TOP = Path(__file__).resolve().parents[4]


def test_bundle_holds_only_what_refsuite_needs(tmp_path: Path) -> None:
    root = tmp_path / "refsuite"
    (root / "refsuite" / "sub" / "__pycache__").mkdir(parents=True)
    (root / "refsuite" / ".cache").mkdir()
    (root / "bin").mkdir()
    files = {
        "VERSION": b"1.0\n",
        "bin/refsuite": b"#!/usr/bin/env python3\n",
        "refsuite/__init__.py": b"",
        "refsuite/sub/deep.py": b"\x00\xffbinary-safe",
        # left out:
        "README.md": b"# readme\n",
        "refsuite/notes.txt": b"x",
        "refsuite/mod.pyc": b"x",
        "refsuite/sub/__pycache__/deep.cpython-311.pyc": b"x",
        "refsuite/sub/__pycache__/stray.py": b"x",
        "refsuite/.cache/hidden.py": b"x",
        "bin/other": b"x",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    bundle = refsuite_bundle(str(root))
    assert sorted(bundle) == [
        "VERSION",
        "bin/refsuite",
        "refsuite/__init__.py",
        "refsuite/sub/deep.py",
    ]
    assert {rel: base64.b64decode(value) for rel, value in bundle.items()} == {
        rel: files[rel] for rel in bundle
    }


def test_bundle_of_the_collection_matches_its_refsuite_tree() -> None:
    assert Path(REFSUITE_DIR).resolve() == (TOP / "refsuite").resolve()
    bundle = refsuite_bundle()
    expected = {"VERSION", "bin/refsuite"} | {
        p.relative_to(TOP / "refsuite").as_posix()
        for p in (TOP / "refsuite" / "refsuite").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert set(bundle) == expected
    assert base64.b64decode(bundle["VERSION"]) == (TOP / "refsuite" / "VERSION").read_bytes()


def test_a_tree_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"source=bundled: the collection has no refsuite"):
        refsuite_bundle(str(tmp_path))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, True),
        ({"source": "bundled", "prefix": "/x"}, True),
        ({"source": "bundled", "src": "/srv/refsuite"}, False),
        ({"source": "archive", "version": "1.0"}, False),
        ({"source": "bundled", "bundle": {}}, False),
    ],
)
def test_when_the_bundle_is_shipped(args: dict, expected: bool) -> None:
    assert wants_bundle(args) is expected
