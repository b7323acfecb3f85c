# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deleting a data tree without ever leaving it.

``validate_root(path)`` is the first guard: the path must be absolute, normalised, free of ``..``
and of symlinks, existing, a directory, and neither ``/`` nor a system directory.

``clear_tree(root, depth, check_mode)`` removes every entry found ``depth`` levels below ``root``
(depth 2 under /var/cluster/sms = ``/var/cluster/sms/*/*``, dot entries included). It works only
through directory file descriptors (``os.open(O_DIRECTORY | O_NOFOLLOW)``, ``os.scandir(fd)``,
``unlink``/``rmdir`` with ``dir_fd``), so a symlink is removed as a link and never followed, a
directory on another filesystem (other ``st_dev``) or a mount point is never entered, and a
directory swapped for a symlink mid-walk is refused by the kernel.  The second, independent guard:
after the root is opened, its ``(st_dev, st_ino)`` is compared with ``/`` and every directory in
``GUARDED_DIRS``; equal means refuse, whatever the path string said.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import UnsafePathError

# Never a deletion root, nor a descendant that is listed here.
TOP_LEVEL_DIRS = (
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp",
    "/usr", "/var",
)  # fmt: skip
SYSTEM_CHILD_DIRS = (
    "/usr/bin", "/usr/games", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64",
    "/usr/libexec", "/usr/libx32", "/usr/local", "/usr/local/bin", "/usr/local/etc",
    "/usr/local/include", "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/local/src",
    "/usr/sbin", "/usr/share", "/usr/src",
    "/var/backups", "/var/cache", "/var/crash", "/var/db", "/var/empty", "/var/lib", "/var/local",
    "/var/lock", "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
    "/var/www", "/var/cluster", "/var/adm",
    "/run/lock", "/run/user", "/run/systemd", "/run/shm",
    "/etc/ssl", "/etc/systemd", "/etc/default", "/etc/init.d",
    "/srv/www", "/opt/local",
)  # fmt: skip
# Every path below these is refused as a root too: nobody keeps cluster data there.
FORBIDDEN_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec",
    "/usr/libx32", "/usr/include", "/usr/share",
    "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/usr/local/include",
    "/usr/local/share", "/usr/local/etc", "/root/.ssh", "/run/user", "/run/systemd",
    "/var/lib/dpkg", "/var/lib/apt", "/var/lib/rpm", "/var/lib/systemd", "/var/spool/cron",
)  # fmt: skip
# A root with one of these components anywhere (/home/*/.ssh, /srv/x/.gnupg ...) is refused.
FORBIDDEN_COMPONENTS = (".ssh", ".gnupg")
# Directories whose direct children are people's homes.
HOME_PARENTS = ("/home",)

# The second guard compares the opened root's identity with these (monkeypatched in tests).
GUARDED_DIRS: tuple[str, ...] = ("/", *TOP_LEVEL_DIRS, *SYSTEM_CHILD_DIRS, *FORBIDDEN_TREES)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _strip_one_trailing_slash(path: str) -> str:
    if len(path) > 1 and path.endswith("/") and not path.endswith("//"):
        return path[:-1]
    return path


def check_root_path(path: object) -> list[str]:
    """All reasons (empty = acceptable) why ``path`` must not be a deletion root, from the path
    string alone.  Pure: touches no file system."""
    if not isinstance(path, str) or not path:
        return [f"path must be a non-empty string, got {path!r}"]
    problems: list[str] = []
    if "\x00" in path:
        return ["path contains a NUL byte"]
    if not path.startswith("/"):
        problems.append(f"path {path!r} is not absolute (start it with /)")
    candidate = _strip_one_trailing_slash(path)
    parts = candidate.split("/")[1:] if candidate.startswith("/") else candidate.split("/")
    if ".." in parts:
        problems.append(f"path {path!r} contains '..'")
    if candidate != "/" and ("" in parts or "." in parts):
        problems.append(
            f"path {path!r} is not normalised (empty or '.' components); "
            f"write it as {os.path.normpath(path)!r}"
        )
    elif os.path.normpath(candidate) != candidate and ".." not in parts:
        problems.append(f"path {path!r} is not normalised; write it as {os.path.normpath(path)!r}")
    if problems:
        return problems
    if candidate == "/":
        return ["path is / (the root directory)"]
    if candidate in TOP_LEVEL_DIRS or (len(parts) == 1 and parts[0].startswith("lib")):
        return [f"path {candidate} is a top-level system directory"]
    if candidate in SYSTEM_CHILD_DIRS:
        return [f"path {candidate} is a system directory"]
    for tree in FORBIDDEN_TREES:
        if candidate == tree:
            return [f"path {candidate} is a system directory"]
        if candidate.startswith(tree + "/"):
            return [f"path {candidate} is inside the system directory {tree}"]
    for component in FORBIDDEN_COMPONENTS:
        if component in parts:
            return [f"path {candidate} is inside a {component} directory"]
    parent = os.path.dirname(candidate)
    if parent in HOME_PARENTS:
        return [f"path {candidate} is a home directory"]
    return []


def validate_root(path: object) -> str:
    """First guard. Return the normalised root or raise UnsafePathError naming every failed rule.

    Checks the string (see ``check_root_path``), then the file system: the path must exist, be a
    directory, and contain no symlink in any component (its real path must be itself)."""
    problems = check_root_path(path)
    if problems:
        raise UnsafePathError("refusing to clear: " + "; ".join(problems))
    root = _strip_one_trailing_slash(str(path))
    if not os.path.lexists(root):
        raise UnsafePathError(f"refusing to clear: path {root} does not exist")
    if os.path.islink(root):
        raise UnsafePathError(f"refusing to clear: path {root} is a symlink")
    if not os.path.isdir(root):
        raise UnsafePathError(f"refusing to clear: path {root} is not a directory")
    real = os.path.realpath(root)
    if real != root:
        raise UnsafePathError(
            f"refusing to clear: path {root} goes through a symlink (it is really {real}); "
            "give the real path"
        )
    return root


def check_allowed(root: str, allowed: Optional[str]) -> None:
    """The allow rule: ``root`` (validated) must be ``allowed`` (the profile's cluster data
    path) or a directory below it. ``allowed`` None: no rule (the denylist still applies)."""
    if not allowed:
        return
    base = _strip_one_trailing_slash(os.path.normpath(str(allowed)))
    if not (root == base or root.startswith(base.rstrip("/") + "/")):
        raise UnsafePathError(
            f"refusing to clear: path {root} is not the profile's cluster data path {base} nor "
            "below it; give that path (or a directory under it), or fix suite.cluster_data.path "
            "in the profile"
        )


def _open_root(root: str) -> int:
    """Open ``root`` walking from / one component at a time with O_NOFOLLOW."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in root.split("/")[1:]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise UnsafePathError(
                    f"refusing to clear: cannot open {root} without following symlinks "
                    f"(at {part!r}: {exc.strerror})"
                )
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _guard_identity(fd: int, root: str) -> None:
    """Second guard: the opened directory must not be / or any guarded system directory."""
    opened = os.fstat(fd)
    identity = (opened.st_dev, opened.st_ino)
    for guarded in GUARDED_DIRS:
        try:
            st = os.stat(guarded)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == identity:
            raise UnsafePathError(
                f"refusing to clear: {root} is the protected directory {guarded} "
                "(same device and inode)"
            )


def read_mount_points() -> frozenset[str]:
    """Every mount point of this mount namespace (bind mounts included)."""
    points = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 4:
                    points.add(_unescape(fields[4]))
    except OSError:
        pass
    return frozenset(points)


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def printable(path: str) -> str:
    """``path`` as reportable text: bytes that are not UTF-8 (kept by ``os`` as surrogates)
    shown as ``\\xNN``, so that the module's JSON result can always be written and read."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class _Frame:
    """One directory on the way down (post-order removal keeps only the current one open)."""

    __slots__ = ("children", "complete", "identity", "name", "path")

    def __init__(self, identity: tuple[int, int], path: str, name: str, children: list[str]):
        self.identity = identity
        self.path = path
        self.name = name
        self.children = children
        self.complete = True


class _Walker:
    def __init__(self, root_dev: int, mounts: frozenset[str], check_mode: bool) -> None:
        self.root_dev = root_dev
        self.mounts = mounts
        self.check_mode = check_mode
        self.removed: list[str] = []
        self.skipped: list[str] = []  # not descended: other filesystem, mount point, changed
        self.kept: list[str] = []  # could not be removed (permission, immutable file, ...)

    def _foreign(self, st: os.stat_result, path: str) -> Optional[str]:
        if st.st_dev != self.root_dev:
            return "another filesystem; not entered"
        if path in self.mounts:
            return "a mount point; not entered"
        return None

    def _listing(self, fd: int, path: str) -> Optional[list[str]]:
        try:
            return sorted(os.listdir(fd), reverse=True)  # popped from the end: sorted order
        except OSError as exc:
            self.kept.append(f"{printable(path)}: cannot list ({exc.strerror})")
            return None

    def descend(self, dir_fd: int, path: str, levels_left: int) -> None:
        """Walk down to the entries ``levels_left`` levels below and remove each of them."""
        names = self._listing(dir_fd, path)
        for name in reversed(names or []):
            child_path = f"{path}/{name}"
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if levels_left > 1:
                if not stat.S_ISDIR(st.st_mode):
                    continue  # a file or symlink above the clearing depth stays
                reason = self._foreign(st, child_path)
                if reason:
                    self.skipped.append(f"{printable(child_path)}: {reason}")
                    continue
                child_fd = self._open_dir(dir_fd, name, st, child_path)
                if child_fd is None:
                    continue
                try:
                    self.descend(child_fd, child_path, levels_left - 1)
                finally:
                    os.close(child_fd)
            elif self.remove(dir_fd, name, st, child_path):
                self.removed.append(printable(child_path))

    def _open_dir(self, dir_fd: int, name: str, st: os.stat_result, path: str) -> Optional[int]:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            self.skipped.append(
                f"{printable(path)}: cannot open without following links ({exc.strerror})"
            )
            return None
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            self.skipped.append(f"{printable(path)}: replaced while being cleared; not entered")
            return None
        return fd

    def _delete(self, delete: Callable[..., None], dir_fd: int, name: str, path: str) -> bool:
        """``os.unlink`` or ``os.rmdir`` one entry of the open directory; True when it is (or
        would be) gone, else the reason is kept."""
        if self.check_mode:
            return True
        try:
            delete(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.kept.append(f"{printable(path)}: not removed ({exc.strerror})")
            return False
        return True

    def remove(self, dir_fd: int, name: str, st: os.stat_result, path: str) -> bool:
        """Remove one entry (a directory with everything below it). True when it is (or would
        be) gone. Iterative and post-order, with one directory open at a time: the way back up
        is ``..`` of the open directory, checked against the identity recorded on the way down,
        so any depth works without recursion or one descriptor per level."""
        if not stat.S_ISDIR(st.st_mode):
            return self._delete(os.unlink, dir_fd, name, path)
        reason = self._foreign(st, path)
        if reason:
            self.skipped.append(f"{printable(path)}: {reason}")
            return False
        current = self._open_dir(dir_fd, name, st, path)
        if current is None:
            return False
        listing = self._listing(current, path)
        top = _Frame((st.st_dev, st.st_ino), path, name, listing or [])
        top.complete = listing is not None
        stack = [top]
        try:
            while True:
                frame = stack[-1]
                if frame.children:
                    child = frame.children.pop()
                    child_path = f"{frame.path}/{child}"
                    try:
                        child_st = os.stat(child, dir_fd=current, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISDIR(child_st.st_mode):
                        if not self._delete(os.unlink, current, child, child_path):
                            frame.complete = False
                        continue
                    reason = self._foreign(child_st, child_path)
                    if reason:
                        self.skipped.append(f"{printable(child_path)}: {reason}")
                        frame.complete = False
                        continue
                    child_fd = self._open_dir(current, child, child_st, child_path)
                    if child_fd is None:
                        frame.complete = False
                        continue
                    os.close(current)
                    current = child_fd
                    listing = self._listing(current, child_path)
                    entered = _Frame(
                        (child_st.st_dev, child_st.st_ino), child_path, child, listing or []
                    )
                    entered.complete = listing is not None
                    stack.append(entered)
                    continue
                # every child of this directory is done: go back up, then remove it
                stack.pop()
                if not stack:
                    break
                parent = stack[-1]
                up = os.open("..", _DIR_FLAGS, dir_fd=current)
                opened = os.fstat(up)
                if (opened.st_dev, opened.st_ino) != parent.identity:
                    os.close(up)
                    raise UnsafePathError(
                        f"refusing to go on: {printable(frame.path)} was moved while being "
                        "cleared (its parent is no longer the directory it was entered from)"
                    )
                os.close(current)
                current = up
                if not (frame.complete and self._delete(os.rmdir, current, frame.name, frame.path)):
                    parent.complete = False
        finally:
            os.close(current)
        return top.complete and self._delete(os.rmdir, dir_fd, name, path)


def clear_tree(
    root: str,
    depth: int,
    check_mode: bool,
    skipped: Optional[list[str]] = None,
    kept: Optional[list[str]] = None,
) -> list[str]:
    """Remove (or in check mode: list) every entry ``depth`` levels below ``root``.

    Returns the removed entries (paths at ``depth``, each removed with everything below it),
    as reportable text (see ``printable``). Entries that were not entered (other filesystem,
    mount point, changed underfoot) are appended to ``skipped``, entries that could not be
    removed (permission denied, immutable, ...) to ``kept``, both as ``"path: reason"``. An
    entry whose removal failed somewhere below is neither in the result nor removed itself.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise UnsafePathError(f"depth must be a whole number of at least 1, got {depth!r}")
    root = validate_root(root)
    fd = _open_root(root)
    try:
        _guard_identity(fd, root)
        walker = _Walker(os.fstat(fd).st_dev, read_mount_points(), check_mode)
        walker.descend(fd, root, depth)
    finally:
        os.close(fd)
    if skipped is not None:
        skipped.extend(walker.skipped)
    if kept is not None:
        kept.extend(walker.kept)
    return walker.removed
