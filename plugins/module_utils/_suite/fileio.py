# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing a file so that readers see the old content or the new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from typing import Optional


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
