"""The refsuite INI configuration: parsing, defaults, validation, role sets."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field

ROLES = ("server", "rds", "client")

# Every daemon, in dependency (start) order. qm is the master; data_server runs under sms.
ALL_DAEMONS = ("qm", "db", "ui", "passd", "sms", "data_server", "stpd", "ctrl", "sshd", "sepuler")

ROLE_DAEMONS: dict[str, tuple[str, ...]] = {
    "server": ALL_DAEMONS,
    "rds": ("qm", "passd", "sms", "data_server", "stpd", "ctrl", "sshd"),
    "client": ("qm", "ctrl", "sshd"),
}

DEFAULT_PORTS: dict[str, tuple[int, ...]] = {
    "ui": (11401,),
    "stpd": (11000, 11001, 11443),
    "ctrl": (11301,),
    "sshd": (11322,),
}
DEFAULT_DISABLED = frozenset({"ctrl"})

DEFAULT_CONFIG = "/etc/refsuite/refsuite.ini"

SUITE_KEYS: dict[str, str] = {
    "role": "server",
    "bind": "127.0.0.1",
    "state_db": "/var/lib/refsuite/state.db",
    "cluster_path": "/var/lib/refsuite/cluster",
    "log_file": "/var/log/refsuite/refsuite.log",
    "data_dir": "/var/lib/refsuite/data",
    "tls_cert": "/etc/refsuite/tls.pem",
    "tls_key": "/etc/refsuite/tls.key",
    "retry_interval": "30",
    "max_failures": "3",
    "failure_window": "60",
    "resume_interval": "300",
    "start_timeout": "30",
    "stop_timeout": "30",
    "syslog_socket": "/dev/log",
    "token_file": "",  # empty: "token" next to the configuration file
    "max_upload": str(64 * 1024 * 1024),
    "max_clients": "64",
    "io_timeout": "30",
}
PATH_KEYS = ("state_db", "cluster_path", "log_file", "data_dir", "tls_cert", "tls_key")

# Keys every daemon section accepts, plus the daemon-specific ones.
COMMON_DAEMON_KEYS = frozenset({"enabled", "crash_after"})
PORT_KEYS = frozenset({"port", "ports"})
EXTRA_DAEMON_KEYS: dict[str, frozenset[str]] = {
    "db": frozenset({"catalog"}),
    "sms": frozenset({"data_servers", "write_interval"}),
    "data_server": frozenset(),
    "sepuler": frozenset({"interval"}),
}


class ConfigError(Exception):
    """A configuration problem, worded for the user."""


@dataclass
class DaemonConfig:
    name: str
    enabled: bool = True
    ports: tuple[int, ...] = ()
    crash_after: float | None = None  # test knob: exit(1) this many seconds after coming up


@dataclass
class Config:
    path: str
    role: str = "server"
    bind: str = "127.0.0.1"
    state_db: str = SUITE_KEYS["state_db"]
    cluster_path: str = SUITE_KEYS["cluster_path"]
    log_file: str = SUITE_KEYS["log_file"]
    data_dir: str = SUITE_KEYS["data_dir"]
    tls_cert: str = SUITE_KEYS["tls_cert"]
    tls_key: str = SUITE_KEYS["tls_key"]
    retry_interval: float = 30.0
    max_failures: int = 3
    failure_window: float = 60.0
    resume_interval: float = 300.0
    start_timeout: float = 30.0
    stop_timeout: float = 30.0
    syslog_socket: str = "/dev/log"
    token_file: str = ""
    max_upload: int = 64 * 1024 * 1024  # bytes of one stpd upload
    max_clients: int = 64  # connections served at once per listening port
    io_timeout: float = 30.0  # seconds a client may stay silent (before it authenticated)
    catalog: str = ""
    data_servers: int = 2
    write_interval: float = 1.0
    sepuler_interval: float = 1.0
    daemons: dict[str, DaemonConfig] = field(default_factory=dict)

    @property
    def lock_file(self) -> str:
        return self.state_db + ".lock"

    def role_daemons(self) -> tuple[str, ...]:
        """Daemon names of the configured role, in start order (qm first)."""
        return ROLE_DAEMONS[self.role]

    def is_enabled(self, name: str) -> bool:
        if name == "data_server":
            return self.daemons["sms"].enabled and self.data_servers > 0
        return self.daemons[name].enabled

    def spawn_order(self) -> list[str]:
        """What qm starts itself, in dependency order (data_server is started by sms)."""
        return [
            n
            for n in self.role_daemons()
            if n not in ("qm", "data_server") and self.daemons[n].enabled
        ]

    def record_names(self, include_disabled: bool = False) -> list[str]:
        """State-DB record names of the role: qm, db, ..., data_server-1..N, ..."""
        names: list[str] = []
        for name in self.role_daemons():
            if not include_disabled and not self.is_enabled(name):
                continue
            if name == "data_server":
                names.extend(f"data_server-{i}" for i in range(1, self.data_servers + 1))
            else:
                names.append(name)
        return names

    def port(self, name: str, index: int = 0) -> int:
        return self.daemons[name].ports[index]


def _float(source: str, section: str, key: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"{source}: [{section}] {key} = {raw!r} is not a number; give seconds, e.g. 0.5"
        )
    if value < minimum:
        raise ConfigError(f"{source}: [{section}] {key} = {raw!r} must be >= {minimum:g}")
    return value


def _int(source: str, section: str, key: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{source}: [{section}] {key} = {raw!r} is not an integer")
    if not lo <= value <= hi:
        raise ConfigError(f"{source}: [{section}] {key} = {value} must be between {lo} and {hi}")
    return value


def _bool(source: str, section: str, key: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{source}: [{section}] {key} = {raw!r} is not a boolean; use true or false")


def _ports(source: str, section: str, key: str, raw: str) -> tuple[int, ...]:
    ports = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        ports.append(_int(source, section, key, item, 1, 65535))
    if not ports:
        raise ConfigError(f"{source}: [{section}] {key} is empty; give a port number 1-65535")
    return tuple(ports)


def parse_config(text: str, path: str) -> Config:
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";", "#"), interpolation=None, strict=True
    )
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise ConfigError(f"{path}: cannot parse INI: {exc}".replace("\n", " "))

    cfg = Config(path=path)
    known_sections = {"suite", *ALL_DAEMONS}
    for section in parser.sections():
        if section not in known_sections:
            raise ConfigError(
                f"{path}: unknown section [{section}]; known: {', '.join(sorted(known_sections))}"
            )

    suite = parser["suite"] if parser.has_section("suite") else {}
    for key in suite:
        if key not in SUITE_KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r} in [suite]; known: {', '.join(sorted(SUITE_KEYS))}"
            )
    values = {key: suite.get(key, default).strip() for key, default in SUITE_KEYS.items()}

    if values["role"] not in ROLES:
        raise ConfigError(
            f"{path}: [suite] role = {values['role']!r} is invalid; use one of {', '.join(ROLES)}"
        )
    cfg.role = values["role"]
    cfg.bind = values["bind"] or "127.0.0.1"
    for key in PATH_KEYS:
        value = values[key]
        if not os.path.isabs(value):
            raise ConfigError(f"{path}: [suite] {key} = {value!r} must be an absolute path")
        setattr(cfg, key, os.path.normpath(value))
    cfg.syslog_socket = values["syslog_socket"]
    cfg.retry_interval = _float(path, "suite", "retry_interval", values["retry_interval"])
    cfg.max_failures = _int(path, "suite", "max_failures", values["max_failures"], 1, 1000)
    cfg.failure_window = _float(path, "suite", "failure_window", values["failure_window"])
    cfg.resume_interval = _float(path, "suite", "resume_interval", values["resume_interval"])
    cfg.start_timeout = _float(path, "suite", "start_timeout", values["start_timeout"], 0.1)
    cfg.stop_timeout = _float(path, "suite", "stop_timeout", values["stop_timeout"], 0.1)
    cfg.catalog = os.path.join(os.path.dirname(cfg.state_db), "catalog.db")
    token_file = values["token_file"] or os.path.join(
        os.path.dirname(os.path.abspath(path)), "token"
    )
    if not os.path.isabs(token_file):
        raise ConfigError(f"{path}: [suite] token_file = {token_file!r} must be an absolute path")
    cfg.token_file = os.path.normpath(token_file)
    cfg.max_upload = _int(path, "suite", "max_upload", values["max_upload"], 1, 1 << 40)
    cfg.max_clients = _int(path, "suite", "max_clients", values["max_clients"], 1, 10000)
    cfg.io_timeout = _float(path, "suite", "io_timeout", values["io_timeout"], 0.1)

    for name in ALL_DAEMONS:
        sect = parser[name] if parser.has_section(name) else {}
        allowed = set(COMMON_DAEMON_KEYS) | set(EXTRA_DAEMON_KEYS.get(name, ()))
        if name in DEFAULT_PORTS:
            allowed |= PORT_KEYS
        for key in sect:
            if key not in allowed:
                raise ConfigError(
                    f"{path}: unknown key {key!r} in [{name}]; known: {', '.join(sorted(allowed))}"
                )
        dcfg = DaemonConfig(name=name, enabled=name not in DEFAULT_DISABLED)
        if "enabled" in sect:
            dcfg.enabled = _bool(path, name, "enabled", sect["enabled"])
        if name == "qm" and not dcfg.enabled:
            raise ConfigError(f"{path}: [qm] enabled = false is not allowed: qm is the master")
        if "crash_after" in sect:
            dcfg.crash_after = _float(path, name, "crash_after", sect["crash_after"])
        if name in DEFAULT_PORTS:
            dcfg.ports = DEFAULT_PORTS[name]
            given: tuple[int, ...] | None = None
            for key in ("port", "ports"):
                if key in sect:
                    ports = _ports(path, name, key, sect[key])
                    if given is not None and ports[: len(given)] != given[: len(ports)]:
                        raise ConfigError(
                            f"{path}: [{name}] has both port and ports with different values;"
                            " keep one of them"
                        )
                    given = ports
            if given is not None:
                need = len(DEFAULT_PORTS[name])
                if len(given) != need:
                    raise ConfigError(
                        f"{path}: [{name}] needs exactly {need} port(s), got {len(given)}"
                        f" ({', '.join(map(str, given))})"
                    )
                dcfg.ports = given
        cfg.daemons[name] = dcfg
        if name == "db" and "catalog" in sect:
            catalog = sect["catalog"].strip()
            if not os.path.isabs(catalog):
                raise ConfigError(f"{path}: [db] catalog = {catalog!r} must be an absolute path")
            cfg.catalog = catalog
        if name == "sms":
            if "data_servers" in sect:
                cfg.data_servers = _int(path, "sms", "data_servers", sect["data_servers"], 0, 64)
            if "write_interval" in sect:
                cfg.write_interval = _float(
                    path, "sms", "write_interval", sect["write_interval"], 0.01
                )
        if name == "sepuler" and "interval" in sect:
            cfg.sepuler_interval = _float(path, "sepuler", "interval", sect["interval"], 0.01)

    seen: dict[int, str] = {}
    for name in cfg.role_daemons():
        dcfg = cfg.daemons[name]
        if not dcfg.enabled:
            continue
        for port in dcfg.ports:
            if port in seen:
                raise ConfigError(
                    f"{path}: port {port} is used by both [{seen[port]}] and [{name}];"
                    " give each daemon its own port"
                )
            seen[port] = name
    return cfg


def load_config(path: str) -> Config:
    path = os.path.abspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}; pass --config PATH or set"
            " REFSUITE_CONFIG"
        )
    return parse_config(text, path)
