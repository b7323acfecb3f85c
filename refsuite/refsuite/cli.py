"""The `refsuite` command: start, stop, status, restart, gencert, version."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from refsuite import __version__, proc
from refsuite.config import DEFAULT_CONFIG, Config, ConfigError, load_config
from refsuite.qm import lock_is_held, preflight, write_request
from refsuite.state import PidRecord, StateDB, judge
from refsuite.token import ensure_token


class CommandError(Exception):
    """Message for the user; exit status 1."""


# -- helpers ---------------------------------------------------------------------------------
def _ensure_dirs(cfg: Config) -> None:
    for path in (
        os.path.dirname(cfg.state_db),
        os.path.dirname(cfg.log_file),
        cfg.data_dir,
        cfg.cluster_path,
    ):
        os.makedirs(path, exist_ok=True)


def _live_records(cfg: Config, db: StateDB) -> dict[str, PidRecord]:
    live = {}
    for name, record in db.records().items():
        if name in cfg.record_names(include_disabled=True) and judge(record)[0]:
            live[name] = record
    return live


def _wait_gone(record: PidRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not judge(record)[0]:
            return True
        time.sleep(0.05)
    return not judge(record)[0]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for entry in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, entry))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _decode_address(hex_address: str) -> str:
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    # /proc/net/tcp* prints each 32-bit word in host (little-endian) order
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    port = int(port_hex, 16)
    if len(raw) == 4:
        return f"{ipaddress.IPv4Address(raw)}:{port}"
    address = ipaddress.IPv6Address(raw)
    if address.ipv4_mapped is not None:
        return f"{address.ipv4_mapped}:{port}"
    return f"[{address}]:{port}"


def ui_clients(cfg: Config, db: StateDB) -> list[str]:
    """Peers with an ESTABLISHED connection to ui's port, held by the ui process."""
    if "ui" not in cfg.role_daemons() or not cfg.is_enabled("ui"):
        return []
    record = db.live_record("ui")
    if record is None:
        return []
    try:
        inodes = _socket_inodes(record.pid)
    except OSError as exc:
        raise CommandError(f"cannot inspect ui (pid {record.pid}) sockets: {exc}")
    port = cfg.port("ui")
    peers = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "01" or fields[9] not in inodes:
                continue
            if int(fields[1].split(":")[1], 16) != port:
                continue
            peers.append(_decode_address(fields[2]))
    return sorted(peers)


def status_report(cfg: Config, db: StateDB) -> tuple[list[str], list[str]]:
    """(status lines, problems) for the configured role."""
    records = db.records()
    lines: list[str] = []
    problems: list[str] = []
    for daemon in cfg.role_daemons():
        if not cfg.is_enabled(daemon):
            lines.append(f"{daemon} : unused")
            continue
        names = (
            [f"data_server-{i}" for i in range(1, cfg.data_servers + 1)]
            if daemon == "data_server"
            else [daemon]
        )
        for name in names:
            record = records.get(name)
            if record is not None and judge(record)[0]:
                lines.append(f"{name} [{record.pid:>6}]: online")
            else:
                lines.append(f"{name} : offline")
                problems.append(f"{name} offline")
    return lines, problems


# -- commands --------------------------------------------------------------------------------
def cmd_status(cfg: Config) -> int:
    db = StateDB(cfg.state_db)
    lines, problems = status_report(cfg, db)
    for line in lines:
        print(line)
    if problems:
        print(f"STATUS=FAILURE MSG={'; '.join(problems)}")
        return 1
    print("STATUS=SUCCESS MSG=All daemons online")
    return 0


def cmd_gencert(cfg: Config, quiet: bool = False) -> int:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CommandError(
            "gencert: the openssl command was not found in PATH; install it (Debian: apt-get"
            f" install openssl) or put a certificate and key at {cfg.tls_cert} and {cfg.tls_key}"
        )
    for path in (cfg.tls_cert, cfg.tls_key):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    host = socket.gethostname()
    command = [
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-sha256",
        "-days",
        "3650",
        "-subj",
        f"/CN={host}",
        "-addext",
        f"subjectAltName=DNS:{host},DNS:localhost,IP:127.0.0.1,IP:::1",
        "-keyout",
        cfg.tls_key,
        "-out",
        cfg.tls_cert,
    ]
    old_umask = os.umask(0o077)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        os.umask(old_umask)
    if result.returncode != 0:
        raise CommandError(f"gencert: openssl failed: {result.stderr.strip()[-500:]}")
    os.chmod(cfg.tls_cert, 0o644)
    os.chmod(cfg.tls_key, 0o600)
    if not quiet:
        print(f"refsuite: wrote {cfg.tls_cert} and {cfg.tls_key}")
    return 0


def _qm_argv(cfg: Config, force: bool, foreground: bool) -> list[str]:
    argv = proc.launch_argv("qm", cfg.path)
    argv[3] = "_qm"  # [refsuite-qm, -m, refsuite, _qm, qm, --config, PATH]
    del argv[4]
    if force:
        argv.append("--force")
    if foreground:
        argv.append("--foreground")
    return argv


def _daemonise_qm(cfg: Config, force: bool) -> int:
    """Double fork + setsid; returns the pid of the detached qm."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:  # first child
        try:
            os.close(read_end)
            os.setsid()
            second = os.fork()
            if second == 0:  # grandchild: becomes qm
                os.close(write_end)
                os.chdir("/")
                null = os.open(os.devnull, os.O_RDWR)
                log = os.open(cfg.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.execve(proc.python_executable(), _qm_argv(cfg, force, False), proc.child_env())
            os.write(write_end, f"{second}\n".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read().strip()
    os.waitpid(first, 0)
    if not text:
        raise CommandError("start: could not fork refsuite-qm")
    return int(text)


def cmd_start(cfg: Config, force: bool, foreground: bool) -> int:
    _ensure_dirs(cfg)
    db = StateDB(cfg.state_db)
    if lock_is_held(cfg):
        qm = db.live_record("qm")
        pid = f"pid {qm.pid} recorded and alive" if qm else f"lock {cfg.lock_file} is held"
        raise CommandError(f"qm: another daemon must be running ({pid}); stop it first")
    refusals, cleared = preflight(cfg, db, force)
    for note in cleared:
        print(f"refsuite: {note}")
    if refusals:
        raise CommandError("\nrefsuite: ".join(refusals))
    if (
        "stpd" in cfg.role_daemons()
        and cfg.is_enabled("stpd")
        and not os.path.exists(cfg.tls_cert)
        and not os.path.exists(cfg.tls_key)
    ):
        cmd_gencert(cfg, quiet=True)
        print(f"refsuite: generated a self-signed certificate at {cfg.tls_cert}")
    if ensure_token(cfg.token_file):
        print(f"refsuite: generated the suite's token at {cfg.token_file} (mode 0600)")
    if foreground:
        sys.stdout.flush()
        os.execve(proc.python_executable(), _qm_argv(cfg, force, True), proc.child_env())
    qm_pid = _daemonise_qm(cfg, force)
    expected = cfg.record_names()
    deadline = time.monotonic() + cfg.start_timeout + 5
    missing = expected
    while time.monotonic() < deadline:
        records = db.records()
        missing = [n for n in expected if n not in records or not judge(records[n])[0]]
        qm_record = records.get("qm")
        if not missing and qm_record is not None and qm_record.pid == qm_pid:
            print(f"refsuite: started (qm pid {qm_pid}): {' '.join(expected)}")
            return 0
        if not proc.pid_alive(qm_pid):
            break
        time.sleep(0.1)
    if proc.pid_alive(qm_pid):
        os.kill(qm_pid, signal.SIGTERM)
        qm = db.get("qm")
        if qm is not None and qm.pid == qm_pid:
            _wait_gone(qm, cfg.stop_timeout + 5)
    logs = "\n".join("  " + line for line in proc.tail(cfg.log_file))
    raise CommandError(
        f"start failed: not online: {', '.join(missing) or 'qm'}; last lines of"
        f" {cfg.log_file}:\n{logs}"
    )


def cmd_stop(cfg: Config, force: bool) -> int:
    db = StateDB(cfg.state_db)
    live = _live_records(cfg, db)
    if not live:
        print("refsuite: already stopped")
        return 0
    if not force:
        clients = ui_clients(cfg, db)
        if clients:
            raise CommandError(
                f"stop refused: ui has {len(clients)} connected client(s): {', '.join(clients)};"
                " disconnect them or use stop --force"
            )
    qm = live.get("qm")
    if qm is not None:
        os.kill(qm.pid, signal.SIGTERM)
        if not _wait_gone(qm, cfg.stop_timeout * 2 + 5):
            os.kill(qm.pid, signal.SIGKILL)
            _wait_gone(qm, 5)
            db.remove("qm", qm.pid)
    # daemons left without qm (qm crashed or was killed): stop them directly
    order = cfg.record_names(include_disabled=True)
    for name in reversed(order):
        record = db.live_record(name)
        if record is None:
            continue
        os.kill(record.pid, signal.SIGTERM)
        if not _wait_gone(record, cfg.stop_timeout):
            os.kill(record.pid, signal.SIGKILL)
            _wait_gone(record, 5)
            db.remove(name, record.pid)
    print("refsuite: stopped")
    return 0


def _daemon_names(cfg: Config, names: list[str], action: str) -> list[str]:
    """Validate per-daemon names: daemons qm runs for this role (qm means the whole suite)."""
    known = ["qm", *cfg.spawn_order()]
    for name in names:
        if name not in known:
            hint = " (sms runs the data servers: use sms)" if name == "data_server" else ""
            raise CommandError(
                f"{action}: '{name}' is not a daemon qm runs for role {cfg.role}{hint};"
                f" known: {' '.join(known)}"
            )
    return names


def _qm_running(cfg: Config, db: StateDB, action: str) -> None:
    if db.live_record("qm") is None or not lock_is_held(cfg):
        raise CommandError(
            f"{action}: qm is not running, so it cannot {action} single daemons;"
            " start the whole suite (refsuite start)"
        )


def _wait_records(db: StateDB, names: list[str], live: bool, timeout: float) -> list[str]:
    """Wait until each name has a live record (live=True) or none; return the ones that did not."""
    deadline = time.monotonic() + timeout
    while True:
        records = db.records()
        pending = [n for n in names if (n in records and judge(records[n])[0]) != live]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.05)


def cmd_start_daemons(cfg: Config, names: list[str], force: bool) -> int:
    """Start single daemons through the running qm (the whole suite when qm is named)."""
    if "qm" in _daemon_names(cfg, names, "start"):
        db = StateDB(cfg.state_db)
        if db.live_record("qm") is None:
            return cmd_start(cfg, force, False)
        names = [n for n in names if n != "qm"]
    db = StateDB(cfg.state_db)
    _qm_running(cfg, db, "start")
    for name in names:
        write_request(cfg, name, "start")
    failed = _wait_records(db, names, True, cfg.start_timeout + 5)
    if failed:
        logs = "\n".join("  " + line for line in proc.tail(cfg.log_file))
        raise CommandError(
            f"start failed: not online: {', '.join(failed)}; last lines of {cfg.log_file}:\n{logs}"
        )
    print(f"refsuite: started {' '.join(names) or 'nothing (qm already running)'}")
    return 0


def cmd_stop_daemons(cfg: Config, names: list[str], force: bool) -> int:
    """Stop single daemons through the running qm, which then holds them down."""
    if "qm" in _daemon_names(cfg, names, "stop"):
        return cmd_stop(cfg, force)
    db = StateDB(cfg.state_db)
    if db.live_record("qm") is None:
        print("refsuite: already stopped (qm is not running)")
        return 0
    if "ui" in names and not force:
        clients = ui_clients(cfg, db)
        if clients:
            raise CommandError(
                f"stop refused: ui has {len(clients)} connected client(s): {', '.join(clients)};"
                " disconnect them or use stop --force"
            )
    for name in names:
        write_request(cfg, name, "stop")
    still = _wait_records(db, names, False, cfg.stop_timeout + 5)
    if still:
        raise CommandError(f"stop failed: still running: {', '.join(still)}")
    print(f"refsuite: stopped {' '.join(names)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="INI file")
    parser = argparse.ArgumentParser(prog="refsuite", description="the daemonops reference suite")
    parser.add_argument(
        "--config",
        default=os.environ.get("REFSUITE_CONFIG", DEFAULT_CONFIG),
        help="INI file (default $REFSUITE_CONFIG or %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", parents=[common], help="start qm and the role's daemons")
    start.add_argument("--force", action="store_true", help="clear stale PID records first")
    start.add_argument("--foreground", action="store_true", help="run qm in the foreground")
    start.add_argument(
        "daemons", nargs="*", help="only these daemons, through the running qm (qm: the suite)"
    )
    stop = sub.add_parser("stop", parents=[common], help="stop qm and its daemons")
    stop.add_argument("--force", action="store_true", help="stop even with ui clients")
    stop.add_argument(
        "daemons", nargs="*", help="only these daemons; qm holds them down until started"
    )
    sub.add_parser("status", parents=[common], help="sm_main-style status lines")
    restart = sub.add_parser("restart", parents=[common], help="stop, then start")
    restart.add_argument("--force", action="store_true", help="stop --force; start --force")
    sub.add_parser("gencert", parents=[common], help="self-signed certificate for stpd HTTPS")
    sub.add_parser("version", parents=[common], help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    try:
        cfg = load_config(args.config)
        if args.command == "status":
            return cmd_status(cfg)
        if args.command == "gencert":
            return cmd_gencert(cfg)
        if args.command == "start" and args.daemons:
            return cmd_start_daemons(cfg, args.daemons, args.force)
        if args.command == "start":
            return cmd_start(cfg, args.force, args.foreground)
        if args.command == "stop" and args.daemons:
            return cmd_stop_daemons(cfg, args.daemons, args.force)
        if args.command == "stop":
            return cmd_stop(cfg, args.force)
        if args.command == "restart":
            cmd_stop(cfg, args.force)
            return cmd_start(cfg, args.force, False)
    except (ConfigError, CommandError) as exc:
        print(f"refsuite: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"refsuite: {args.command}: {exc}", file=sys.stderr)
        return 1
    return 64
