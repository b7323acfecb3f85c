# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The suite profile model: Profile, Daemon, Port, Control, PidStore, ClusterData.

A Profile is built by ``profile_schema.load_profile`` (complete validation of the YAML data) and
changed by the suite INI (``suite_ini.apply_config``); this module holds the data only.

The compact form (``Profile.to_compact``/``Profile.from_compact``) carries a profile that the
controller has already validated to a module on the target: the dataclasses' fields as they are,
built back without validation, so a module does not import (or run) the validator.

Runs on targets: standard library only.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import ProfileError

PID_STORE_TYPES = ("sqlite", "pidfile", "postgresql")
PID_STORE_COLUMNS = ("name", "pid", "start_time", "boot_id", "host", "exe")
PROBE_TYPES = ("tcp", "http")
CONTROL_ACTIONS = ("start", "stop", "status", "restart")
DAEMON_CONTROL_ACTIONS = ("start_daemon", "stop_daemon")
MAX_MATCHED_CHARS = 2048  # of a command line (or exe) that a match regex is applied to
COMPACT_OPTION = "_profile"
"""The internal module option in which the action plugin sends the profile it validated, in
``Profile.to_compact`` form. The action plugin always sets it itself (a value from the task is
replaced); without it (a module run another way) ``profile_data`` is validated completely."""
COMPACT_VERSION = 1
"""Version of ``Profile.to_compact``'s form; ``from_compact`` refuses any other."""

# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Port:
    """A TCP port a daemon listens on, with an optional probe.

    ``probe`` is None or a normalised dict: ``{type: tcp, timeout}`` or
    ``{type: http, path, status, tls, timeout}``.
    """

    port: int
    probe: t.Optional[dict[str, t.Any]] = None

    def to_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"port": self.port}
        if self.probe is not None:
            result["probe"] = dict(self.probe)
        return result


@dataclasses.dataclass(frozen=True)
class Daemon:
    """One daemon of a suite and how to recognise it in the process table."""

    name: str
    description: str
    roles: tuple[str, ...]
    cmdline_regex: re.Pattern[str]
    exe_regex: t.Optional[re.Pattern[str]]
    ancestor: t.Optional[str]
    ports: tuple[Port, ...]
    count_min: int = 1
    count_max: t.Optional[int] = None
    essential: bool = False
    enabled: bool = True
    #: the daemon's own systemd unit, where the product ships one per daemon (Debian's Bacula)
    systemd_unit: t.Optional[str] = None
    log_file: t.Optional[str] = None
    user: t.Optional[t.Union[int, str]] = None  # match.user: uid number or user name

    @property
    def port_numbers(self) -> list[int]:
        return [p.port for p in self.ports]

    def matches(
        self,
        cmdline: t.Sequence[str],
        exe: t.Optional[str] = None,
        instance: t.Optional[str] = None,
    ) -> bool:
        """True if a process with this cmdline (and exe) is an instance of this daemon.

        ``cmdline_regex`` is searched in the space-joined cmdline (Linux cuts ``comm`` to 15
        characters, the cmdline is complete). ``exe_regex``, when the profile sets one, must
        match ``exe`` if ``exe`` is known (None = unreadable, not held against the process).
        ``instance``, when given, must appear as a substring of the joined cmdline. The
        regexes are applied to the first ``MAX_MATCHED_CHARS`` characters only.
        """
        if not cmdline:
            return False
        joined = " ".join(cmdline)
        # local users choose their command lines: the regex sees a bounded prefix only
        if not self.cmdline_regex.search(joined[:MAX_MATCHED_CHARS]):
            return False
        if (
            self.exe_regex is not None
            and exe is not None
            and not self.exe_regex.search(exe[:MAX_MATCHED_CHARS])
        ):
            return False
        return not (instance and instance not in joined)

    def to_dict(self) -> dict[str, t.Any]:
        match: dict[str, str] = {"cmdline": self.cmdline_regex.pattern}
        if self.exe_regex is not None:
            match["exe"] = self.exe_regex.pattern
        if self.user is not None:
            match["user"] = self.user  # type: ignore[assignment]
        result: dict[str, t.Any] = {
            "name": self.name,
            "description": self.description,
            "roles": list(self.roles),
            "match": match,
        }
        if self.ancestor is not None:
            result["ancestor"] = self.ancestor
        result["ports"] = [p.to_dict() for p in self.ports]
        result["count"] = {"min": self.count_min, "max": self.count_max}
        result["essential"] = self.essential
        result["enabled"] = self.enabled
        if self.systemd_unit is not None:
            result["systemd_unit"] = self.systemd_unit
        if self.log_file is not None:
            result["log_file"] = self.log_file
        return result


@dataclasses.dataclass(frozen=True)
class Control:
    """The suite's own control command (argv lists)."""

    start: tuple[str, ...]
    stop: tuple[str, ...]
    status: t.Optional[tuple[str, ...]] = None
    restart: t.Optional[tuple[str, ...]] = None
    force_option: t.Optional[str] = None
    start_daemon: t.Optional[tuple[str, ...]] = None
    stop_daemon: t.Optional[tuple[str, ...]] = None

    def to_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {}
        for action in (*CONTROL_ACTIONS, *DAEMON_CONTROL_ACTIONS):
            argv = getattr(self, action)
            if argv is not None:
                result[action] = list(argv)
        if self.force_option is not None:
            result["force_option"] = self.force_option
        return result


@dataclasses.dataclass(frozen=True)
class PidStore:
    """Where the suite records its daemons' PIDs.

    ``columns`` maps the logical fields (name, pid, start_time, boot_id, host, exe) to column
    names; only the fields the store has are present (name and pid always). ``pattern`` is the
    pidfile name inside ``path`` for the pidfile type (``{name}`` and ``{port}`` = the daemon's
    first port are replaced).
    """

    type: str
    path: t.Optional[str] = None
    table: t.Optional[str] = None
    dsn: t.Optional[str] = None
    columns: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"name": "name", "pid": "pid"}
    )
    pattern: t.Optional[str] = None
    #: ``section.key`` of the suite INI that sets ``path`` for an instance (refsuite:
    #: ``suite.state_db``); ``suite_ini.apply_config`` follows it.
    config_key: t.Optional[str] = None

    def pidfile_name(self, daemon: Daemon) -> str:
        """The pidfile name of ``daemon`` (pidfile stores only)."""
        pattern = self.pattern or "{name}.pid"
        port = daemon.ports[0].port if daemon.ports else ""
        return pattern.format(name=daemon.name, port=port)

    def to_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"type": self.type}
        for key in ("path", "table", "dsn", "pattern", "config_key"):
            value = getattr(self, key)
            if value is not None:
                result[key] = value
        if self.type != "pidfile":
            result["columns"] = dict(self.columns)
        return result


@dataclasses.dataclass(frozen=True)
class ClusterData:
    """A cluster data tree: files at ``depth`` levels below ``path`` (like /var/cluster/sms/*/*)."""

    path: str
    depth: int = 1

    def to_dict(self) -> dict[str, t.Any]:
        return {"path": self.path, "depth": self.depth}


@dataclasses.dataclass(frozen=True)
class Profile:
    """A validated suite profile. Build it with ``profile_schema.load_profile``/``load_profile_file``."""

    name: str
    description: str
    roles: tuple[str, ...]
    control: t.Optional[Control]
    systemd_unit: t.Optional[str]
    config_file: t.Optional[str]
    pid_store: t.Optional[PidStore]
    cluster_data: t.Optional[ClusterData]
    daemons: tuple[Daemon, ...]
    source: str = dataclasses.field(default="<inline>", compare=False)
    #: a file whose first line is the installed suite's version (health_info reports it)
    version_file: t.Optional[str] = None
    #: the normalised ``deploy`` section (see deploy.py), None when the profile has none
    deploy: t.Optional[dict[str, t.Any]] = None
    #: the profile's folder (profiles/<suite>/, holding templates/) when loaded from one
    folder: t.Optional[str] = dataclasses.field(default=None, compare=False)

    @property
    def daemon_names(self) -> list[str]:
        return [d.name for d in self.daemons]

    def daemon(self, name: str) -> Daemon:
        """The daemon called ``name``; ProfileError naming the known daemons otherwise."""
        for daemon in self.daemons:
            if daemon.name == name:
                return daemon
        raise ProfileError(
            f"profile '{self.name}' has no daemon '{name}'; "
            f"known daemons: {', '.join(self.daemon_names)}"
        )

    def daemons_for_roles(self, roles: t.Iterable[str]) -> list[Daemon]:
        """Daemons that run on a host with any of ``roles``, in profile order.

        An unknown role is refused (ProfileError naming the suite's roles); this is the one
        place the roles of a host are checked against the profile.
        """
        wanted = list(roles)
        unknown = [r for r in wanted if r not in self.roles]
        if unknown:
            raise ProfileError(
                f"roles: {', '.join(unknown)} not a role of suite {self.name}; "
                f"use some of {', '.join(self.roles)}"
            )
        return [d for d in self.daemons if any(r in d.roles for r in wanted)]

    def control_command(
        self, action: str, force: bool = False, config_file: t.Optional[str] = None
    ) -> list[str]:
        """argv of the suite's control command for ``action`` (start/stop/status/restart).

        ``force`` appends ``control.force_option``. ``config_file``, when given, replaces every
        argument equal to the profile's ``suite.config_file`` (so a second instance's config is
        used). Raises ProfileError if the profile has no such command.
        """
        if action not in CONTROL_ACTIONS:
            raise ProfileError(
                f"unknown control action '{action}'; use one of {', '.join(CONTROL_ACTIONS)}"
            )
        argv = getattr(self.control, action) if self.control is not None else None
        if argv is None:
            raise ProfileError(
                f"profile '{self.name}' defines no suite.control.{action} command; "
                "add it to the profile or use the systemd backend"
            )
        result = list(argv)
        if config_file and self.config_file:
            result = [config_file if arg == self.config_file else arg for arg in result]
        if force:
            if not self.control or not self.control.force_option:
                raise ProfileError(
                    f"profile '{self.name}' has no suite.control.force_option; "
                    "a forced start is not available for this suite"
                )
            result.append(self.control.force_option)
        return result

    def daemon_command(
        self,
        action: str,
        daemon: str,
        force: bool = False,
        config_file: t.Optional[str] = None,
    ) -> t.Optional[list[str]]:
        """argv of ``control.start_daemon``/``stop_daemon`` for one daemon, or None if unset.

        ``{daemon}`` is replaced by the daemon's name; ``config_file`` and ``force`` as in
        ``control_command``.
        """
        if action not in DAEMON_CONTROL_ACTIONS:
            raise ProfileError(
                f"unknown per-daemon control action '{action}'; "
                f"use one of {', '.join(DAEMON_CONTROL_ACTIONS)}"
            )
        argv = getattr(self.control, action) if self.control is not None else None
        if argv is None:
            return None
        result = [daemon if arg == "{daemon}" else arg for arg in argv]
        if config_file and self.config_file:
            result = [config_file if arg == self.config_file else arg for arg in result]
        if force and self.control is not None and self.control.force_option:
            result.append(self.control.force_option)
        return result

    def to_compact(self) -> dict[str, t.Any]:
        """The profile as ``from_compact`` takes it (JSON-safe): the fields of the dataclasses
        that differ from their defaults (None left out), regexes as their patterns. ``deploy``
        and ``folder`` are left out (they serve the controller only). For a validated Profile."""
        result: dict[str, t.Any] = {"compact": COMPACT_VERSION}
        result.update(_fields(self, skip=("daemons", "deploy", "folder")))
        for key in ("control", "pid_store", "cluster_data"):
            if key in result:
                result[key] = _fields(result[key])
        result["daemons"] = [_compact_daemon(daemon) for daemon in self.daemons]
        return result

    @classmethod
    def from_compact(cls, data: t.Mapping[str, t.Any]) -> Profile:
        """The Profile that ``to_compact`` gave ``data`` for, built without validation (the
        regexes are compiled, lists become tuples as in the model). ProfileError when ``data``
        is not a compact profile of this version, or is malformed."""
        if not isinstance(data, dict) or data.get("compact") != COMPACT_VERSION:
            raise ProfileError(
                f"{COMPACT_OPTION}: not a compact profile this module reads (made by another "
                "version of the collection?); pass the profile as profile or profile_data"
            )
        try:
            fields = {key: value for key, value in data.items() if key != "compact"}
            fields["roles"] = tuple(fields["roles"])
            control = fields.get("control")
            fields["control"] = None if control is None else Control(**_tuples(control))
            store = fields.get("pid_store")
            fields["pid_store"] = None if store is None else PidStore(**store)
            cluster = fields.get("cluster_data")
            fields["cluster_data"] = None if cluster is None else ClusterData(**cluster)
            for key in ("systemd_unit", "config_file"):
                fields.setdefault(key, None)
            fields["daemons"] = tuple(_daemon_from_compact(item) for item in fields["daemons"])
            return cls(**fields)
        except (KeyError, TypeError, ValueError, AttributeError, re.error) as exc:
            raise ProfileError(
                f"{COMPACT_OPTION}: malformed compact profile ({type(exc).__name__}: {exc}); "
                "pass the profile as profile or profile_data"
            ) from exc

    def to_dict(self) -> dict[str, t.Any]:
        """A plain dict (JSON-safe) that ``load_profile`` accepts and that gives an equal Profile."""
        suite: dict[str, t.Any] = {
            "name": self.name,
            "description": self.description,
            "roles": list(self.roles),
        }
        if self.control is not None:
            suite["control"] = self.control.to_dict()
        if self.systemd_unit is not None:
            suite["systemd_unit"] = self.systemd_unit
        if self.config_file is not None:
            suite["config_file"] = self.config_file
        if self.version_file is not None:
            suite["version_file"] = self.version_file
        if self.pid_store is not None:
            suite["pid_store"] = self.pid_store.to_dict()
        if self.cluster_data is not None:
            suite["cluster_data"] = self.cluster_data.to_dict()
        result: dict[str, t.Any] = {"suite": suite, "daemons": [d.to_dict() for d in self.daemons]}
        if self.deploy is not None:
            result["deploy"] = self.deploy
        return result


def _fields(obj: t.Any, skip: t.Sequence[str] = ()) -> dict[str, t.Any]:
    """A dataclass's fields (shallow) that are not None nor their default; tuples as lists."""
    result = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name in skip or value is None or value == field.default:
            continue
        if field.default_factory is not dataclasses.MISSING and value == field.default_factory():
            continue
        result[field.name] = list(value) if isinstance(value, tuple) else value
    return result


def _tuples(data: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}


def _compact_daemon(daemon: Daemon) -> dict[str, t.Any]:
    fields = _fields(daemon)
    fields["cmdline_regex"] = daemon.cmdline_regex.pattern
    if daemon.exe_regex is not None:
        fields["exe_regex"] = daemon.exe_regex.pattern
    fields["ports"] = [
        [port.port, port.probe] if port.probe else port.port for port in daemon.ports
    ]
    return fields


def _daemon_from_compact(data: t.Mapping[str, t.Any]) -> Daemon:
    fields = dict(data)
    fields["roles"] = tuple(fields["roles"])
    fields["cmdline_regex"] = re.compile(fields["cmdline_regex"])
    exe = fields.get("exe_regex")
    fields["exe_regex"] = None if exe is None else re.compile(exe)
    fields.setdefault("ancestor", None)
    fields["ports"] = tuple(
        Port(*item) if isinstance(item, list) else Port(item) for item in fields.get("ports", ())
    )
    return Daemon(**fields)
