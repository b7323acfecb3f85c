# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PID record stores: pidfiles, SQLite tables and PostgreSQL tables.

A store is described by a dict ``{type, path, table, dsn, columns}`` (the profile's ``pid_store``).
``read_records(store)`` returns one :class:`PidRecord` per record; ``remove_record(store, record)``
deletes exactly that record (and only if it is still what was read).

Nothing here ever turns an invalid PID text into a number: a record whose PID is empty, not a
decimal number, 0, 1, negative or above the kernel's ``pid_max`` has ``pid = None`` and
``invalid_reason`` set.  Pidfiles that are symlinks, group/other-writable or owned by somebody
other than root or the current user are refused (``error`` set, content never read).
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import stat
import string
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

STORE_TYPES = ("pidfile", "sqlite", "postgresql")
COLUMN_KEYS = ("name", "pid", "start_time", "boot_id", "host", "exe", "start_ticks")
MAX_PIDFILE_BYTES = 4096
DEFAULT_PID_MAX = 4194304  # the kernel's upper limit for pid_max on 64-bit systems

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECIMAL = re.compile(r"[+-]?[0-9]+")


@dataclass
class PidRecord:
    """One PID record as stored; ``pid`` is only set when the stored text is a usable PID."""

    name: str
    raw_pid: Any
    pid: Optional[int]
    source: str
    invalid_reason: Optional[str] = None
    error: Optional[str] = None
    start_time: Optional[float] = None
    boot_id: Optional[str] = None
    host: Optional[str] = None
    exe: Optional[str] = None
    key: Any = field(default=None, repr=False)
    start_ticks: Optional[int] = None  # start in clock ticks since boot (/proc/PID/stat 22)

    @property
    def only_pid(self) -> bool:
        """True when nothing but the PID identifies the process (no start time, no exe)."""
        return self.start_time is None and self.start_ticks is None and not self.exe

    def describe(self) -> str:
        """Short text for diffs: ``name: pid`` (the raw text when the PID is not valid)."""
        shown = self.pid if self.pid is not None else repr(self.raw_pid)
        return f"{self.name}: {shown} ({self.source})"


def read_pid_max() -> int:
    """The kernel's pid_max (highest PID plus one)."""
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return DEFAULT_PID_MAX


def parse_pid(raw: Any, pid_max: int) -> tuple[Optional[int], Optional[str]]:
    """Return ``(pid, None)`` for a usable PID, ``(None, reason)`` otherwise."""
    if raw is None:
        return None, "no PID recorded (empty)"
    if isinstance(raw, bool):
        return None, f"PID {raw!r} is not a number"
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None, "PID is not text"
    if isinstance(raw, float):
        if not raw.is_integer():
            return None, f"PID {raw!r} is not a whole number"
        raw = int(raw)
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if not text:
            return None, "no PID recorded (empty)"
        if not _DECIMAL.fullmatch(text) or len(text) > 20:
            shown = text if len(text) <= 40 else text[:40] + "..."
            return None, f"PID {shown!r} is not a decimal number"
        value = int(text)
    if value <= 0:
        return None, f"PID {value} is not a process id (must be above 1)"
    if value == 1:
        return None, "PID 1 is init, never a daemon's own record"
    if value >= pid_max:
        return None, f"PID {value} is beyond the kernel's pid_max ({pid_max})"
    return value, None


def _number(value: Any) -> Optional[float]:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ticks(value: Any) -> Optional[int]:
    """A start in clock ticks: a whole number of 0 or more, else None (not usable)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number < 0 or not number.is_integer():
        return None
    return int(number)


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).strip()
    return value or None


def normalise_store(store: dict) -> dict:
    """Validate a store description and fill defaults; raise SuiteError naming the field."""
    if hasattr(store, "to_dict"):  # a profile.PidStore
        store = store.to_dict()
    if not isinstance(store, dict):
        raise SuiteError("store must be a dict with at least 'type' and 'path' or 'dsn'")
    kind = store.get("type")
    if kind not in STORE_TYPES:
        raise SuiteError(f"store.type must be one of {', '.join(STORE_TYPES)}, got {kind!r}")
    result = dict(store)
    columns: dict[str, Optional[str]] = {}
    for key, value in (store.get("columns") or {}).items():
        if key not in COLUMN_KEYS:
            raise SuiteError(
                f"store.columns.{key} is not known; use some of {', '.join(COLUMN_KEYS)}"
            )
        if value is not None and not _COLUMN.fullmatch(str(value)):
            raise SuiteError(
                f"store.columns.{key} = {value!r} is not a plain column name ([A-Za-z_][A-Za-z0-9_]*)"
            )
        columns[key] = value
    for key in ("name", "pid"):
        if key in columns and not columns[key]:
            raise SuiteError(f"store.columns.{key} must name a column")
    result["columns"] = columns
    if kind in ("sqlite", "postgresql"):
        table = store.get("table")
        if not table or not _IDENTIFIER.fullmatch(str(table)):
            raise SuiteError(
                f"store.table must be a table name like daemon_pids or schema.daemon_pids, "
                f"got {table!r}"
            )
    if kind in ("pidfile", "sqlite"):
        path = store.get("path")
        files = store.get("files") or {}
        if not path and not files:
            raise SuiteError(f"store.path is required for a {kind} store")
        if path and not os.path.isabs(str(path)):
            raise SuiteError(f"store.path must be an absolute path, got {path!r}")
        for name, file_path in dict(files).items():
            if not os.path.isabs(str(file_path)):
                raise SuiteError(f"store.files.{name} must be an absolute path, got {file_path!r}")
    if kind == "postgresql" and not store.get("dsn"):
        raise SuiteError("store.dsn is required for a postgresql store (e.g. 'dbname=seon')")
    return result


# ----------------------------------------------------------------------------- pidfiles


def _insecure_reason(st: os.stat_result) -> Optional[str]:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}, neither root nor the current user"
    return None


def _read_pidfile(path: str, name: str, pid_max: int) -> Optional[PidRecord]:
    record = PidRecord(name=name, raw_pid=None, pid=None, source=path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None  # no file, no record (a named pidfile that is absent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: the last component is a symlink
            record.error = "refused: pidfile is a symlink (insecure)"
        else:
            record.error = f"cannot open pidfile: {exc.strerror}"
        return record
    try:
        st = os.fstat(fd)
        reason = _insecure_reason(st)
        if reason:
            record.error = f"refused: pidfile is {reason} (insecure)"
            return record
        data = os.read(fd, MAX_PIDFILE_BYTES + 1)
        record.key = (st.st_dev, st.st_ino, data)
    finally:
        os.close(fd)
    if len(data) > MAX_PIDFILE_BYTES:
        record.raw_pid = data[:40].decode("utf-8", "replace")
        record.invalid_reason = f"pidfile is larger than {MAX_PIDFILE_BYTES} bytes"
        return record
    # The PID is the first line; daemons write more after it (PostgreSQL's postmaster.pid: data
    # directory, start time, port, socket directory...), which is not read. Garbage in the
    # first line is still refused (invalid).
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    record.raw_pid = first
    record.pid, record.invalid_reason = parse_pid(first, pid_max)
    return record


def pattern_regex(pattern: Optional[str]) -> re.Pattern[str]:
    """The file-name regex of a pidfile pattern: ``{name}`` captures the record's name,
    ``{port}`` is a number (default pattern ``{name}.pid``)."""
    parts = []
    for literal, field_name, _spec, _conv in string.Formatter().parse(pattern or "{name}.pid"):
        parts.append(re.escape(literal))
        if field_name == "name":
            parts.append("(?P<name>.+?)" if "(?P<name>" not in "".join(parts) else "(?P=name)")
        elif field_name == "port":
            parts.append("[0-9]+")
        elif field_name is not None:
            raise SuiteError(
                f"store.pattern may only use {{name}} and {{port}}, not {{{field_name}}}"
            )
    return re.compile("".join(parts))  # applied with fullmatch


def _pidfile_paths(store: dict) -> list[tuple[str, str]]:
    """(name, path) pairs: every matching file in a directory (``*.pid`` or store.pattern), a
    single file, or the named files of store['files']."""
    pairs: list[tuple[str, str]] = []
    path = store.get("path")
    if path:
        path = str(path)
        regex = pattern_regex(store.get("pattern"))
        if os.path.isdir(path) and not os.path.islink(path):
            for entry in sorted(os.listdir(path)):
                found = regex.fullmatch(entry)
                if found and found.group("name"):
                    pairs.append((found.group("name"), os.path.join(path, entry)))
        elif os.path.islink(path) or os.path.exists(path):
            base = os.path.basename(path)
            found = regex.fullmatch(base)
            pairs.append((found.group("name") if found else base, path))
        else:
            raise SuiteError(f"store.path {path} does not exist (pidfile directory or file)")
    for name, file_path in sorted(dict(store.get("files") or {}).items()):
        pairs.append((str(name), str(file_path)))
    return pairs


def _remove_pidfile(record: PidRecord) -> None:
    """Unlink the pidfile only if it is still the file and content that were judged."""
    directory, name = os.path.split(record.source)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        try:
            st = os.fstat(fd)
            data = os.read(fd, MAX_PIDFILE_BYTES + 1)
        finally:
            os.close(fd)
        if (st.st_dev, st.st_ino, data) != record.key or _insecure_reason(st):
            raise SuiteError(
                f"{record.source} changed since it was read; not removed (run again to re-judge)"
            )
        os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


# ----------------------------------------------------------------------------- databases


def _quote(identifier: str) -> str:
    return ".".join(f'"{part}"' for part in identifier.split("."))


def _resolve_columns(store: dict, available: list[str]) -> dict[str, str]:
    """Logical field -> column. Fields named in store.columns are used as given (None = the
    store has no such column); the others default to the column of the same name if the table
    has one. ``name`` and ``pid`` must exist."""
    explicit = store["columns"]
    resolved: dict[str, str] = {}
    for key in COLUMN_KEYS:
        if key in explicit:
            if explicit[key]:
                resolved[key] = str(explicit[key])
        elif key in available:
            resolved[key] = key
    lowered = {column.lower() for column in available}
    missing = [
        f"{key} (column {resolved.get(key, key)!r})"
        for key in COLUMN_KEYS
        if (key in resolved and resolved[key].lower() not in lowered)
        or (key in ("name", "pid") and key not in resolved)
    ]
    if missing:
        raise SuiteError(
            f"table {store['table']} has no column for {', '.join(missing)}; "
            f"its columns are {', '.join(available) or 'none'} (set store.columns)"
        )
    return resolved


def _select_sql(store: dict, available: list[str]) -> tuple[str, list[str]]:
    columns = _resolve_columns(store, available)
    keys = [key for key in COLUMN_KEYS if key in columns]
    select = ", ".join(_quote(columns[key]) for key in keys)
    return f"SELECT {select} FROM {_quote(store['table'])}", keys


def _probe_sql(store: dict) -> str:
    return f"SELECT * FROM {_quote(store['table'])} LIMIT 0"


def _rows_to_records(rows: list, keys: list[str], source: str, pid_max: int) -> list[PidRecord]:
    records = []
    for row in rows:
        values = dict(zip(keys, row))
        raw_pid = values.get("pid")
        pid, invalid = parse_pid(raw_pid, pid_max)
        records.append(
            PidRecord(
                name=_text(values.get("name")) or "",
                raw_pid=raw_pid,
                pid=pid,
                invalid_reason=invalid,
                source=source,
                start_time=_number(values.get("start_time")),
                boot_id=_text(values.get("boot_id")),
                host=_text(values.get("host")),
                exe=_text(values.get("exe")),
                key=(values.get("name"), raw_pid),
                start_ticks=_ticks(values.get("start_ticks")),
            )
        )
    return records


def _sqlite_connect(path: str, writable: bool):
    import sqlite3

    if not os.path.isfile(path):
        raise SuiteError(f"store.path {path} is not an existing SQLite database file")
    mode = "rw" if writable else "ro"
    # every byte that is not unreserved in a URI is percent-encoded ('%' included: SQLite decodes
    # %HH in a file: URI, so 'pct%41.db' would otherwise open 'pctA.db')
    uri = "file:" + urllib.parse.quote(os.fsencode(path), safe="/") + f"?mode={mode}"
    try:
        return sqlite3.connect(uri, uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise SuiteError(f"cannot open SQLite store {path}: {exc}")


def _read_sqlite(store: dict, pid_max: int) -> list[PidRecord]:
    import sqlite3

    conn = _sqlite_connect(store["path"], writable=False)
    try:
        probe = conn.execute(_probe_sql(store))
        sql, keys = _select_sql(store, [d[0] for d in probe.description or ()])
        rows = conn.execute(sql).fetchall()
    except sqlite3.Error as exc:
        raise SuiteError(
            f"cannot read table {store['table']} in {store['path']}: {exc} "
            "(check store.table and store.columns)"
        )
    finally:
        conn.close()
    return _rows_to_records(rows, keys, f"{store['path']}:{store['table']}", pid_max)


def _pg_connect(store: dict):
    try:
        import psycopg2  # imported lazily: only PostgreSQL stores need it
    except ImportError:
        raise SuiteError(
            "store.type postgresql needs the Python module psycopg2 on the target; "
            "install psycopg2 or psycopg2-binary"
        )
    try:
        return psycopg2.connect(store["dsn"], connect_timeout=10)
    except psycopg2.Error as exc:
        raise SuiteError(f"cannot connect to PostgreSQL store (store.dsn): {exc}".strip())


def _pg_source(store: dict) -> str:
    return f"postgresql:{store['table']}"


def _read_postgresql(store: dict, pid_max: int) -> list[PidRecord]:
    import psycopg2

    conn = _pg_connect(store)
    try:
        with conn.cursor() as cursor:
            cursor.execute(_probe_sql(store))
            sql, keys = _select_sql(store, [d[0] for d in cursor.description or ()])
            cursor.execute(sql)
            rows = cursor.fetchall()
        conn.rollback()
    except psycopg2.Error as exc:
        raise SuiteError(
            f"cannot read table {store['table']} (store.dsn): {exc} "
            "(check store.table and store.columns)".strip()
        )
    finally:
        conn.close()
    return _rows_to_records(rows, keys, _pg_source(store), pid_max)


def _remove_row(
    store: dict, record: PidRecord, conn: Any, error: type[Exception], same_as: str
) -> None:
    """Delete the row of ``record`` (its name and raw pid) from ``store['table']`` through the
    DB-API connection ``conn`` (closed afterwards). What differs between the databases is passed
    in: ``error`` is the driver's exception class, ``same_as`` the null-safe equality with its
    placeholder (SQLite ``IS ?``, PostgreSQL ``IS NOT DISTINCT FROM %s``)."""
    columns = {"name": "name", "pid": "pid", **store["columns"]}
    name, raw_pid = record.key
    sql = (
        f"DELETE FROM {_quote(store['table'])} "
        f"WHERE {_quote(columns['name'])} {same_as} AND {_quote(columns['pid'])} {same_as}"
    )
    try:
        with conn:  # commits, or rolls back on an error
            conn.cursor().execute(sql, (name, raw_pid))
    except error as exc:
        raise SuiteError(f"cannot remove record {record.name} from {record.source}: {exc}")
    finally:
        conn.close()


# ----------------------------------------------------------------------------- public API


def read_records(store: dict, pid_max: Optional[int] = None) -> list[PidRecord]:
    """Read every PID record of ``store`` (a profile ``pid_store`` dict)."""
    store = normalise_store(store)
    pid_max = pid_max or read_pid_max()
    if store["type"] == "pidfile":
        records = (_read_pidfile(path, name, pid_max) for name, path in _pidfile_paths(store))
        return [record for record in records if record is not None]
    if store["type"] == "sqlite":
        return _read_sqlite(store, pid_max)
    return _read_postgresql(store, pid_max)


def remove_record(store: dict, record: PidRecord) -> None:
    """Delete exactly ``record`` from ``store``; never looks at or signals a process."""
    if record.error:
        raise SuiteError(f"record {record.name} ({record.source}) was refused; not removed")
    store = normalise_store(store)
    if store["type"] == "pidfile":
        _remove_pidfile(record)
    elif store["type"] == "sqlite":
        import sqlite3

        conn = _sqlite_connect(store["path"], writable=True)
        _remove_row(store, record, conn, sqlite3.Error, "IS ?")
    else:
        conn = _pg_connect(store)  # refuses clearly when psycopg2 is missing
        import psycopg2

        _remove_row(store, record, conn, psycopg2.Error, "IS NOT DISTINCT FROM %s")
