# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing a file so that readers see the old content or the new one, never half of it."""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: str, what: str = "file") -> int:
    """Open ``path`` for reading only if it is a regular file; return the descriptor.

    The open is non-blocking (a FIFO would otherwise wait for a writer for ever) and the type is
    checked with ``fstat`` on the opened descriptor, so a FIFO, device, socket or directory is
    refused with a SuiteError naming ``what`` and the path. ``FileNotFoundError`` passes through.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO" if stat.S_ISFIFO(mode) else
                "a directory" if stat.S_ISDIR(mode) else
                "a socket" if stat.S_ISSOCK(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "not a regular file"
            )  # fmt: skip
            raise SuiteError(
                f"{what}: cannot read {path}: it is {kind}, not a regular file; give the path "
                "of a regular file"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str, limit: int, what: str = "file") -> bytes:
    """The content of the regular file ``path`` (see ``open_regular``), at most ``limit`` bytes;
    a longer file is refused with a SuiteError instead of being read whole."""
    fd = open_regular(path, what)
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            block = os.read(fd, min(1 << 20, limit + 1 - size))
            if not block:
                break
            chunks.append(block)
            size += len(block)
    finally:
        os.close(fd)
    if size > limit:
        raise SuiteError(f"{what}: cannot read {path}: larger than {limit} bytes; refused")
    return b"".join(chunks)


def atomic_write(
    path: str, data: bytes, mode: Optional[int] = None, default_mode: int = 0o644
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory: fsync, then
    ``os.replace``, then fsync of the directory. The temporary name is ``.<name>.XXXX.tmp`` so
    that collectors watching a directory for ``*.prom`` or ``*.ini`` never read it.

    ``mode`` sets the file's mode. Without it an existing file keeps its mode (and, as root, its
    owner) and a new file gets ``default_mode``. The directory must exist.
    """
    directory, name = os.path.split(os.path.abspath(path))
    current = None
    if mode is None:
        try:
            current = os.stat(path)
        except FileNotFoundError:
            mode = default_mode
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if current is not None:
                os.fchmod(handle.fileno(), current.st_mode & 0o7777)
                if os.geteuid() == 0:
                    os.fchown(handle.fileno(), current.st_uid, current.st_gid)
            else:
                os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
