# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start/stop/restart/reload a suite through a backend, judged by health (not by exit codes).

- ``SystemdBackend``: ``systemctl start|stop|restart|reload <unit>``; logs from journalctl.
- ``DirectBackend``: the suite's control command from the profile (``--config`` replaced by
  ``config_file``), run in its own session with output to a file, so daemons it leaves behind
  never hold the module's pipes; logs from the suite's ``log_file``.
- ``ServiceManager``: decides what to do from a health result, acts (unless check mode), then
  polls health until the daemons are online (start) or gone (stop), or ``timeout`` expires.
"""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import tempfile
import time
from typing import Any, Callable, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

RUNNING_STATES = ("online", "degraded")
LOG_LINES = 20

HealthFn = Callable[[], dict]


def systemd_is_pid1(marker: str = "/run/systemd/system") -> bool:
    """systemd's own test (sd_booted): the directory exists only when systemd is PID 1."""
    return os.path.isdir(marker)


def tail(path: str, lines: int = LOG_LINES) -> list[str]:
    """The last ``lines`` lines of a text file ([] when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def run_detached(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` in a new session, stdin from /dev/null, stdout+stderr to a temp file."""
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                start_new_session=True,
                check=False,
            )
            rc = proc.returncode
        except FileNotFoundError:
            return 127, f"{argv[0]}: command not found"
        except PermissionError:
            return 126, f"{argv[0]}: permission denied"
        except subprocess.TimeoutExpired:
            rc = -1
        output.seek(0)
        text = output.read().decode("utf-8", "replace").strip()
        if rc == -1:
            text = f"{text}\n(timed out after {timeout:.0f} s)".strip()
        return rc, text


class Backend:
    name = "backend"

    def start(self, force: bool) -> tuple[int, str]:
        raise NotImplementedError

    def stop(self, force: bool) -> tuple[int, str]:
        raise NotImplementedError

    def reload(self, masters: list[int]) -> tuple[int, str]:
        raise NotImplementedError

    def logs(self) -> tuple[str, list[str]]:
        """(where the lines come from, the last lines)."""
        raise NotImplementedError


class DirectBackend(Backend):
    """The suite's own control command."""

    name = "direct"

    def __init__(
        self,
        profile: Any,
        config_file: Optional[str] = None,
        timeout: float = 60,
        runner: Callable[[list[str], float], tuple[int, str]] = run_detached,
    ) -> None:
        self.profile = profile
        self.config_file = config_file or getattr(profile, "config_file", None)
        self.timeout = timeout
        self.runner = runner

    def command(self, action: str, force: bool = False) -> list[str]:
        return list(self.profile.control_command(action, force=force, config_file=self.config_file))

    def start(self, force: bool) -> tuple[int, str]:
        return self.runner(self.command("start", force), self.timeout)

    def stop(self, force: bool) -> tuple[int, str]:
        return self.runner(self.command("stop", force), self.timeout)

    def reload(self, masters: list[int]) -> tuple[int, str]:
        for pid in masters:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                continue
        return 0, f"SIGHUP sent to {', '.join(str(p) for p in masters)}"

    def log_file(self) -> Optional[str]:
        if not self.config_file:
            return None
        parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
        try:
            parser.read(self.config_file, encoding="utf-8")
        except (configparser.Error, OSError):
            return None
        if parser.has_option("suite", "log_file"):
            return parser.get("suite", "log_file").strip() or None
        return None

    def logs(self) -> tuple[str, list[str]]:
        path = self.log_file()
        if not path:
            return "(no log_file in the configuration)", []
        return path, tail(path)


class SystemdBackend(Backend):
    """systemctl/journalctl for the profile's ``systemd_unit``."""

    name = "systemd"

    def __init__(
        self,
        unit: str,
        run: Callable[[list[str]], tuple[int, str, str]],
    ) -> None:
        self.unit = unit
        self.run = run

    def _systemctl(self, action: str) -> tuple[int, str]:
        rc, out, err = self.run(["systemctl", action, self.unit])
        return rc, (out + err).strip()

    def start(self, force: bool) -> tuple[int, str]:
        # systemd refuses a unit that hit its start limit: clear it first, as the resume timer does
        self.run(["systemctl", "reset-failed", self.unit])
        return self._systemctl("start")

    def stop(self, force: bool) -> tuple[int, str]:
        return self._systemctl("stop")

    def reload(self, masters: list[int]) -> tuple[int, str]:
        return self._systemctl("reload-or-restart")

    def logs(self) -> tuple[str, list[str]]:
        _rc, out, err = self.run(
            ["journalctl", "-u", self.unit, "-n", str(LOG_LINES), "--no-pager", "-o", "short"]
        )
        return f"journalctl -u {self.unit}", (out or err).splitlines()[-LOG_LINES:]


def dependency_order(profile: Any, names: list[str]) -> list[str]:
    """``names`` ordered so that every daemon comes after its ancestor (profile order otherwise)."""
    by_name = {d.name: d for d in profile.daemons}
    position = {d.name: i for i, d in enumerate(profile.daemons)}

    def depth(name: str) -> int:
        level, seen = 0, set()
        while by_name[name].ancestor and name not in seen:
            seen.add(name)
            name = by_name[name].ancestor
            level += 1
        return level

    return sorted(names, key=lambda n: (depth(n), position[n]))


class ServiceManager:
    """The service module's logic."""

    def __init__(
        self,
        profile: Any,
        roles: list[str],
        state: str,
        backend: Backend,
        health: HealthFn,
        daemons: Optional[list[str]] = None,
        force: bool = False,
        timeout: float = 60,
        check_mode: bool = False,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.profile = profile
        self.roles = roles
        self.state = state
        self.backend = backend
        self.health = health
        self.force = force
        self.timeout = timeout
        self.check_mode = check_mode
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        expected = [d.name for d in profile.daemons_for_roles(roles)]
        for name in daemons or []:
            if name not in expected:
                raise SuiteError(
                    f"daemons: '{name}' is not a daemon of roles {', '.join(roles)} in the "
                    f"{profile.name} profile; known: {', '.join(expected)}"
                )
        self.selected = dependency_order(profile, list(daemons or expected))

    # -- reading health ------------------------------------------------------------------
    def _states(self, result: dict) -> dict[str, str]:
        daemons = result.get("daemons") or {}
        return {name: (daemons.get(name) or {}).get("state", "offline") for name in self.selected}

    def _running(self, result: dict) -> list[str]:
        daemons = result.get("daemons") or {}
        return [n for n in daemons if daemons[n].get("state") in RUNNING_STATES]

    def _up(self, result: dict) -> bool:
        return all(s in ("online", "unused") for s in self._states(result).values())

    def _problems(self, result: dict) -> str:
        daemons = result.get("daemons") or {}
        problems = []
        for name in self.selected:
            info = daemons.get(name) or {}
            state = info.get("state", "offline")
            if state in ("online", "unused"):
                continue
            detail = "; ".join(info.get("problems") or [])
            problems.append(f"{name} {state}" + (f" ({detail})" if detail else ""))
        return ", ".join(problems) or str(result.get("msg", ""))

    @staticmethod
    def _clients(result: dict) -> list[str]:
        found = []
        for name, info in (result.get("daemons") or {}).items():
            for port in info.get("ports") or []:
                count = int(port.get("clients") or 0)
                if count:
                    peers = ", ".join(port.get("peers") or [])
                    found.append(
                        f"{name} port {port.get('port')}: {count} client(s)"
                        + (f" ({peers})" if peers else "")
                    )
        return found

    def _masters(self, result: dict) -> list[int]:
        daemons = result.get("daemons") or {}
        pids: list[int] = []
        for daemon in self.profile.daemons:
            if daemon.ancestor is None and daemon.name in daemons:
                pids.extend(daemons[daemon.name].get("pids") or [])
        return pids

    def _wait(self, done: Callable[[dict], bool]) -> tuple[bool, dict]:
        deadline = self.clock() + self.timeout
        while True:
            result = self.health()
            if done(result):
                return True, result
            if self.clock() >= deadline:
                return False, result
            self.sleep(self.poll_interval)

    def _log_text(self) -> str:
        where, lines = self.backend.logs()
        if not lines:
            return f" No log lines ({where})."
        return f" Last log lines ({where}):\n" + "\n".join(lines)

    # -- actions -------------------------------------------------------------------------
    def _start(self) -> dict:
        rc, output = self.backend.start(self.force)
        ok, result = self._wait(self._up)
        if not ok:
            command = f" The start command exited {rc}: {output}." if rc != 0 or output else ""
            raise SuiteError(
                f"{self.profile.name} did not come up within {self.timeout:g} s: "
                f"{self._problems(result)}.{command}{self._log_text()}"
            )
        return result

    def _stop(self, result: dict) -> dict:
        clients = self._clients(result)
        if clients and not self.force:
            raise SuiteError(
                f"refusing to stop {self.profile.name}: clients are connected ("
                + "; ".join(clients)
                + "); stop them first or set force: true"
            )
        rc, output = self.backend.stop(self.force)
        ok, after = self._wait(lambda r: not self._running(r))
        if not ok:
            daemons = after.get("daemons") or {}
            still = [f"{name}{daemons[name].get('pids') or ''}" for name in self._running(after)]
            raise SuiteError(
                f"{self.profile.name} did not stop within {self.timeout:g} s: still running: "
                f"{', '.join(still)} (if these belong to another instance, set instance). "
                f"The stop command exited {rc}: {output}.{self._log_text()}"
            )
        return after

    def run(self) -> dict[str, Any]:
        before = self.health()
        running = self._running(before)
        up = self._up(before)
        changed = False
        result = before
        action = "none"
        if self.state == "started":
            if not running:
                changed, action = True, "start"
        elif self.state == "stopped":
            if running:
                changed, action = True, "stop"
        elif self.state == "restarted":
            changed, action = True, "restart" if running else "start"
        elif self.state == "reloaded":
            changed, action = True, "reload" if running else "start"
        else:
            raise SuiteError(f"state: unknown state '{self.state}'")

        if self.check_mode:
            if action == "stop" and self._clients(before) and not self.force:
                raise SuiteError(
                    f"refusing to stop {self.profile.name}: clients are connected ("
                    + "; ".join(self._clients(before))
                    + "); stop them first or set force: true"
                )
        elif action == "start":
            result = self._start()
        elif action == "stop":
            result = self._stop(before)
        elif action == "restart":
            self._stop(before)
            result = self._start()
        elif action == "reload":
            self.backend.reload(self._masters(before))
            ok, result = self._wait(self._up)
            if not ok:
                raise SuiteError(
                    f"{self.profile.name} is not online {self.timeout:g} s after reload: "
                    f"{self._problems(result)}.{self._log_text()}"
                )
        elif self.state == "started" and not up:
            # running but not (yet) healthy: the master may still be starting daemons
            ok, result = self._wait(self._up)
            if not ok:
                raise SuiteError(
                    f"{self.profile.name} is running but not online after {self.timeout:g} s: "
                    f"{self._problems(result)}.{self._log_text()}"
                )
        return {
            "changed": changed,
            "state": self.state,
            "operation": action,
            "backend": self.backend.name,
            "daemons": self.selected,
            "status": result.get("status"),
            "msg_health": result.get("msg"),
            "status_lines": result.get("status_lines", []),
            "diff": {
                "before": "".join(f"{n}: {s}\n" for n, s in self._states(before).items()),
                "after": "".join(
                    f"{n}: {self._after_state(s, action)}\n"
                    for n, s in self._states(before).items()
                )
                if self.check_mode
                else "".join(f"{n}: {s}\n" for n, s in self._states(result).items()),
            },
        }

    @staticmethod
    def _after_state(state: str, action: str) -> str:
        if action in ("start", "restart", "reload"):
            return "online" if state != "unused" else state
        if action == "stop":
            return "offline" if state != "unused" else state
        return state
