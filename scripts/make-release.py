#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a refsuite release archive in the layout `install source=archive` takes:
refsuite-<version>/{bin/refsuite, lib/refsuite/*.py, VERSION}; prints its SHA-256.

    python scripts/make-release.py --version 1.1.0 [--python /usr/bin/python3] OUT.tar.gz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "refsuite"


def make_release(out: Path, version: str, python: str = "/usr/bin/env python3") -> str:
    """Write the archive; return its SHA-256. ``python`` becomes the launcher's interpreter."""
    top = f"refsuite-{version}"
    with tarfile.open(out, "w:gz") as tar:

        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for file in sorted((SRC / "refsuite").glob("*.py")):
            add(f"lib/refsuite/{file.name}", file.read_bytes())
        launcher = (SRC / "bin" / "refsuite").read_bytes().split(b"\n", 1)[1]
        add("bin/refsuite", b"#!" + python.encode() + b"\n" + launcher, 0o755)
        add("VERSION", f"{version}\n".encode())
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="release name (VERSION)")
    parser.add_argument("--python", default="/usr/bin/env python3", help="launcher interpreter")
    parser.add_argument("out", type=Path, help="archive to write (.tar.gz)")
    args = parser.parse_args(argv)
    print(make_release(args.out, args.version, args.python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
