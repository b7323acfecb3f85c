"""The state database (SQLite): PID records and qm's supervision counters.

Identity rules: a record is *live* when its pid exists on this boot and started when the record
says. The start is recorded as clock ticks since boot (``/proc/PID/stat`` field 22, the
``start_ticks`` column) next to the boot id: facts a wall-clock step (NTP, VM resume) does not
change. ``start_time`` (the epoch start, psutil's create_time()) is still written for older
readers; a record without ``start_ticks`` (written by an older refsuite) is judged on it, with a
tolerance. Otherwise the record is *stale*.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS daemon_pids (name TEXT PRIMARY KEY, pid INTEGER,"
    " start_time REAL, boot_id TEXT, host TEXT, exe TEXT, start_ticks INTEGER)",
    "CREATE TABLE IF NOT EXISTS qm_supervision (name TEXT PRIMARY KEY, state TEXT,"
    " restarts INTEGER, failures INTEGER, updated REAL)",
)

START_TIME_TOLERANCE = 1.0  # seconds; btime in /proc/stat may jitter after clock steps


class RecordRefused(Exception):
    """A daemon must not start because of an existing record (message for the user)."""


@dataclass(frozen=True)
class PidRecord:
    name: str
    pid: int
    start_time: float
    boot_id: str
    host: str
    exe: str
    start_ticks: int | None = None


COLUMNS = "name, pid, start_time, boot_id, host, exe, start_ticks"


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime"):
                return float(line.split()[1])
    raise RuntimeError("btime not found in /proc/stat")


def proc_start_ticks(pid: int) -> int | None:
    """The start of process ``pid`` in clock ticks since boot (/proc/PID/stat field 22); None
    when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie is gone for our purposes
        return None
    return int(fields[19])


def proc_start_time(pid: int) -> float | None:
    """psutil.Process(pid).create_time() without psutil; None when the process is gone."""
    ticks = proc_start_ticks(pid)
    if ticks is None:
        return None
    return float(ticks) / os.sysconf("SC_CLK_TCK") + boot_time()


def proc_exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def own_record(name: str) -> PidRecord:
    pid = os.getpid()
    ticks = proc_start_ticks(pid)
    assert ticks is not None
    start = float(ticks) / os.sysconf("SC_CLK_TCK") + boot_time()
    return PidRecord(
        name, pid, start, boot_id(), socket.gethostname(), proc_exe(pid), start_ticks=ticks
    )


def judge(record: PidRecord) -> tuple[bool, str]:
    """(live, reason). live means the recorded process still runs."""
    if record.boot_id and record.boot_id != boot_id():
        return False, "recorded before the last reboot"
    ticks = proc_start_ticks(record.pid)
    if ticks is None:
        return False, "process gone"
    if record.start_ticks is not None:
        if ticks != record.start_ticks:
            return False, "pid now belongs to another process"
        return True, "recorded and alive"
    start = float(ticks) / os.sysconf("SC_CLK_TCK") + boot_time()
    if record.start_time is None or abs(start - record.start_time) > START_TIME_TOLERANCE:
        return False, "pid now belongs to another process"
    return True, "recorded and alive"


def live_message(record: PidRecord) -> str:
    return (
        f"{record.name}: another daemon must be running (pid {record.pid} recorded and alive);"
        " stop it first"
    )


def stale_message(record: PidRecord, reason: str) -> str:
    return (
        f"stale record for {record.name} (pid {record.pid}, {reason});"
        " start with --force to clear it"
    )


class StateDB:
    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with self._connect() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            columns = [row[1] for row in conn.execute("PRAGMA table_info(daemon_pids)")]
            if "start_ticks" not in columns:  # a database written by an older refsuite
                try:
                    conn.execute("ALTER TABLE daemon_pids ADD COLUMN start_ticks INTEGER")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # another daemon added it just now
                        raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def records(self) -> dict[str, PidRecord]:
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {COLUMNS} FROM daemon_pids").fetchall()
        return {row[0]: PidRecord(*row) for row in rows}

    def get(self, name: str) -> PidRecord | None:
        return self.records().get(name)

    def register(self, record: PidRecord, force: bool = False) -> None:
        """Insert the record atomically; refuse over a live record, or a stale one without force."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT {COLUMNS} FROM daemon_pids WHERE name = ?",
                    (record.name,),
                ).fetchone()
                if row is not None and row[1] != record.pid:
                    existing = PidRecord(*row)
                    live, reason = judge(existing)
                    if live:
                        raise RecordRefused(live_message(existing))
                    if not force:
                        raise RecordRefused(stale_message(existing, reason))
                conn.execute(
                    f"INSERT OR REPLACE INTO daemon_pids ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.name,
                        record.pid,
                        record.start_time,
                        record.boot_id,
                        record.host,
                        record.exe,
                        record.start_ticks,
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def remove(self, name: str, pid: int | None = None) -> bool:
        with self._connect() as conn:
            if pid is None:
                cur = conn.execute("DELETE FROM daemon_pids WHERE name = ?", (name,))
            else:
                cur = conn.execute(
                    "DELETE FROM daemon_pids WHERE name = ? AND pid = ?", (name, pid)
                )
            return cur.rowcount > 0

    def remove_if_stale(self, name: str) -> PidRecord | None:
        """Remove the record of name if (and only if) it is stale; return what was removed."""
        record = self.get(name)
        if record is None or judge(record)[0]:
            return None
        self.remove(name, record.pid)
        return record

    def set_supervision(self, name: str, state: str, restarts: int, failures: int) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO qm_supervision (name, state, restarts, failures, updated)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, state, restarts, failures, time.time()),
            )

    def supervision(self) -> dict[str, tuple[str, int, int]]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, state, restarts, failures FROM qm_supervision"
            ).fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    def live_record(self, name: str) -> PidRecord | None:
        record = self.get(name)
        if record is not None and judge(record)[0]:
            return record
        return None
