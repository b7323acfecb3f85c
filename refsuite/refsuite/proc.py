"""Process plumbing: process titles, spawning daemons under their own names, logging."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import subprocess
import sys
import time

from refsuite import PACKAGE_PARENT
from refsuite.config import Config

EMERG = 60
logging.addLevelName(EMERG, "EMERG")

_LOG_FORMAT = "%(asctime)s %(procname)s[%(process)d] %(levelname)s: %(message)s"


def python_executable() -> str:
    """The interpreter to run daemons with (children have no sys.executable, see child_env)."""
    return os.environ.get("REFSUITE_PYTHON") or sys.executable or "/usr/bin/python3"


def child_env() -> dict[str, str]:
    """Environment for a process whose argv[0] is not the interpreter's path.

    With argv[0] = 'refsuite-stpd' Python cannot locate its installation from argv[0] and
    might pick another Python's stdlib, so PYTHONHOME pins the running interpreter's prefix;
    PYTHONPATH makes `-m refsuite` importable.
    """
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + old if old else "")
    env["PYTHONHOME"] = f"{sys.base_prefix}{os.pathsep}{sys.base_exec_prefix}"
    env["REFSUITE_PYTHON"] = python_executable()
    env.pop("PYTHONSTARTUP", None)
    return env


def title_args(name: str, config_path: str, instance: int | None = None) -> list[str]:
    args = [f"refsuite-{name}"]
    if instance is not None:
        args.append(str(instance))
    return [*args, "--config", config_path]


def launch_argv(
    name: str, config_path: str, instance: int | None = None, force: bool = False
) -> list[str]:
    """argv for a daemon: argv[0] is the process name; the title is tidied after start."""
    argv = [f"refsuite-{name}", "-m", "refsuite", "_run", name]
    if instance is not None:
        argv.append(str(instance))
    argv += ["--config", config_path]
    if force:
        argv.append("--force")
    return argv


def spawn(
    cfg: Config, name: str, instance: int | None = None, force: bool = False
) -> subprocess.Popen[bytes]:
    os.makedirs(os.path.dirname(cfg.log_file), exist_ok=True)
    with open(cfg.log_file, "ab") as log:
        return subprocess.Popen(
            launch_argv(name, cfg.path, instance, force),
            executable=python_executable(),
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            close_fds=True,
        )


def set_proctitle(title: str) -> bool:
    """Rewrite /proc/self/cmdline (the argv area) to `title`, like setproctitle(3).

    The kernel shows the area up to the first NUL when the area's last byte is not NUL, so
    ps and psutil see exactly `title` (psutil splits it on spaces).
    """
    try:
        with open("/proc/self/stat", "rb") as handle:
            data = handle.read()
        fields = data[data.rindex(b")") + 2 :].split()
        arg_start, arg_end = int(fields[45]), int(fields[46])
        size = arg_end - arg_start
        raw = title.encode()
        if size < 2 or len(raw) + 2 > size:
            return False
        buf = raw + b"\0" * (size - len(raw) - 1) + b"."
        ctypes.memmove(arg_start, buf, size)
        return True
    except (OSError, ValueError, IndexError):
        return False


def set_comm(name: str) -> None:
    """prctl(PR_SET_NAME): the 15-character comm shown by ps -o comm / top."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def become(name: str, config_path: str, instance: int | None = None) -> None:
    """Give this process its refsuite name (cmdline and comm)."""
    set_proctitle(" ".join(title_args(name, config_path, instance)))
    set_comm(f"refsuite-{name}")


def setup_logging(cfg: Config, procname: str) -> logging.Logger:
    os.makedirs(os.path.dirname(cfg.log_file), exist_ok=True)
    logger = logging.getLogger("refsuite")
    logger.handlers.clear()
    handler = logging.FileHandler(cfg.log_file, mode="a", encoding="utf-8")
    formatter = logging.Formatter(_LOG_FORMAT)
    formatter.converter = time.localtime
    handler.setFormatter(formatter)
    old_factory = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = old_factory(*args, **kwargs)
        record.procname = procname
        return record

    logging.setLogRecordFactory(factory)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def tail(path: str, lines: int = 15) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()[-lines:]
    except OSError:
        return []


# refsuite is standalone (stdlib only) and must not import collection code: this twin of
# module_utils/_suite's pid checks is by design.
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        return data[data.rindex(b")") + 2 :].split()[0] != b"Z"
    except OSError:
        return False
