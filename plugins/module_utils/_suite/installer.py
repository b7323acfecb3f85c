# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Install logic: the bundled reference suite, or a checksummed release archive.

Layouts under ``prefix``:

- bundled: ``bin/refsuite`` (a launcher), ``lib/refsuite/...`` (the package), ``VERSION``,
  from a source tree on the target (``src``) or from the ``bundle`` the action plugin ships
  (relpath -> base64, relative to the collection's ``refsuite/``); both give the same files.
  Idempotent by content: a file is written only when its sha256 differs.
- archive: ``releases/<version>/{bin,lib,VERSION}`` unpacked from a tar.gz whose sha256 is checked
  before anything changes, ``current`` -> ``releases/<version>`` switched atomically (os.replace of
  a temporary symlink) and ``bin``, ``lib``, ``VERSION`` -> ``current/...``. ``version`` alone
  selects an installed release, so a rollback is one variable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from typing import Any, Callable, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite import fileio
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

PACKAGE = "refsuite"
ENTRY_POINTS = ("bin", "lib", "VERSION")
MARKER = ".archive.sha256"
_IGNORED_PARTS = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")
_IGNORED_SUFFIXES = (".pyc", ".pyo", "~", ".swp")
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
MAX_VERSION_BYTES = 256  # a VERSION file is one short line; a larger one is refused unread


def _clip(text: str, limit: int = 80) -> str:
    """``text`` for an error message: at most ``limit`` characters, control characters escaped."""
    shown = text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
    return shown.encode("unicode_escape").decode("ascii")


LAUNCHER = """#!{python}
# Installed by daemonops.suite.install: runs {package} from <prefix>/lib.
import os
import runpy
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
runpy.run_module("{package}", run_name="__main__", alter_sys=True)
"""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ignored(relpath: str) -> bool:
    parts = relpath.split(os.sep)
    return any(p in _IGNORED_PARTS for p in parts) or relpath.endswith(_IGNORED_SUFFIXES)


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fileio.atomic_write(path, data, mode=mode)


def _lines(entries: dict[str, str]) -> str:
    return "".join(f"{path}  {digest}\n" for path, digest in sorted(entries.items()))


def _version_of(sources: Mapping[str, bytes], where: str) -> str:
    """The version of a source file set: its VERSION, else ``__version__`` of the package."""
    data = sources.get("VERSION")
    if data is not None:
        version = data.decode("utf-8", "replace").strip()
        if version:
            return version
    init = sources.get(f"{PACKAGE}/__init__.py")
    if init is not None:
        text = init.decode("utf-8", "replace")
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if match:
            return match.group(1)
    raise SuiteError(f"{where} has no VERSION file and no {PACKAGE}/__init__.py __version__")


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _read_source(src: str, real_src: str, full: str, rel: str) -> tuple[bytes, int]:
    """Content and mode of one source file. A symlink is followed only when its target is inside
    the source tree; one that leaves it is refused (it could copy any file of the target, a
    0600 secret included, into the installation)."""
    if os.path.islink(full):
        target = os.path.realpath(full)
        if not _inside(target, real_src):
            raise SuiteError(
                f"src: {rel} is a symlink to {target}, outside the source tree {src}; refused "
                "(replace the link by the file itself)"
            )
    with open(full, "rb") as handle:
        st = os.fstat(handle.fileno())
        return handle.read(), stat.S_IMODE(st.st_mode)


def tree_sources(src: str, modes: Optional[dict[str, int]] = None) -> dict[str, bytes]:
    """The files of a refsuite source tree on disk that an install uses.

    Returns relpath ('/'-separated, relative to ``src``) -> content for ``VERSION``,
    ``bin/<package>`` and every file under ``<package>/`` (caches and compiled files left out).
    ``modes`` (when given) receives each file's permission bits. Symlinks that leave the tree
    are refused with a SuiteError.
    """
    sources: dict[str, bytes] = {}
    real_src = os.path.realpath(src)
    package = os.path.join(src, PACKAGE)
    for root, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_PARTS)
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, src)
            if _ignored(rel) or not os.path.isfile(full):
                continue
            key = rel.replace(os.sep, "/")
            sources[key], mode = _read_source(src, real_src, full, key)
            if modes is not None:
                modes[key] = mode
    for rel in ("VERSION", f"bin/{PACKAGE}"):
        path = os.path.join(src, *rel.split("/"))
        if os.path.isfile(path):
            sources[rel], mode = _read_source(src, real_src, path, rel)
            if modes is not None:
                modes[rel] = mode
    return sources


def bundle_sources(bundle: Mapping[str, Any]) -> dict[str, bytes]:
    """Decode the ``bundle`` option (relpath -> base64 content) that the action plugin sends.

    Relpaths are relative to the collection's ``refsuite/``: ``VERSION``, ``bin/<package>`` and
    ``<package>/...``. Anything else, an unsafe path or content that is not base64 is refused
    with a SuiteError naming ``bundle``.
    """
    hint = "(the bundle is filled in by the action plugin: do not set it yourself)"
    if not isinstance(bundle, Mapping):
        raise SuiteError(f"bundle: must be a dict of relative path -> base64 content {hint}")
    sources: dict[str, bytes] = {}
    for rel, encoded in sorted(bundle.items()):
        if not isinstance(rel, str) or not rel:
            raise SuiteError(f"bundle: entry {rel!r} is not a relative path {hint}")
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise SuiteError(f"bundle: entry '{rel}' is not a safe relative path; refused {hint}")
        if rel not in ("VERSION", f"bin/{PACKAGE}") and not (
            len(parts) > 1 and parts[0] == PACKAGE
        ):
            raise SuiteError(
                f"bundle: unexpected entry '{rel}' (only VERSION, bin/{PACKAGE} and "
                f"{PACKAGE}/...) {hint}"
            )
        if _ignored(rel):
            continue
        if not isinstance(encoded, str):
            raise SuiteError(f"bundle: entry '{rel}' must be base64 text {hint}")
        try:
            sources[rel] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SuiteError(f"bundle: entry '{rel}' is not valid base64 ({exc}) {hint}")
    return sources


def read_version(src: str) -> str:
    """The version of a source tree: its VERSION file, else ``__version__`` of the package."""
    return _version_of(tree_sources(src), f"src: {src}")


class BundledInstaller:
    """Install the reference suite into ``prefix`` from a source tree on the target (``src``)
    or from a ``bundle`` (relpath -> base64 content) shipped by the action plugin."""

    def __init__(
        self,
        src: Optional[str],
        prefix: str,
        check_mode: bool = False,
        python: Optional[str] = None,
        bundle: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if (src is None) == (bundle is None):
            raise SuiteError(
                "src: give exactly one of src (a refsuite tree on the target) or bundle"
            )
        self.src = os.path.abspath(src) if src is not None else None
        self.bundle = bundle
        self.prefix = os.path.abspath(prefix)
        self.check_mode = check_mode
        self.python = python or sys.executable or "/usr/bin/python3"
        self._sources: Optional[dict[str, bytes]] = None
        self._modes: dict[str, int] = {}

    @property
    def where(self) -> str:
        """How the source is named in messages (``src: <dir>`` or ``bundle``)."""
        return f"src: {self.src}" if self.src is not None else "bundle"

    def sources(self) -> dict[str, bytes]:
        """relpath (relative to the refsuite tree) -> content, read or decoded once."""
        if self._sources is None:
            if self.src is not None:
                self._sources = tree_sources(self.src, self._modes)
            else:
                self._sources = bundle_sources(self.bundle or {})
        return self._sources

    def desired(self) -> dict[str, tuple[bytes, int]]:
        """relative path under prefix -> (content, mode)."""
        sources = self.sources()
        if f"{PACKAGE}/__init__.py" not in sources:
            if self.src is not None:
                raise SuiteError(
                    f"src: {self.src} is not a {PACKAGE} source tree (no {PACKAGE}/__init__.py); "
                    "point src at the staged copy of the collection's refsuite/ directory"
                )
            raise SuiteError(
                f"bundle: has no {PACKAGE}/__init__.py (the bundle is filled in by the action "
                "plugin from the collection's refsuite/ directory: do not set it yourself)"
            )
        files: dict[str, tuple[bytes, int]] = {}
        package = PACKAGE + "/"
        for rel in sorted(sources):
            if rel.startswith(package):
                # the source's mode without group/other write (0644 from a bundle): a 0600
                # file stays 0600
                files[os.path.join("lib", PACKAGE, *rel[len(package) :].split("/"))] = (
                    sources[rel],
                    self._modes.get(rel, 0o644) & 0o755,
                )
        files[os.path.join("bin", PACKAGE)] = (self.launcher(), 0o755)
        files["VERSION"] = (_version_of(sources, self.where).encode() + b"\n", 0o644)
        return files

    def launcher(self) -> bytes:
        """The source's bin/<package> with the interpreter as shebang, or a generated launcher."""
        data = self.sources().get(f"bin/{PACKAGE}")
        if data is not None:
            if data.startswith(b"#!"):
                data = data.split(b"\n", 1)[1] if b"\n" in data else b""
            return b"#!" + self.python.encode() + b"\n" + data
        return LAUNCHER.format(python=self.python, package=PACKAGE).encode()

    def run(self) -> dict[str, Any]:
        files = self.desired()
        version = files["VERSION"][0].decode().strip()
        for entry in ("bin", "lib", "VERSION"):
            path = os.path.join(self.prefix, entry)
            if os.path.islink(path) and not self.check_mode:
                # an archive layout (symlinks into current/): the bundled install replaces the links
                os.unlink(path)
        before: dict[str, str] = {}
        after: dict[str, str] = {}
        changed_files: list[str] = []
        for rel, (data, mode) in files.items():
            path = os.path.join(self.prefix, rel)
            digest = sha256_bytes(data)
            current = None
            if os.path.isfile(path) and not os.path.islink(path):
                current = sha256_file(path)
                same_mode = (os.stat(path).st_mode & 0o7777) == mode
            else:
                same_mode = False
            if current == digest and same_mode:
                continue
            changed_files.append(rel)
            before[rel] = current or "(absent)"
            after[rel] = digest
            if not self.check_mode:
                _write_atomic(path, data, mode)
        removed = self._extra_files(set(files))
        for rel in removed:
            before[rel] = sha256_file(os.path.join(self.prefix, rel))
            after[rel] = "(removed)"
            if not self.check_mode:
                os.unlink(os.path.join(self.prefix, rel))
        changed = bool(changed_files or removed)
        return {
            "changed": changed,
            "version": version,
            "prefix": self.prefix,
            "source": "bundled",
            "files": sorted(changed_files + removed),
            "diff": {"before": _lines(before), "after": _lines(after)},
        }

    def _extra_files(self, wanted: set[str]) -> list[str]:
        """Files under lib/<package> that the source no longer has (never __pycache__)."""
        lib = os.path.join(self.prefix, "lib", PACKAGE)
        extra: list[str] = []
        if not os.path.isdir(lib) or os.path.islink(lib):
            return extra
        for root, dirs, names in os.walk(lib):
            dirs[:] = [d for d in dirs if d not in _IGNORED_PARTS]
            for name in names:
                rel = os.path.relpath(os.path.join(root, name), self.prefix)
                if rel not in wanted and not _ignored(rel):
                    extra.append(rel)
        return sorted(extra)


Fetcher = Callable[[str, str], None]


class ArchiveInstaller:
    """Install a release from a checksummed tar.gz into releases/<version> and switch ``current``."""

    def __init__(
        self,
        prefix: str,
        archive: Optional[str] = None,
        sha256: Optional[str] = None,
        version: Optional[str] = None,
        check_mode: bool = False,
        fetch: Optional[Fetcher] = None,
    ) -> None:
        self.prefix = os.path.abspath(prefix)
        self.archive = archive
        self.sha256 = (sha256 or "").strip().lower()
        if self.sha256.startswith("sha256:"):
            self.sha256 = self.sha256[len("sha256:") :]
        self.version = version
        self.check_mode = check_mode
        self.fetch = fetch
        self.releases = os.path.join(self.prefix, "releases")
        self.current = os.path.join(self.prefix, "current")

    # -- helpers -------------------------------------------------------------------------
    def installed(self) -> list[str]:
        if not os.path.isdir(self.releases):
            return []
        return sorted(
            name
            for name in os.listdir(self.releases)
            if not name.startswith(".") and os.path.isdir(os.path.join(self.releases, name))
        )

    def current_version(self) -> Optional[str]:
        if not os.path.islink(self.current):
            return None
        return os.path.basename(os.readlink(self.current).rstrip("/"))

    def _check_version(self, version: str, option: str) -> str:
        if not _VERSION_RE.fullmatch(version):
            raise SuiteError(
                f"{option}: '{_clip(version)}' is not a valid version (letters, digits, . _ + -; "
                "at most 128 characters)"
            )
        return version

    def _local_archive(self, workdir: str) -> str:
        archive = self.archive or ""
        if re.match(r"^[a-z][a-z0-9+.-]*://", archive):
            if archive.startswith("file://"):
                path = archive[len("file://") :]
            else:
                if self.fetch is None:
                    raise SuiteError(f"archive: cannot download {self.archive} (no fetcher)")
                path = os.path.join(workdir, "download.tar.gz")
                self.fetch(archive, path)
                return path
        else:
            path = archive
        if not os.path.isfile(path):
            raise SuiteError(
                f"archive: {path} does not exist on the target; give a tar.gz path or an URL"
            )
        return path

    @staticmethod
    def _members(tar: tarfile.TarFile) -> tuple[list[tarfile.TarInfo], str]:
        """Checked members and the common top directory to strip ('' when none)."""
        members = tar.getmembers()
        for member in members:
            name = member.name
            if name.startswith("/") or ".." in name.split("/"):
                raise SuiteError(f"archive: member '{name}' leaves the release directory; refused")
            if member.isdev() or member.isfifo():
                raise SuiteError(f"archive: member '{name}' is a device or FIFO; refused")
            if member.issym() or member.islnk():
                target = member.linkname
                if target.startswith("/") or ".." in target.split("/"):
                    raise SuiteError(
                        f"archive: link '{name}' -> '{target}' points outside the release; refused"
                    )
        names = [m.name.strip("./") for m in members if m.name.strip("./")]
        tops = {n.split("/", 1)[0] for n in names}
        strip = ""
        if len(tops) == 1:
            top = next(iter(tops))
            if top not in ENTRY_POINTS and any(n.startswith(top + "/") for n in names):
                strip = top + "/"
        return members, strip

    def _archive_version(self, tar: tarfile.TarFile, strip: str) -> Optional[str]:
        for member in tar.getmembers():
            if member.name.strip("./") == strip + "VERSION" and member.isfile():
                if member.size > MAX_VERSION_BYTES:
                    raise SuiteError(
                        f"archive: {self.archive} has a VERSION file of {member.size} bytes; a "
                        f"version is one short line (at most {MAX_VERSION_BYTES} bytes); refused"
                    )
                handle = tar.extractfile(member)
                if handle is not None:
                    data = handle.read(MAX_VERSION_BYTES + 1)[:MAX_VERSION_BYTES]
                    return data.decode("utf-8", "replace").strip() or None
        return None

    def _unpack(self, tar: tarfile.TarFile, members: list[tarfile.TarInfo], strip: str, dest: str):
        for member in members:
            name = member.name.strip("./")
            if strip:
                if not name.startswith(strip):
                    continue
                name = name[len(strip) :]
            if not name:
                continue
            member.name = name
            if hasattr(tarfile, "data_filter"):
                tar.extract(member, dest, filter="data")
            else:  # Python < 3.9.17 / 3.11.4: members were checked above
                tar.extract(member, dest)

    # -- the module's work ---------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = {"changed": False, "prefix": self.prefix, "source": "archive"}
        before_version = self.current_version()
        self._check_layout()
        unpacked = False
        if self.archive:
            if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
                raise SuiteError(
                    "sha256: give the archive's SHA-256 checksum (64 hex digits); it is required "
                    "with archive"
                )
            workdir = tempfile.mkdtemp(prefix=".install-")
            try:
                path = self._local_archive(workdir)
                actual = sha256_file(path)
                if actual != self.sha256:
                    raise SuiteError(
                        f"sha256: checksum mismatch for archive {self.archive}: expected "
                        f"{self.sha256}, actual {actual}; nothing was changed"
                    )
                try:
                    tar = tarfile.open(path, "r:*")
                except (tarfile.TarError, OSError) as exc:
                    raise SuiteError(f"archive: {self.archive} is not a tar archive: {exc}")
                with tar:
                    members, strip = self._members(tar)
                    found = self._archive_version(tar, strip)
                    version = self.version or found
                    if not version:
                        raise SuiteError(
                            f"version: {self.archive} has no VERSION file; give version explicitly"
                        )
                    self._check_version(version, "version")
                    release = os.path.join(self.releases, version)
                    marker = os.path.join(release, MARKER)
                    if os.path.isdir(release):
                        recorded = ""
                        if os.path.isfile(marker):
                            with open(marker, encoding="utf-8") as handle:
                                recorded = handle.read().strip()
                        if recorded != self.sha256:
                            raise SuiteError(
                                f"version: release {version} is already installed under "
                                f"{release} from another archive (sha256 {recorded or 'unknown'}); "
                                "give the new archive another version"
                            )
                    else:
                        unpacked = True
                        if not self.check_mode:
                            os.makedirs(self.releases, mode=0o755, exist_ok=True)
                            staging = tempfile.mkdtemp(prefix=f".{version}.", dir=self.releases)
                            try:
                                os.chmod(staging, 0o755)
                                self._unpack(tar, members, strip, staging)
                                with open(os.path.join(staging, MARKER), "w") as handle:
                                    handle.write(self.sha256 + "\n")
                                os.rename(staging, release)
                            except BaseException:
                                shutil.rmtree(staging, ignore_errors=True)
                                raise
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            if not self.version:
                raise SuiteError("version: give version (an installed release) or archive + sha256")
            version = self._check_version(self.version, "version")
            if version not in self.installed():
                installed = ", ".join(self.installed()) or "none"
                raise SuiteError(
                    f"version: release {version} is not installed under {self.releases} "
                    f"(installed: {installed}); give archive and sha256 to install it"
                )
        links_changed = self._switch(version)
        result["changed"] = unpacked or links_changed
        result["version"] = version
        result["releases"] = sorted(set(self.installed()) | ({version} if unpacked else set()))
        result["release_dir"] = os.path.join(self.releases, version)
        result["diff"] = {
            "before": f"current: {before_version or '(none)'}\n",
            "after": f"current: {version}\n"
            + (f"unpacked: {self.archive} -> releases/{version}\n" if unpacked else ""),
        }
        return result

    def _refusal(self, path: str) -> str:
        """Why a real file or directory at ``path`` (``current`` or an entry point) is refused."""
        if path == self.current:
            return f"prefix: {self.current} exists and is not a symlink; move it away"
        return (
            f"prefix: {path} is a real file or directory (a bundled install?); "
            "use a new prefix for archive installs or remove the bundled install first"
        )

    def _check_layout(self) -> None:
        """Refuse (before anything changes) a prefix whose entry points are not our symlinks."""
        for path in [self.current, *(os.path.join(self.prefix, e) for e in ENTRY_POINTS)]:
            if os.path.lexists(path) and not os.path.islink(path):
                raise SuiteError(self._refusal(path))

    def _link(self, path: str, target: str) -> bool:
        """Make ``path`` a symlink to ``target`` (relative to the prefix), switched atomically
        (os.replace of a temporary symlink); False when it already is one. A real file or
        directory at ``path`` is refused. In check mode only says whether it would change."""
        if os.path.islink(path) and os.readlink(path) == target:
            return False
        if os.path.lexists(path) and not os.path.islink(path):
            raise SuiteError(self._refusal(path))
        if not self.check_mode:
            tmp = os.path.join(self.prefix, f".{os.path.basename(path)}.{os.getpid()}")
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, path)
        return True

    def _switch(self, version: str) -> bool:
        changed = self._link(self.current, os.path.join("releases", version))
        for entry in ENTRY_POINTS:
            if self._link(os.path.join(self.prefix, entry), os.path.join("current", entry)):
                changed = True
        return changed
