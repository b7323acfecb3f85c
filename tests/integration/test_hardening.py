# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad and hostile input, each case on real files, processes or sockets (issue: hardening).

The sections follow docs/reliability.md, "Hostile input": one test (or a few) per item.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from modrun import kill, run_module_file, shipped_profile, spawn

from ansible_collections.daemonops.suite.plugins.module_utils._suite import (
    ini_config,
    pidstore,
    safe_delete,
    suite_ini,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import ProfileError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile_file,
)

TOP = Path(__file__).resolve().parents[2]
MODULES = TOP / "plugins" / "modules"
REFSUITE_PROFILE = shipped_profile("refsuite")
INI = "[suite]\nrole = server\n\n[ui]\nport = 11401\n"


def _facts() -> suite_ini.ProfileFacts:
    return suite_ini.ProfileFacts(
        name="refsuite", roles=["server", "rds", "client"], ports={"ui": [11401], "sshd": [11322]}
    )


# -- 1. config backup never follows a planted link ------------------------------------------
def test_config_backup_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text(INI)
    ini.chmod(0o640)
    decoy = tmp_path / "decoy-shadow"
    decoy.write_text("root:secret\n")
    # every name the old code could have picked in the next seconds, planted as a link
    planted = []
    now = time.time()
    for offset in range(-1, 8):
        stamp = time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime(now + offset))
        link = tmp_path / f"refsuite.ini.{os.getpid()}.{stamp}~"
        link.symlink_to(decoy)
        planted.append(link)
    result = ini_config.IniConfig(
        str(ini), {"suite": {"role": "rds"}}, "present", _facts(), backup=True
    ).run()
    assert decoy.read_text() == "root:secret\n"
    assert all(link.is_symlink() for link in planted)
    backup = Path(result["backup_file"])
    assert backup.parent == tmp_path and not backup.is_symlink()
    assert backup.name.startswith("refsuite.ini.") and backup.name.endswith("~")
    assert backup.read_text() == INI and stat.S_IMODE(backup.stat().st_mode) == 0o640
    assert "role = rds" in ini.read_text()


# -- 3. config refuses control characters ----------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "what"),
    [
        ({"suite": {"bind": "127.0.0.1\r[ctrl]\renabled = true\rport = 11322"}}, "value"),
        ({"suite": {"bind": "a\x0bb"}}, "value"),
        ({"suite": {"bind": "a\u2028b"}}, "value"),
        ({"suite": {"bind\rport": "1"}}, "key"),
        ({"ui\r[ctrl]": {"port": 11401}}, "section name"),
    ],
)
def test_config_refuses_control_characters(tmp_path: Path, settings: dict, what: str) -> None:
    ini = tmp_path / "refsuite.ini"
    ini.write_text(INI)
    result = run_module_file(
        MODULES / "config.py",
        {"profile_data": REFSUITE_PROFILE, "config_file": str(ini), "settings": settings},
        tmp_path,
    )
    assert result.get("failed") is True, result
    assert f"the {what} contains the control character" in result["msg"]
    assert ini.read_text() == INI


# -- 4. cluster_data never returns Ansible's reserved `skipped` ------------------------------
def _cluster_profile(cluster_path: str | None = None) -> dict:
    data: dict = {
        "suite": {"name": "hardening", "roles": ["server"]},
        "daemons": [
            {"name": "qm", "roles": ["server"], "match": {"cmdline": "^hardening-qm( |$)"}}
        ],
    }
    if cluster_path is not None:
        data["suite"]["cluster_data"] = {"path": cluster_path, "depth": 2}
    return data


def test_cluster_data_result_is_not_displayed_as_skipped(ansible_module, tmp_path: Path) -> None:
    tree = tmp_path / "cluster"
    (tree / "node1").mkdir(parents=True)
    (tree / "node1" / "members.dat").write_text("m")
    args = {"profile_data": _cluster_profile(), "path": str(tree), "depth": 2}
    result = ansible_module("cluster_data", args, via="playbook")
    assert result["changed"] is True and "skipped" not in result, result
    assert result["not_descended"] == [] and result["removed"] == [f"{tree}/node1/members.dat"]


# -- 5. cluster_data and names that are not UTF-8 --------------------------------------------
def test_cluster_data_non_utf8_names_round_trip(ansible_module, tmp_path: Path) -> None:
    tree = tmp_path / "cluster"
    (tree / "node1").mkdir(parents=True)
    (tree / "node2").mkdir()
    bad = os.path.join(os.fsencode(tree / "node1"), b"bad\xff\xfe.dat")
    with open(bad, "wb") as handle:
        handle.write(b"x")
    os.mkdir(os.path.join(os.fsencode(tree / "node2"), b"dir\xe9"))
    (tree / "node2" / "ok.dat").write_text("y")
    args = {"profile_data": _cluster_profile(), "path": str(tree), "depth": 2}
    planned = ansible_module("cluster_data", args, check=True)
    expected = sorted([f"{tree}/node1/bad\\xff\\xfe.dat", f"{tree}/node2/dir\\xe9",
                       f"{tree}/node2/ok.dat"])  # fmt: skip
    assert planned.get("failed") is not True, planned
    assert sorted(planned["removed"]) == expected and os.path.exists(bad)
    done = ansible_module("cluster_data", args)
    assert done.get("failed") is not True and done["changed"] is True, done
    assert sorted(done["removed"]) == expected
    assert sorted(os.listdir(tree)) == ["node1", "node2"]
    assert os.listdir(tree / "node1") == [] and os.listdir(tree / "node2") == []


# -- 6. cluster_data: entries that cannot be removed, and very deep trees ---------------------
def _chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def test_cluster_data_immutable_file_is_kept_and_reported(tmp_path: Path) -> None:
    tree = tmp_path / "cluster"
    (tree / "node1" / "sub").mkdir(parents=True)
    (tree / "node2").mkdir()
    immutable = tree / "node1" / "sub" / "locked.dat"
    immutable.write_text("keep")
    (tree / "node1" / "sub" / "other.dat").write_text("o")
    (tree / "node1" / "a.dat").write_text("a")
    (tree / "node2" / "b.dat").write_text("b")
    _chattr("+i", immutable)
    try:
        result = run_module_file(
            MODULES / "cluster_data.py",
            {"profile_data": _cluster_profile(), "path": str(tree), "depth": 2},
            tmp_path,
        )
    finally:
        _chattr("-i", immutable)
    assert result.get("failed") is True, result
    assert "unexpected error" not in result["msg"]
    assert "removed 2 of 3 entries" in result["msg"] and "locked.dat" in result["msg"]
    assert result["changed"] is True
    assert sorted(result["removed"]) == [f"{tree}/node1/a.dat", f"{tree}/node2/b.dat"]
    assert result["kept"] == [f"{immutable}: not removed (Operation not permitted)"]
    # exactly what was reported is gone; what was kept is there
    assert immutable.read_text() == "keep" and not (tree / "node1" / "sub" / "other.dat").exists()
    assert not (tree / "node1" / "a.dat").exists() and not (tree / "node2" / "b.dat").exists()


def test_cluster_data_clears_a_1500_deep_tree(tmp_path: Path) -> None:
    tree = tmp_path / "cluster"
    (tree / "node1").mkdir(parents=True)
    fd = os.open(tree / "node1", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _level in range(1500):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("bottom.dat", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("z")
    finally:
        os.close(fd)
    (tree / "keep-me-sibling").mkdir()
    try:
        result = run_module_file(
            MODULES / "cluster_data.py",
            {"profile_data": _cluster_profile(), "path": str(tree), "depth": 2},
            tmp_path,
        )
        left = os.listdir(tree / "node1")
    finally:  # a deep tree left behind would break pytest's own (recursive) clean-up
        subprocess.run(["rm", "-rf", str(tree / "node1" / "d")], check=True)
    assert result.get("failed") is not True, result.get("msg")
    assert result["removed"] == [f"{tree}/node1/d"] and result["kept"] == []
    assert sorted(os.listdir(tree)) == ["keep-me-sibling", "node1"] and left == []


# -- 7. bounded reads of untrusted content, bounded values in errors --------------------------
def _archive(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_install_refuses_a_huge_version_file_unread(tmp_path: Path) -> None:
    archive = tmp_path / "release.tar.gz"
    huge = b"1" * (20 * 1024 * 1024)  # compresses to a few kB
    digest = _archive(archive, {"VERSION": huge, "bin/refsuite": b"#!/bin/sh\n"})
    result = run_module_file(
        MODULES / "install.py",
        {"prefix": str(tmp_path / "opt"), "source": "archive", "archive": str(archive),
         "sha256": digest},
        tmp_path,
    )  # fmt: skip
    assert result.get("failed") is True, result
    assert "VERSION file of 20971520 bytes" in result["msg"] and len(result["msg"]) < 500
    assert len(json.dumps(result)) < 10_000
    assert not (tmp_path / "opt" / "releases").exists()


def test_profile_error_quotes_a_bounded_value(tmp_path: Path) -> None:
    # 9**7 leaves once the aliases are expanded: a repr of about 24 MB
    levels = ["&l0 [" + ", ".join(["x"] * 9) + "]"]
    for level in range(1, 7):
        levels.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    bomb = "[" + ", ".join(levels) + "]"
    source = tmp_path / "bomb.yml"
    source.write_text(
        "suite: {name: bomb, roles: [server]}\n"
        f"daemons:\n  - name: qm\n    roles: [server]\n    match: {{cmdline: qm}}\n"
        f"    enabled: {bomb}\n"
    )
    assert len(source.read_bytes()) < 1000
    with pytest.raises(ProfileError) as caught:
        load_profile_file(str(source))
    message = str(caught.value)
    assert "enabled: must be true or false, got a list [" in message
    assert len(message) < 2200


# -- 8. whole-value regexes match the whole value (a trailing newline is not accepted) --------
def test_install_version_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "release.tar.gz"
    digest = _archive(archive, {"VERSION": b"1.0\n", "bin/refsuite": b"#!/bin/sh\n"})
    prefix = tmp_path / "opt"
    result = run_module_file(
        MODULES / "install.py",
        {"prefix": str(prefix), "source": "archive", "archive": str(archive), "sha256": digest,
         "version": "nl1\n"},
        tmp_path,
    )  # fmt: skip
    assert result.get("failed") is True, result
    assert "is not a valid version" in result["msg"] and "nl1\\n" in result["msg"]
    assert not (prefix / "releases").exists() or os.listdir(prefix / "releases") == []


@pytest.mark.parametrize(
    ("suite_name", "daemon_name", "field"),
    [("bad\n", "qm", "suite.name"), ("good", "qm\n", "name")],
)
def test_profile_names_with_a_trailing_newline_are_refused(
    tmp_path: Path, suite_name: str, daemon_name: str, field: str
) -> None:
    source = tmp_path / "profile.yml"
    source.write_text(
        yaml.safe_dump(
            {
                "suite": {"name": suite_name, "roles": ["server"]},
                "daemons": [{"name": daemon_name, "roles": ["server"], "match": {"cmdline": "q"}}],
            }
        )
    )
    with pytest.raises(ProfileError, match=f"{field}: "):
        load_profile_file(str(source))


def test_pidfile_name_with_a_trailing_newline_is_not_a_record(tmp_path: Path) -> None:
    (tmp_path / "qm.pid").write_text("4242\n")
    (tmp_path / "sms.pid\n").write_text("4343\n")
    records = pidstore.read_records({"type": "pidfile", "path": str(tmp_path)})
    assert [(r.name, r.source) for r in records] == [("qm", str(tmp_path / "qm.pid"))]


# -- 9. config mode: 0-0o7777, no setuid/setgid/sticky unless asked ---------------------------
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (-1, "is outside 0000-7777"),
        ("-1", "is outside 0000-7777"),
        (0o10000, "is outside 0000-7777"),
        ("4755", "sets the setuid, setgid or sticky bit"),
        ("1644", "sets the setuid, setgid or sticky bit"),
        ("rw-r--r--", "is not an octal mode"),
    ],
)
def test_config_mode_is_range_checked(tmp_path: Path, mode: object, message: str) -> None:
    ini = tmp_path / "new.ini"
    result = run_module_file(
        MODULES / "config.py",
        {"profile_data": REFSUITE_PROFILE, "config_file": str(ini), "mode": mode,
         "settings": {"suite": {"role": "client"}}},
        tmp_path,
    )  # fmt: skip
    assert result.get("failed") is True and message in result["msg"], result
    assert not ini.exists()


def test_config_special_bits_only_when_asked(tmp_path: Path) -> None:
    ini = tmp_path / "new.ini"
    result = run_module_file(
        MODULES / "config.py",
        {"profile_data": REFSUITE_PROFILE, "config_file": str(ini), "mode": "2640",
         "allow_special_bits": True, "settings": {"suite": {"role": "client"}}},
        tmp_path,
    )  # fmt: skip
    assert result.get("failed") is not True, result
    assert stat.S_IMODE(ini.stat().st_mode) == 0o2640


# -- 10. stale_pids: an SQLite path with '%' opens that file ---------------------------------
def _state_db(path: Path, name: str, pid: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE daemon_pids (name TEXT PRIMARY KEY, pid INTEGER)")
        conn.execute("INSERT INTO daemon_pids VALUES (?, ?)", (name, pid))
        conn.commit()


@pytest.mark.parametrize("name", ["pct%41.db", "hash#q?x=1%2525.db", "sp ace %zz.db"])
def test_sqlite_store_path_with_percent_opens_that_file(tmp_path: Path, name: str) -> None:
    wanted = tmp_path / name
    _state_db(wanted, "qm", 4242)
    decoy = tmp_path / urllib.parse.unquote(name.split("?")[0].split("#")[0])
    if decoy != wanted:
        _state_db(decoy, "decoy", 999)
    store = {"type": "sqlite", "path": str(wanted), "table": "daemon_pids"}
    records = pidstore.read_records(store)
    assert [(r.name, r.pid) for r in records] == [("qm", 4242)]
    pidstore.remove_record(store, records[0])
    with contextlib.closing(sqlite3.connect(wanted)) as conn:
        assert conn.execute("SELECT count(*) FROM daemon_pids").fetchone() == (0,)
    if decoy != wanted:
        with contextlib.closing(sqlite3.connect(decoy)) as conn:
            assert conn.execute("SELECT name FROM daemon_pids").fetchall() == [("decoy",)]


# -- 11. install src: no symlink out of the source tree; modes kept ---------------------------
def test_install_src_refuses_links_out_of_the_tree_and_keeps_modes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(TOP / "refsuite", src, ignore=shutil.ignore_patterns("__pycache__"))
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:secret\n")
    secret.chmod(0o600)
    link = src / "refsuite" / "shadow.py"
    link.symlink_to(secret)
    prefix = tmp_path / "opt"
    args = {"prefix": str(prefix), "source": "bundled", "src": str(src)}
    refused = run_module_file(MODULES / "install.py", args, tmp_path)
    assert refused.get("failed") is True, refused
    assert "refsuite/shadow.py is a symlink to" in refused["msg"] and "outside" in refused["msg"]
    assert not (prefix / "lib").exists()
    # a link inside the tree is fine; a private file stays private
    link.unlink()
    (src / "refsuite" / "alias.py").symlink_to(src / "refsuite" / "__init__.py")
    private = src / "refsuite" / "private.py"
    private.write_text("KEY = 1\n")
    private.chmod(0o600)
    (src / "refsuite" / "open.py").write_text("X = 1\n")
    (src / "refsuite" / "open.py").chmod(0o666)
    done = run_module_file(MODULES / "install.py", args, tmp_path)
    assert done.get("failed") is not True, done
    lib = prefix / "lib" / "refsuite"
    assert stat.S_IMODE((lib / "private.py").stat().st_mode) == 0o600
    assert stat.S_IMODE((lib / "open.py").stat().st_mode) == 0o644
    assert (lib / "alias.py").read_bytes() == (src / "refsuite" / "__init__.py").read_bytes()
    again = run_module_file(MODULES / "install.py", args, tmp_path)
    assert again["changed"] is False


# -- 12. cluster_data: an allow rule, and a longer denylist as the second guard ---------------
def test_cluster_data_path_must_be_under_the_profiles_cluster_path(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    (cluster / "node1").mkdir(parents=True)
    (cluster / "node1" / "members.dat").write_text("m")
    for other in (tmp_path / "other", tmp_path / "cluster-evil"):
        (other / "x").mkdir(parents=True)
        (other / "x" / "decoy.dat").write_text("keep")
        result = run_module_file(
            MODULES / "cluster_data.py",
            {"profile_data": _cluster_profile(str(cluster)), "path": str(other), "depth": 2},
            tmp_path,
        )
        assert result.get("failed") is True, result
        assert "is not the profile's cluster data path" in result["msg"]
        assert (other / "x" / "decoy.dat").read_text() == "keep"
    below = run_module_file(
        MODULES / "cluster_data.py",
        {"profile_data": _cluster_profile(str(cluster)), "path": str(cluster / "node1"),
         "depth": 1},
        tmp_path,
    )  # fmt: skip
    assert below.get("failed") is not True and below["removed"] == [
        f"{cluster}/node1/members.dat"
    ], below


@pytest.mark.parametrize(
    "path",
    ["/root/.ssh", "/home/alice/.ssh", "/home/alice/.ssh/keys", "/var/lib/dpkg",
     "/var/lib/dpkg/info", "/usr/local/sbin/tools", "/run/user/1000", "/srv/app/.gnupg"],
)  # fmt: skip
def test_denylist_covers_the_paths_it_missed(path: str) -> None:
    # validation only: these paths are never handed to a deletion routine
    assert safe_delete.check_root_path(path) != []


# -- 13. a FIFO (or anything but a regular file) as the configuration file --------------------
def test_config_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "refsuite.ini"
    os.mkfifo(fifo)
    result = run_module_file(
        MODULES / "config.py",
        {"profile_data": REFSUITE_PROFILE, "config_file": str(fifo), "backup": True,
         "settings": {"suite": {"role": "client"}}},
        tmp_path,
        timeout=30,  # the module used to wait for a writer for ever
    )  # fmt: skip
    assert result.get("failed") is True, result
    assert "it is a FIFO, not a regular file" in result["msg"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("module", ["cluster_data", "stale_pids"])
def test_ini_overrides_refuse_a_fifo_without_hanging(tmp_path: Path, module: str) -> None:
    # cluster_data and stale_pids apply the suite INI (enabled, ports) to the profile through
    # suite_ini.apply_config, as health_info does
    fifo = tmp_path / "refsuite.ini"
    os.mkfifo(fifo)
    tree = tmp_path / "cluster"
    tree.mkdir()
    args = {"profile_data": REFSUITE_PROFILE, "config_file": str(fifo)}
    if module == "cluster_data":
        args.update(path=str(tree), depth=2)
    result = run_module_file(MODULES / f"{module}.py", args, tmp_path, timeout=30)
    assert result.get("failed") is True, result
    assert "it is a FIFO, not a regular file" in result["msg"]


def test_config_refuses_an_oversized_file(tmp_path: Path) -> None:
    ini = tmp_path / "refsuite.ini"
    with open(ini, "wb") as handle:
        handle.truncate(suite_ini.MAX_CONFIG_BYTES + 1)  # sparse: no disk used
    result = run_module_file(
        MODULES / "config.py",
        {"profile_data": REFSUITE_PROFILE, "config_file": str(ini),
         "settings": {"suite": {"role": "client"}}},
        tmp_path,
    )  # fmt: skip
    assert result.get("failed") is True and "larger than" in result["msg"], result
    assert ini.stat().st_size == suite_ini.MAX_CONFIG_BYTES + 1


# -- 14. match regexes: no nested unbounded quantifiers; a bounded command line ---------------
@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a*)*", r"(.*)+x", r"^(\w+\s?)*$"])
def test_profile_refuses_nested_unbounded_quantifiers(tmp_path: Path, pattern: str) -> None:
    source = tmp_path / "profile.yml"
    source.write_text(
        yaml.safe_dump(
            {
                "suite": {"name": "redos", "roles": ["server"]},
                "daemons": [{"name": "qm", "roles": ["server"], "match": {"cmdline": pattern}}],
            }
        )
    )
    with pytest.raises(ProfileError, match=r"match.cmdline: regular expression .* repeats"):
        load_profile_file(str(source))


def test_match_regex_sees_a_bounded_command_line(tmp_path: Path) -> None:
    # quadratic in the length of the text it is searched in: a 1,200,000-character command
    # line took minutes per process; 2,048 characters take milliseconds (one argument may have
    # at most 128 kB)
    victim = spawn("hardening-victim", *["zq9" * 40_000] * 10)
    try:
        tree = tmp_path / "cluster"
        (tree / "node1").mkdir(parents=True)
        (tree / "node1" / "members.dat").write_text("m")
        profile_data = _cluster_profile()
        profile_data["daemons"][0]["match"]["cmdline"] = "zq9.*="
        result = run_module_file(
            MODULES / "cluster_data.py",
            {"profile_data": profile_data, "path": str(tree), "depth": 2,
             "instance": str(tmp_path)},
            tmp_path,
            timeout=60,
        )  # fmt: skip
        assert result.get("failed") is not True, result
        assert result["removed"] == [f"{tree}/node1/members.dat"]
        assert victim.poll() is None  # looked at, never touched
    finally:
        kill(victim)
