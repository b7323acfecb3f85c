# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import pidstore
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError

PID_MAX = 32768


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234", 1234),
        (" 42\n", 42),
        (4321, 4321),
        (77.0, 77),
        ("+5", 5),
        (PID_MAX - 1, PID_MAX - 1),
    ],
)
def test_parse_pid_accepts_real_pids(raw, expected):
    assert pidstore.parse_pid(raw, PID_MAX) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "not a decimal"),
        ("12abc", "not a decimal"),
        ("0x10", "not a decimal"),
        ("0", "not a process id"),
        (0, "not a process id"),
        ("1", "init"),
        ("-5", "not a process id"),
        (-1, "not a process id"),
        (str(PID_MAX), "pid_max"),
        ("99999999999", "pid_max"),
        ("9" * 200, "not a decimal"),
        (3.5, "whole number"),
        (True, "not a number"),
    ],
)
def test_parse_pid_rejects_garbage(raw, words):
    pid, reason = pidstore.parse_pid(raw, PID_MAX)
    assert pid is None
    assert words in reason


def test_read_pid_max_matches_kernel():
    assert pidstore.read_pid_max() == int(Path("/proc/sys/kernel/pid_max").read_text())


def _pidfile(directory: Path, name: str, text: str, mode: int = 0o644) -> Path:
    path = directory / f"{name}.pid"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_pidfile_directory_reads_every_pid_file(tmp_path):
    _pidfile(tmp_path, "qm", "1234\n")
    _pidfile(tmp_path, "sms", "garbage")
    (tmp_path / "notes.txt").write_text("5")
    records = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)}, pid_max=PID_MAX)
    by_name = {record.name: record for record in records}
    assert sorted(by_name) == ["qm", "sms"]
    assert by_name["qm"].pid == 1234
    assert by_name["qm"].only_pid
    assert by_name["sms"].pid is None
    assert "not a decimal" in by_name["sms"].invalid_reason


def test_multi_line_pidfile_gives_the_pid_of_its_first_line(tmp_path):
    # PostgreSQL's postmaster.pid: PID, data directory, start time, port, socket directory...
    _pidfile(tmp_path, "qm", "4242\n/var/lib/postgresql/15/main\n1700000000\n5432\n/run\n")
    (record,) = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)}, PID_MAX)
    assert (record.pid, record.invalid_reason, record.raw_pid) == (4242, None, "4242")


def test_garbage_in_the_first_line_is_still_invalid(tmp_path):
    _pidfile(tmp_path, "qm", "12 34\n5432\n")
    (record,) = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)}, PID_MAX)
    assert record.pid is None
    assert "not a decimal number" in record.invalid_reason


def test_named_pidfiles_and_missing_ones(tmp_path):
    present = _pidfile(tmp_path, "whatever", "4242")
    store = {
        "type": "pidfile",
        "files": {"qm": str(present), "sms": str(tmp_path / "absent.pid")},
    }
    records = pidstore.read_records(store, PID_MAX)
    assert [(r.name, r.pid) for r in records] == [("qm", 4242)]


def test_single_pidfile_path(tmp_path):
    path = _pidfile(tmp_path, "seonrd", "4242")
    (record,) = pidstore.read_records({"type": "pidfile", "path": str(path)}, PID_MAX)
    assert (record.name, record.pid) == ("seonrd", 4242)


def test_symlinked_pidfile_is_refused_unread(tmp_path):
    target = tmp_path / "target"
    target.write_text("4242")
    (tmp_path / "qm.pid").symlink_to(target)
    (record,) = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)}, PID_MAX)
    assert record.pid is None
    assert record.raw_pid is None
    assert "symlink" in record.error


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646, 0o622])
def test_group_or_other_writable_pidfile_is_refused(tmp_path, mode):
    _pidfile(tmp_path, "qm", "4242", mode)
    (record,) = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)}, PID_MAX)
    assert record.pid is None
    assert "writable by group or others" in record.error


def test_pidfile_of_foreign_owner_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test needs root to chown a file to another user")
    path = _pidfile(tmp_path, "qm", "4242")
    os.chown(path, 65534, 65534)
    (record,) = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)}, PID_MAX)
    assert "owned by uid 65534" in record.error


def test_remove_pidfile_only_when_unchanged(tmp_path):
    path = _pidfile(tmp_path, "qm", "4242")
    store = {"type": "pidfile", "path": str(tmp_path)}
    (record,) = pidstore.read_records(store, PID_MAX)
    path.unlink()
    _pidfile(tmp_path, "qm", "4243")  # a new file (new inode) written by a restarted daemon
    with pytest.raises(SuiteError, match="changed since it was read"):
        pidstore.remove_record(store, record)
    assert path.exists()
    (fresh,) = pidstore.read_records(store, PID_MAX)
    pidstore.remove_record(store, fresh)
    assert not path.exists()


def test_refused_record_is_never_removed(tmp_path):
    _pidfile(tmp_path, "qm", "4242", 0o666)
    store = {"type": "pidfile", "path": str(tmp_path)}
    (record,) = pidstore.read_records(store, PID_MAX)
    with pytest.raises(SuiteError, match="refused"):
        pidstore.remove_record(store, record)
    assert (tmp_path / "qm.pid").exists()


def _sqlite(tmp_path: Path, rows: list[tuple]) -> str:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE daemon_pids (name TEXT, pid INTEGER, start_time REAL, boot_id TEXT,"
            " host TEXT, exe TEXT)"
        )
        conn.executemany("INSERT INTO daemon_pids VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    return str(path)


def test_sqlite_records_and_precise_removal(tmp_path):
    db = _sqlite(
        tmp_path,
        [
            ("qm", 4242, 1700000000.5, "b", "h", "/usr/bin/python3"),
            ("sms", "junk", None, None, None, None),
            ("db", None, None, None, None, None),
        ],
    )
    store = {"type": "sqlite", "path": db, "table": "daemon_pids"}
    records = {r.name: r for r in pidstore.read_records(store, PID_MAX)}
    assert records["qm"].pid == 4242
    assert records["qm"].start_time == 1700000000.5
    assert records["qm"].exe == "/usr/bin/python3"
    assert not records["qm"].only_pid
    assert records["sms"].pid is None and records["sms"].raw_pid == "junk"
    assert "empty" in records["db"].invalid_reason
    pidstore.remove_record(store, records["sms"])
    pidstore.remove_record(store, records["db"])
    left = {r.name for r in pidstore.read_records(store, PID_MAX)}
    assert left == {"qm"}


def test_sqlite_row_rewritten_meanwhile_is_kept(tmp_path):
    db = _sqlite(tmp_path, [("qm", 4242, None, None, None, None)])
    store = {"type": "sqlite", "path": db, "table": "daemon_pids"}
    (record,) = pidstore.read_records(store, PID_MAX)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE daemon_pids SET pid = 5555")
    conn.close()
    pidstore.remove_record(store, record)
    (after,) = pidstore.read_records(store, PID_MAX)
    assert after.pid == 5555


def test_sqlite_custom_columns(tmp_path):
    path = tmp_path / "seon.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE procs (daemon TEXT, process_id TEXT)")
        conn.execute("INSERT INTO procs VALUES ('seonrd', '3771')")
    conn.close()
    store = {
        "type": "sqlite",
        "path": str(path),
        "table": "procs",
        "columns": {
            "name": "daemon",
            "pid": "process_id",
            "start_time": None,
            "boot_id": None,
            "host": None,
            "exe": None,
        },
    }
    (record,) = pidstore.read_records(store, PID_MAX)
    assert (record.name, record.pid, record.only_pid) == ("seonrd", 3771, True)


@pytest.mark.parametrize(
    ("store", "words"),
    [
        ({"type": "mysql"}, "store.type"),
        ({"type": "sqlite", "path": "/x.db"}, "store.table"),
        ({"type": "sqlite", "path": "/x.db", "table": "t; DROP TABLE x"}, "store.table"),
        ({"type": "sqlite", "path": "rel.db", "table": "t"}, "absolute"),
        ({"type": "pidfile"}, "store.path"),
        ({"type": "postgresql", "table": "t"}, "store.dsn"),
        ({"type": "pidfile", "path": "/x", "columns": {"pids": "p"}}, "store.columns.pids"),
        ({"type": "pidfile", "path": "/x", "columns": {"pid": "p id"}}, "store.columns.pid"),
    ],
)
def test_bad_store_descriptions_name_the_field(store, words):
    with pytest.raises(SuiteError, match=words.replace(".", r"\.")):
        pidstore.normalise_store(store)


def test_missing_sqlite_file_is_a_clear_error(tmp_path):
    store = {"type": "sqlite", "path": str(tmp_path / "nope.db"), "table": "t"}
    with pytest.raises(SuiteError, match="not an existing SQLite database"):
        pidstore.read_records(store, PID_MAX)
