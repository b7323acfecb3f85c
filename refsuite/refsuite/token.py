"""The shared secret of a refsuite installation (stpd PUT/GET, ui/ctrl/sshd sessions).

The token lives in ``[suite] token_file`` (default: ``token`` next to the configuration file),
mode 0600. ``refsuite start`` creates it with a random value when it is missing; to let members
of a cluster talk to each other, give every member the same file.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat

MIN_LENGTH = 16


class TokenError(RuntimeError):
    """The token file is missing, unsafe or unusable; worded for the user."""


def ensure_token(path: str) -> bool:
    """Create ``path`` (mode 0600, a random 43-character token) when it does not exist.

    Created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing file or link is never touched.
    True when a new token was written."""
    if os.path.lexists(path):
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(secrets.token_urlsafe(32) + "\n")
    return True


def read_token(path: str) -> str:
    """The token in ``path``: a regular file (not a link), not readable by group or others."""
    hint = "'refsuite start' creates it, or write a secret of 16+ characters there with mode 0600"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TokenError(f"token_file {path}: {exc.strerror}; {hint}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TokenError(f"token_file {path} is not a regular file; {hint}")
        if st.st_mode & 0o077:
            raise TokenError(
                f"token_file {path} is readable by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); run chmod 600 {path}"
            )
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    token = data.decode("ascii", "replace").strip()
    if len(token) < MIN_LENGTH or any(ord(c) < 33 or ord(c) > 126 for c in token):
        raise TokenError(
            f"token_file {path}: the token must be {MIN_LENGTH}+ printable characters "
            f"without spaces; {hint}"
        )
    return token


def same(given: str | bytes | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the real one."""
    if given is None:
        return False
    if isinstance(given, str):
        given = given.encode("utf-8", "replace")
    return hmac.compare_digest(given, token.encode("ascii"))
