# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The direct /proc reader of proctable: its parsers, and a scan of a fake procfs in tmp_path."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite import proctable
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
    ProcessTable,
    ProcInfo,
    clean_exe_link,
    extend_name,
    joined_cmdline,
    parse_cmdline,
    parse_real_uid,
    parse_stat,
    scan_procfs,
)

BTIME = 1_700_000_000
TICKS = os.sysconf("SC_CLK_TCK")


def stat_line(pid: int, comm: str, state: str, ppid: int, start_ticks: int) -> bytes:
    # 52 fields as the kernel prints them; field 22 (index 19 after the comm) is starttime
    rest = [state, str(ppid), *(["0"] * 17), str(start_ticks), *(["0"] * 30)]
    return f"{pid} ({comm}) {' '.join(rest)}\n".encode()


@pytest.mark.parametrize(
    ("comm", "expected"),
    [
        ("sshd", "sshd"),
        ("my daemon", "my daemon"),
        ("a) (b", "a) (b"),  # the last ')' ends the name
        ("x) S 1 2 (y", "x) S 1 2 (y"),
        ("", ""),
    ],
)
def test_parse_stat_name_with_spaces_and_parentheses(comm, expected):
    assert parse_stat(stat_line(42, comm, "Z", 7, 123456)) == (expected, "Z", 7, 123456)


def test_parse_stat_real_kernel_line():
    data = b"1 (systemd) S 0 1 1 0 -1 4194560 5 6 7 8 9 10 11 12 20 0 1 0 31 1000 2 3\n"
    assert parse_stat(data) == ("systemd", "S", 0, 31)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", []),
        (b"/usr/sbin/sshd\x00-D\x00", ["/usr/sbin/sshd", "-D"]),
        (b"a\x00b c\x00", ["a", "b c"]),  # NUL-separated: spaces inside an argument stay
        (b"a\x00\x00", ["a", ""]),  # only one trailing NUL is dropped
        (b"a\x00b\x00\x00\x00", ["a", "b", "", ""]),
        # rewritten argv without NUL separators: split on spaces
        (b"refsuite-qm --config /x.ini", ["refsuite-qm", "--config", "/x.ini"]),
        (b"nginx: worker process ", ["nginx:", "worker", "process"]),  # trailing space dropped
        # rewritten, one trailing NUL, no other NUL: split on spaces too (psutil issue 1179)
        (b"refsuite-qm --config /x.ini\x00", ["refsuite-qm", "--config", "/x.ini"]),
        # rewritten over the old arguments with NUL padding: several NULs, no space split
        (b"refsuite-qm --config /x.ini\x00\x00", ["refsuite-qm --config /x.ini", ""]),
        (b"one\x00", ["one"]),
        (b"caf\xc3\xa9\x00\xff\x00", ["caf\xe9", "\udcff"]),  # fs encoding, surrogateescape
        (b"a\r\nb\x00c\rd\x00", ["a\nb", "c\nd"]),  # psutil reads it in text mode
    ],
)
def test_parse_cmdline_like_psutil(raw, expected):
    assert parse_cmdline(raw) == expected
    # what the daemons' regexes read: the same arguments joined with spaces
    assert joined_cmdline(raw) == " ".join(expected)


def test_parse_real_uid_takes_the_real_uid():
    status = (
        b"Name:\tsshd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n"
    )
    assert parse_real_uid(status) == 1000
    assert parse_real_uid(b"Name:\tx\n") is None


def test_clean_exe_link(tmp_path):
    gone = tmp_path / "gone"
    assert clean_exe_link(f"{gone} (deleted)") == str(gone)
    kept = tmp_path / "really (deleted)"
    kept.write_text("")
    assert clean_exe_link(str(kept)) == str(kept)  # a file by that name exists: kept as is
    assert clean_exe_link("/usr/bin/x\x00garbage") == "/usr/bin/x"


def test_extend_name_only_for_cut_names():
    assert extend_name("gnome-keyring-d", ["/usr/bin/gnome-keyring-daemon", "-f"]) == (
        "gnome-keyring-daemon"
    )
    assert extend_name("gnome-keyring-d", ["/usr/bin/other"]) == "gnome-keyring-d"
    assert extend_name("short", ["/usr/bin/short-and-longer"]) == "short"  # < 15 characters
    assert extend_name("fifteen-chars-x", ()) == "fifteen-chars-x"


class FakeProc:
    """A procfs in tmp_path: /proc/stat, /proc/self/stat and per-process files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "self").mkdir(parents=True)
        (root / "self" / "stat").write_bytes(stat_line(1, "init", "S", 0, 1))
        (root / "stat").write_text(f"cpu  1 2 3\nbtime {BTIME}\nprocesses 5\n")
        (root / "net").mkdir()

    def add(
        self,
        pid: int,
        comm: str,
        ppid: int,
        cmdline: bytes,
        *,
        state: str = "S",
        start: int = 100,
        uid: int | None = 0,
        exe: str | None = None,
    ) -> Path:
        base = self.root / str(pid)
        (base / "fd").mkdir(parents=True)
        (base / "stat").write_bytes(stat_line(pid, comm, state, ppid, start))
        (base / "cmdline").write_bytes(cmdline)
        uid_line = f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n" if uid is not None else ""
        (base / "status").write_text(f"Name:\t{comm}\nState:\t{state}\n{uid_line}Gid:\t0\n")
        if exe is not None:
            (base / "exe").symlink_to(exe)
        return base


@pytest.fixture
def fake_proc(tmp_path):
    return FakeProc(tmp_path / "proc")


def test_scan_procfs_reads_every_field(fake_proc, tmp_path):
    me = pwd.getpwuid(os.getuid()).pw_name
    binary = tmp_path / "bin" / "fastscan-longer-daemon-name"
    binary.parent.mkdir()
    binary.write_text("")
    fake_proc.add(
        10,
        "fastscan-longer",
        1,
        f"{binary}\x00--config\x00/a b.ini\x00".encode(),
        start=250,
        uid=os.getuid(),
        exe=str(binary),
    )
    fake_proc.add(11, "refsuite-qm", 10, b"refsuite-qm --config /x.ini", state="R")
    fake_proc.add(12, "kthreadd", 0, b"", state="I", exe=None)
    fake_proc.add(13, "dead one", 10, b"", state="Z", uid=None)
    fake_proc.add(14, "unknownuid", 1, b"x\x00", uid=4_000_123, state="?")
    (fake_proc.root / "notapid").mkdir()
    found = {proc.pid: proc for proc in scan_procfs(str(fake_proc.root))}
    assert sorted(found) == [10, 11, 12, 13, 14]
    assert found[10] == ProcInfo(
        pid=10,
        ppid=1,
        name="fastscan-longer-daemon-name",  # comm cut at 15, extended from argv[0]
        cmdline=(str(binary), "--config", "/a b.ini"),
        exe=str(binary),
        create_time=BTIME + 250 / TICKS,
        status="sleeping",
        username=me,
        uid=os.getuid(),
        comm="fastscan-longer",
        start_ticks=250,
        exe_read=True,
        exe_deleted=False,
    )
    assert found[11].cmdline == ("refsuite-qm", "--config", "/x.ini")
    assert found[11].status == "running" and found[11].exe is None
    assert (found[12].cmdline, found[12].exe, found[12].status) == ((), None, "idle")
    assert (found[13].name, found[13].status, found[13].username) == ("dead one", "zombie", None)
    assert found[13].is_zombie
    assert found[14].username == "4000123"  # no passwd entry: the number, like psutil
    assert found[14].status == "?"


def test_exe_guessed_from_an_absolute_argv0_when_the_link_is_missing(fake_proc, tmp_path):
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    fake_proc.add(20, "tool", 1, f"{tool}\x00".encode())
    fake_proc.add(21, "tool", 1, b"tool\x00")  # relative: not guessed
    found = {proc.pid: proc for proc in scan_procfs(str(fake_proc.root))}
    assert found[20].exe == str(tool)
    assert found[21].exe is None


def test_vanished_processes_are_skipped(fake_proc):
    fake_proc.add(30, "alive", 1, b"alive\x00")
    half = fake_proc.add(31, "half", 1, b"half\x00")
    (half / "cmdline").unlink()  # exited between reading stat and cmdline
    (fake_proc.root / "32").mkdir()  # exited before anything was read
    assert [proc.pid for proc in scan_procfs(str(fake_proc.root))] == [30]


def test_scan_uses_procfs_when_available_else_psutil(fake_proc, monkeypatch):
    fake_proc.add(40, "only-here", 1, b"only-here\x00")
    monkeypatch.setattr(proctable, "PROC", str(fake_proc.root))
    table = ProcessTable.scan(self_pid=40)
    assert [proc.pid for proc in table] == [40]
    # forced psutil: the real process table, not the fake one
    assert os.getpid() in ProcessTable.scan(use_procfs=False)
    # no Linux-like procfs: psutil is used
    (fake_proc.root / "self" / "stat").unlink()
    assert not proctable.procfs_available(str(fake_proc.root))
    assert os.getpid() in ProcessTable.scan()


def test_boot_time_missing_is_a_clear_error(fake_proc):
    (fake_proc.root / "stat").write_text("cpu 1 2 3\n")
    with pytest.raises(proctable.SuiteError, match="btime"):
        scan_procfs(str(fake_proc.root))


def test_named_scan_reads_command_lines_and_the_rest_only_when_looked_up(fake_proc, monkeypatch):
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
        load_profile,
    )

    fake_proc.add(1, "init", 0, b"/sbin/init\x00")
    fake_proc.add(50, "fs-qm", 1, b"fs-qm\x00--config\x00/a.ini\x00", start=300)
    fake_proc.add(51, "fs-stpd", 50, b"fs-stpd\x00--config\x00/a.ini\x00", start=200)
    fake_proc.add(52, "fs-stpd", 1, b"fs-stpd\x00--config\x00/b.ini\x00")  # another instance
    fake_proc.add(53, "bash", 1, b"bash\x00")
    fake_proc.add(54, "fs-stpd", 50, b"", state="Z")  # a zombie: no command line
    for pid in range(60, 90):  # unrelated processes, never read beyond their command line
        fake_proc.add(pid, "idle", 1, b"idle\x00")
    monkeypatch.setattr(proctable, "PROC", str(fake_proc.root))
    profile = load_profile(
        {
            "suite": {"name": "fs", "roles": ["server"]},
            "daemons": [
                {"name": "qm", "roles": ["server"], "match": {"cmdline": "^fs-qm( |$)"}},
                {"name": "stpd", "roles": ["server"], "match": {"cmdline": "^fs-stpd( |$)"}},
            ],
        },
        "test",
    )
    full = ProcessTable.scan(self_pid=53)
    named = ProcessTable.scan_named(self_pid=53)
    for daemon in profile.daemons:
        for instance in (None, "/a.ini"):
            assert named.named(daemon, instance) == full.named(daemon, instance)
            assert named.matching(daemon, instance) == full.matching(daemon, instance)
    assert [p.pid for p in named.named(profile.daemon("stpd"))] == [52, 51]  # by start time
    assert named.ancestors(51) == full.ancestors(51) == [50, 1]
    assert named.excluded == full.excluded == {53, 1}
    assert named.get(51) == full.get(51) and named.get(999) is None and 999 not in named
    # the idle processes were read for their command line only
    assert not any(pid in named._loaded for pid in range(60, 90))
    # a question about every process reads them all, and answers like the full scan
    assert named.children(1) == full.children(1)
    assert sorted(p.pid for p in named) == sorted(p.pid for p in full) and len(named) == len(full)


@pytest.mark.parametrize("size", [0, 10, proctable._READ_SIZE, 2 * proctable._READ_SIZE + 7])
def test_read_returns_the_whole_file(tmp_path, size):
    """A read shorter than asked ends the file; a full one is followed by more reads."""
    path = tmp_path / "data"
    data = bytes(i % 251 for i in range(size))
    path.write_bytes(data)
    assert proctable._read(str(path)) == data
