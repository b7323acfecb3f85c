# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start/stop/restart/reload a suite or single daemons through a backend, judged by health.

- ``SystemdBackend``: ``systemctl start|stop|restart|reload <unit>`` for the suite's unit, or a
  daemon's own unit (``daemons[].systemd_unit``); logs from journalctl.
- ``DirectBackend``: the suite's control command from the profile (``--config`` replaced by
  ``config_file``), or its per-daemon form (``suite.control.start_daemon``/``stop_daemon`` with
  ``{daemon}``), run in its own session with output to a file, so daemons it leaves behind
  never hold the module's pipes; logs from the daemon's ``log_file``, else the suite's.
- ``ServiceManager``: decides per daemon what to do from a health result, drains clients before
  a stop, acts (unless check mode) in dependency order, then polls health until the daemons are
  online (start) or gone (stop), or ``timeout`` expires.
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
from ansible_collections.daemonops.suite.plugins.module_utils._suite.states import (
    FAILURE,
    HEALTHY_STATES,
    OFFLINE,
    ONLINE,
    RESTARTED,
    RUNNING_STATES,
    SERVICE_STATES,
    STARTED,
    STOPPED,
    SUCCESS,
    UNUSED,
)

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
    """How a suite (and, where the profile says how, one daemon) is started and stopped.

    The per-daemon methods return None when the profile offers no way to act on that daemon
    alone; the manager then falls back to the whole suite (start) or refuses (stop).
    """

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

    def start_daemon(self, daemon: Any, force: bool) -> Optional[tuple[int, str]]:
        return None

    def stop_daemon(self, daemon: Any, force: bool) -> Optional[tuple[int, str]]:
        return None

    def reload_daemon(self, daemon: Any) -> Optional[tuple[int, str]]:
        return None

    def can_act_on(self, daemon: Any) -> bool:
        """True when this daemon can be started and stopped alone."""
        return False

    def has_suite_control(self) -> bool:
        """True when the whole suite can be started and stopped at once."""
        return True

    def stops_with_ancestor(self, daemon: Any) -> bool:
        """True when stopping its ancestor stops this daemon too (same process tree)."""
        return True

    def daemon_logs(self, daemon: Any) -> Optional[tuple[str, list[str]]]:
        """The daemon's own log (``daemons[].log_file``), or None to use the suite's."""
        if getattr(daemon, "log_file", None):
            return daemon.log_file, tail(daemon.log_file)
        return None


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

    def daemon_command(self, action: str, daemon: Any, force: bool = False) -> Optional[list[str]]:
        return self.profile.daemon_command(
            action, daemon.name, force=force, config_file=self.config_file
        )

    def start(self, force: bool) -> tuple[int, str]:
        return self.runner(self.command("start", force), self.timeout)

    def stop(self, force: bool) -> tuple[int, str]:
        return self.runner(self.command("stop", force), self.timeout)

    def start_daemon(self, daemon: Any, force: bool) -> Optional[tuple[int, str]]:
        argv = self.daemon_command("start_daemon", daemon, force)
        return None if argv is None else self.runner(argv, self.timeout)

    def stop_daemon(self, daemon: Any, force: bool) -> Optional[tuple[int, str]]:
        argv = self.daemon_command("stop_daemon", daemon, force)
        return None if argv is None else self.runner(argv, self.timeout)

    def can_act_on(self, daemon: Any) -> bool:
        control = getattr(self.profile, "control", None)
        return bool(control and control.start_daemon and control.stop_daemon)

    def has_suite_control(self) -> bool:
        return getattr(self.profile, "control", None) is not None

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
            return "(no log_file in the profile or the configuration)", []
        return path, tail(path)


class SystemdBackend(Backend):
    """systemctl/journalctl for the profile's ``systemd_unit`` and the daemons' own units.

    A daemon without its own unit is started/stopped alone through the profile's per-daemon
    control command when there is one (``direct`` gives the command).
    """

    name = "systemd"

    def __init__(
        self,
        unit: Optional[str],
        run: Callable[[list[str]], tuple[int, str, str]],
        direct: Optional[DirectBackend] = None,
    ) -> None:
        self.unit = unit
        self.run = run
        self.direct = direct

    def _systemctl(self, action: str, unit: Optional[str] = None) -> tuple[int, str]:
        rc, out, err = self.run(["systemctl", action, unit or self.unit or ""])
        return rc, (out + err).strip()

    def start(self, force: bool) -> tuple[int, str]:
        # systemd refuses a unit that hit its start limit: clear it first, as the resume timer does
        self.run(["systemctl", "reset-failed", self.unit or ""])
        return self._systemctl("start")

    def stop(self, force: bool) -> tuple[int, str]:
        return self._systemctl("stop")

    def reload(self, masters: list[int]) -> tuple[int, str]:
        return self._systemctl("reload-or-restart")

    def start_daemon(self, daemon: Any, force: bool) -> Optional[tuple[int, str]]:
        if daemon.systemd_unit:
            self.run(["systemctl", "reset-failed", daemon.systemd_unit])
            return self._systemctl("start", daemon.systemd_unit)
        return self.direct.start_daemon(daemon, force) if self.direct else None

    def stop_daemon(self, daemon: Any, force: bool) -> Optional[tuple[int, str]]:
        if daemon.systemd_unit:
            return self._systemctl("stop", daemon.systemd_unit)
        return self.direct.stop_daemon(daemon, force) if self.direct else None

    def reload_daemon(self, daemon: Any) -> Optional[tuple[int, str]]:
        if daemon.systemd_unit:
            return self._systemctl("reload-or-restart", daemon.systemd_unit)
        return None

    def can_act_on(self, daemon: Any) -> bool:
        return bool(daemon.systemd_unit) or bool(self.direct and self.direct.can_act_on(daemon))

    def has_suite_control(self) -> bool:
        return bool(self.unit)

    def stops_with_ancestor(self, daemon: Any) -> bool:
        # a daemon with its own unit lives in its own cgroup: stop it explicitly, first
        return not daemon.systemd_unit

    def journal(self, unit: str) -> tuple[str, list[str]]:
        _rc, out, err = self.run(
            ["journalctl", "-u", unit, "-n", str(LOG_LINES), "--no-pager", "-o", "short"]
        )
        return f"journalctl -u {unit}", (out or err).splitlines()[-LOG_LINES:]

    def logs(self) -> tuple[str, list[str]]:
        if not self.unit:
            return "(the profile has no suite.systemd_unit)", []
        return self.journal(self.unit)

    def daemon_logs(self, daemon: Any) -> Optional[tuple[str, list[str]]]:
        own = super().daemon_logs(daemon)
        if own is None and daemon.systemd_unit:
            return self.journal(daemon.systemd_unit)
        return own


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


def select_backend(
    profile: Any,
    name: str,
    run_command: Callable[[list[str]], tuple[int, str, str]],
    config_file: Optional[str] = None,
    timeout: float = 60,
) -> Backend:
    """The backend the service module's ``backend`` option names: ``auto`` is ``systemd`` when
    systemd is PID 1, else ``direct``. ``run_command`` runs systemctl/journalctl (the module's
    ``run_command``); a systemd backend keeps the direct one for single daemons without a unit
    when the profile has a control command."""
    if name == "auto":
        name = "systemd" if systemd_is_pid1() else "direct"
    direct = DirectBackend(profile, config_file=config_file, timeout=timeout)
    if name != "systemd":
        return direct
    if not profile.systemd_unit and not all(d.systemd_unit for d in profile.daemons):
        raise SuiteError(
            f"backend: the {profile.name} profile has no suite.systemd_unit and not "
            "every daemon has a daemons[].systemd_unit; use backend: direct"
        )
    return SystemdBackend(
        profile.systemd_unit,
        run_command,
        direct=direct if profile.control is not None else None,
    )


class ServiceManager:
    """The service module's logic: per-daemon plan from health, drain, act, wait for health."""

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
        drain_timeout: float = 0,
        check_mode: bool = False,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if state not in SERVICE_STATES:
            raise SuiteError(f"state: unknown state '{state}'")
        self.profile = profile
        self.roles = roles
        self.state = state
        self.backend = backend
        self.health = health
        self.force = force
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self.check_mode = check_mode
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.expected = [d.name for d in profile.daemons_for_roles(roles)]
        for name in daemons or []:
            if name not in self.expected:
                raise SuiteError(
                    f"daemons: '{name}' is not a daemon of roles {', '.join(roles)} in the "
                    f"{profile.name} profile; known: {', '.join(self.expected)}"
                )
        self.by_name = {d.name: d for d in profile.daemons}
        self.whole_suite = not daemons or set(self.expected) <= set(daemons)
        self.selected = dependency_order(profile, list(dict.fromkeys(daemons or self.expected)))
        self.drain: list[dict[str, Any]] = []
        self.commands: list[str] = []
        self.stopped: list[str] = []

    # -- reading health ------------------------------------------------------------------
    @staticmethod
    def _state(result: dict, name: str) -> str:
        return ((result.get("daemons") or {}).get(name) or {}).get("state", OFFLINE)

    def _states(self, result: dict) -> dict[str, str]:
        return {name: self._state(result, name) for name in self.selected}

    def _running(self, result: dict, names: Optional[list[str]] = None) -> list[str]:
        daemons = result.get("daemons") or {}
        pool = names if names is not None else list(daemons)
        return [n for n in pool if self._state(result, n) in RUNNING_STATES]

    def _online(self, result: dict, names: list[str]) -> bool:
        return all(self._state(result, n) in HEALTHY_STATES for n in names)

    def _up(self, result: dict) -> bool:
        return self._online(result, self.selected)

    def _problems(self, result: dict, names: Optional[list[str]] = None) -> str:
        daemons = result.get("daemons") or {}
        problems = []
        for name in names or self.selected:
            info = daemons.get(name) or {}
            state = info.get("state", OFFLINE)
            if state in HEALTHY_STATES:
                continue
            detail = "; ".join(info.get("problems") or [])
            problems.append(f"{name} {state}" + (f" ({detail})" if detail else ""))
        return ", ".join(problems) or str(result.get("msg", ""))

    @staticmethod
    def _clients(result: dict, names: Optional[set[str]] = None) -> tuple[int, list[str]]:
        """(ESTABLISHED client connections, one line per port) as health counts them.

        Health leaves the collection's own probe connections out of ``clients``.
        """
        total, found = 0, []
        for name, info in (result.get("daemons") or {}).items():
            if names is not None and name not in names:
                continue
            for port in info.get("ports") or []:
                count = int(port.get("clients") or 0)
                if count:
                    total += count
                    peers = ", ".join(port.get("peers") or [])
                    found.append(
                        f"{name} port {port.get('port')}: {count} client(s)"
                        + (f" ({peers})" if peers else "")
                    )
        return total, found

    def _masters(self, result: dict) -> list[int]:
        daemons = result.get("daemons") or {}
        pids: list[int] = []
        for daemon in self.profile.daemons:
            if daemon.ancestor is None and daemon.name in daemons:
                pids.extend(daemons[daemon.name].get("pids") or [])
        return pids

    def _ancestors(self, name: str) -> list[str]:
        chain: list[str] = []
        ancestor = self.by_name[name].ancestor
        while ancestor and ancestor not in chain:
            chain.append(ancestor)
            ancestor = self.by_name[ancestor].ancestor
        return chain

    def _with_descendants(self, names: list[str]) -> set[str]:
        """``names`` and every daemon of the roles that derives from one of them."""
        chosen = set(names)
        return chosen | {n for n in self.expected if chosen & set(self._ancestors(n))}

    def _wait(self, done: Callable[[dict], bool]) -> tuple[bool, dict]:
        deadline = self.clock() + self.timeout
        while True:
            result = self.health()
            if done(result):
                return True, result
            if self.clock() >= deadline:
                return False, result
            self.sleep(self.poll_interval)

    def _log_text(self, names: Optional[list[str]] = None) -> str:
        sources: list[tuple[str, list[str]]] = []
        for name in names or []:
            own = self.backend.daemon_logs(self.by_name[name])
            if own is not None and own[0] not in [s[0] for s in sources]:
                sources.append(own)
        if not sources:
            sources.append(self.backend.logs())
        text = ""
        for where, lines in sources:
            if not lines:
                text += f" No log lines ({where})."
            else:
                text += f" Last log lines ({where}):\n" + "\n".join(lines)
        return text

    def _note(self, what: str, rc: int, output: str) -> None:
        line = f"{what}: exit {rc}"
        self.commands.append(f"{line}: {output}" if output else line)

    # -- planning ------------------------------------------------------------------------
    def _plan(self, before: dict) -> tuple[str, list[str], list[str]]:
        """(operation, daemons to stop, daemons to start), both in dependency order."""
        states = self._states(before)
        running = [n for n in self.selected if states[n] in RUNNING_STATES]
        offline = [n for n in self.selected if states[n] == OFFLINE]
        # an offline ancestor must come up before its descendants
        needed = {
            a for n in offline for a in self._ancestors(n) if self._state(before, a) == OFFLINE
        }
        to_start = dependency_order(self.profile, list(set(offline) | needed))
        if self.state == STARTED:
            return ("start" if to_start else "none"), [], to_start
        if self.state == STOPPED:
            return ("stop" if running else "none"), running, []
        if self.state == RESTARTED:
            if not running:
                return ("start" if to_start else "none"), [], to_start
            everything = [n for n in self.selected if states[n] != UNUSED]
            return (
                "restart",
                running,
                dependency_order(self.profile, list(set(everything) | needed)),
            )
        return ("reload" if running else "start" if to_start else "none"), [], to_start

    def _suite_wide(self) -> bool:
        """Act through the suite's own start/stop (all daemons selected and the suite has one)."""
        return self.whole_suite and self.backend.has_suite_control()

    def _check_stoppable(self, names: list[str]) -> None:
        if self._suite_wide():
            return
        alone = [n for n in names if not self.backend.can_act_on(self.by_name[n])]
        if alone:
            raise SuiteError(
                f"daemons: the {self.profile.name} profile gives no way to stop "
                f"{', '.join(alone)} alone with the {self.backend.name} backend (add "
                "daemons[].systemd_unit or suite.control.stop_daemon to the profile), and "
                + (
                    "it has no suite-wide stop either"
                    if self.whole_suite
                    else "only the whole suite can be stopped: leave out daemons"
                )
            )

    # -- actions -------------------------------------------------------------------------
    def _drain_clients(self, before: dict, names: list[str]) -> dict:
        """Wait up to drain_timeout for clients of what goes down to leave; refuse or force."""
        affected = self._with_descendants(names)
        count, lines = self._clients(before, affected)
        if not count:
            return before
        begin = self.clock()
        self.drain.append({"t": 0.0, "clients": count})
        result = before
        while count and not self.check_mode and self.clock() - begin < self.drain_timeout:
            self.sleep(self.poll_interval)
            result = self.health()
            now, lines_now = self._clients(result, affected)
            if now != count:
                self.drain.append({"t": round(self.clock() - begin, 1), "clients": now})
                count, lines = now, lines_now
        if not count:
            return result
        waited = round(self.clock() - begin, 1)
        if self.drain[-1]["t"] != waited:
            self.drain.append({"t": waited, "clients": count})
        if self.force:
            return result
        if self.check_mode and self.drain_timeout > 0:
            return result  # a real run would wait up to drain_timeout first
        waited_text = f" after waiting {waited:g} s (drain_timeout)" if self.drain_timeout else ""
        raise SuiteError(
            f"refusing to stop {', '.join(names)} of {self.profile.name}: clients are "
            f"connected{waited_text} ({'; '.join(lines)}); stop them first, set a longer "
            "drain_timeout, or set force: true",
            details={"drain": self.drain},
        )

    def _start(self, names: list[str], before: dict) -> dict:
        result = before
        suite_started = False
        for name in names:
            if self._state(result, name) in RUNNING_STATES:
                continue  # came up with its ancestor
            daemon = self.by_name[name]
            if self.backend.can_act_on(daemon) and not (
                self._suite_wide() and not self._running(result, self.expected)
            ):
                outcome = self.backend.start_daemon(daemon, self.force)
                what = f"start {name}"
            elif not suite_started:
                outcome, what, suite_started = self.backend.start(self.force), "start suite", True
            else:
                continue
            rc, output = outcome if outcome is not None else (127, "no start command")
            self._note(what, rc, output)
            ok, result = self._wait(lambda r, n=name: self._online(r, [n]))
            if not ok:
                self._fail_start(name, result, rc, output)
        ok, result = self._wait(self._up)
        if not ok:
            failed = [n for n in self.selected if self._state(result, n) not in HEALTHY_STATES]
            self._fail_start(failed[0] if failed else None, result, 0, "")
        return result

    def _fail_start(self, name: Optional[str], result: dict, rc: int, output: str) -> None:
        failed = [n for n in self.selected if self._state(result, n) not in HEALTHY_STATES]
        if name and name not in failed:
            failed.insert(0, name)
        command = f" The start command exited {rc}: {output}." if rc != 0 or output else ""
        raise SuiteError(
            f"{self.profile.name} did not come up within {self.timeout:g} s: "
            f"{self._problems(result, failed or None)}.{command}{self._log_text(failed)}",
            details={"commands": self.commands, "drain": self.drain},
        )

    def _stop(self, names: list[str], before: dict) -> dict:
        result = self._drain_clients(before, names)
        if self._suite_wide():
            rc, output = self.backend.stop(self.force)
            self._note("stop suite", rc, output)
        else:
            rc, output = 0, ""
            extra = [
                n
                for n in self._with_descendants(names) - set(names)
                if not self.backend.stops_with_ancestor(self.by_name[n])
            ]
            for name in reversed(dependency_order(self.profile, [*names, *extra])):
                result = self.health()
                if self._state(result, name) not in RUNNING_STATES:
                    continue  # went down with its ancestor
                outcome = self.backend.stop_daemon(self.by_name[name], self.force)
                rc, output = outcome if outcome is not None else (127, "no stop command")
                self._note(f"stop {name}", rc, output)
                ok, result = self._wait(lambda r, n=name: not self._running(r, [n]))
                if not ok:
                    break
        gone = self._with_descendants(names) if not self._suite_wide() else set(self.expected)
        ok, after = self._wait(lambda r: not self._running(r, sorted(gone)))
        if not ok:
            daemons = after.get("daemons") or {}
            still = [
                f"{n}{daemons[n].get('pids') or ''}" for n in self._running(after, sorted(gone))
            ]
            raise SuiteError(
                f"{self.profile.name} did not stop within {self.timeout:g} s: still running: "
                f"{', '.join(still)} (if these belong to another instance, set instance). "
                f"The stop command exited {rc}: {output}.{self._log_text(names)}",
                details={"commands": self.commands, "drain": self.drain},
            )
        down = set(self.expected) - set(self._running(after, self.expected))
        self.stopped = [n for n in self._running(before, self.expected) if n in down]
        return after

    def _reload(self, before: dict) -> dict:
        masters = False
        for name in self._running(before, self.selected):
            outcome = self.backend.reload_daemon(self.by_name[name])
            if outcome is not None:
                self._note(f"reload {name}", *outcome)
            elif not masters:
                masters = True
                self._note("reload suite", *self.backend.reload(self._masters(before)))
        ok, result = self._wait(self._up)
        if not ok:
            raise SuiteError(
                f"{self.profile.name} is not online {self.timeout:g} s after reload: "
                f"{self._problems(result)}.{self._log_text(self.selected)}"
            )
        return result

    def run(self) -> dict[str, Any]:
        before = self.health()
        operation, to_stop, to_start = self._plan(before)
        if to_stop:
            self._check_stoppable(to_stop)
        result = before
        if self.check_mode:
            if to_stop:
                self._drain_clients(before, to_stop)
        else:
            if to_stop:
                result = self._stop(to_stop, before)
            if to_start:
                result = self._start(to_start, result)
            if operation == "reload":
                result = self._reload(result)
            if operation == "none" and self.state != STOPPED and not self._up(result):
                # running but not (yet) healthy: the master may still be starting daemons
                ok, result = self._wait(self._up)
                if not ok:
                    raise SuiteError(
                        f"{self.profile.name} is running but not online after "
                        f"{self.timeout:g} s: {self._problems(result)}."
                        f"{self._log_text(self.selected)}"
                    )
        return self._result(before, result, operation, to_stop, to_start)

    def _result(
        self, before: dict, after: dict, operation: str, to_stop: list[str], to_start: list[str]
    ) -> dict[str, Any]:
        if self.check_mode:
            stopped = sorted(
                self._running(before, sorted(self._with_descendants(to_stop))),
                key=self.expected.index,
            )
            started = list(to_start)
            after_states = {
                n: (ONLINE if n in started else OFFLINE if n in stopped else s)
                for n, s in self._states(before).items()
            }
        else:
            stopped = self.stopped
            started = [n for n in to_start if self._state(after, n) in RUNNING_STATES]
            after_states = self._states(after)
        if self.state == STOPPED:
            ok = not self._running(after, self.selected) or self.check_mode
            status = SUCCESS if ok else FAILURE
            msg = f"Stopped: {', '.join(self.selected)}" if ok else str(after.get("msg", ""))
        else:
            ok = self._up(after) or self.check_mode
            status = SUCCESS if ok else FAILURE
            msg = (
                str(after.get("msg", ""))
                if self.whole_suite or not ok
                else "Selected daemons online"
            )
        return {
            "changed": operation != "none",
            "state": self.state,
            "operation": operation,
            "backend": self.backend.name,
            "daemons": self.selected,
            "started": started,
            "stopped": stopped,
            "drain": self.drain,
            "commands": self.commands,
            "status": status,
            "msg_health": msg,
            "status_lines": after.get("status_lines", []),
            "diff": {
                "before": "".join(f"{n}: {s}\n" for n, s in self._states(before).items()),
                "after": "".join(f"{n}: {s}\n" for n, s in after_states.items()),
            },
        }
