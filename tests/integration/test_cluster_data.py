# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cluster_data against real processes, real sockets, real symlinks and a real mount, always on
trees under tmp_path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modrun import kill, run_module_file, spawn
from modrun import run_adhoc as run_ansible

TOP = Path(__file__).resolve().parents[2]
MODULE = TOP / "plugins" / "modules" / "cluster_data.py"


def free_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def profile(ports: list[int]) -> dict[str, Any]:
    return {
        "suite": {"name": "itest", "roles": ["server"]},
        "daemons": [
            {"name": "qm", "roles": ["server"], "match": {"cmdline": "^refsuite-qm( |$)"}},
            {
                "name": "sms",
                "roles": ["server"],
                "match": {"cmdline": "^refsuite-sms( |$)"},
                "ports": [{"port": port} for port in ports],
            },
        ],
    }


def run_module(args: dict[str, Any], tmp_path: Path, check: bool = False) -> dict[str, Any]:
    return run_module_file(MODULE, args, tmp_path, check)


def make_tree(root: Path) -> list[str]:
    """root/<member>/<files> like /var/cluster/sms/*/*; returns the depth-2 entries."""
    entries = []
    for member in ("node1", "node2"):
        (root / member / "sub").mkdir(parents=True)
        (root / member / "sub" / "deep.dat").write_text("x")
        (root / member / "members.dat").write_text("m")
        entries += [f"{root}/{member}/members.dat", f"{root}/{member}/sub"]
    return sorted(entries)


def tree_snapshot(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "cluster"
    make_tree(root)
    return root


def test_clears_when_nothing_runs_check_then_apply_then_idempotent(tmp_path, tree):
    args = {
        "profile_data": profile([]),
        "path": str(tree),
        "depth": 2,
        "instance": str(tmp_path),
    }
    before = tree_snapshot(tree)
    checked = run_module(args, tmp_path, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert checked["removed"] == make_tree_entries(tree)
    assert tree_snapshot(tree) == before, "check mode must change nothing"
    applied = run_module(args, tmp_path)
    assert applied["changed"] is True and applied["removed"] == checked["removed"]
    assert tree_snapshot(tree) == sorted([f"{tree}/node1", f"{tree}/node2"])
    again = run_module(args, tmp_path)
    assert again["changed"] is False and again["removed"] == []


def make_tree_entries(root: Path) -> list[str]:
    return sorted(
        f"{root}/{member}/{name}"
        for member in ("node1", "node2")
        for name in ("members.dat", "sub")
    )


def test_refuses_while_a_daemon_runs_then_proceeds(tmp_path, tree):
    config = str(tmp_path / "refsuite.ini")
    other_config = str(tmp_path / "other-instance.ini")
    daemon = spawn("refsuite-sms", "--config", config)
    other = spawn("refsuite-qm", "--config", other_config)
    try:
        args = {"profile_data": profile([]), "path": str(tree), "depth": 2, "instance": config}
        before = tree_snapshot(tree)
        for check in (True, False):
            refused = run_module(args, tmp_path, check=check)
            assert refused.get("failed") is True
            assert f"daemon sms runs as PID {daemon.pid}" in refused["msg"]
            assert "nothing was deleted" in refused["msg"]
            assert "refsuite-qm" not in refused["msg"], "another instance must not count"
            assert tree_snapshot(tree) == before
    finally:
        kill(daemon)
    try:
        result = run_module(args, tmp_path)
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True
        assert other.poll() is None
    finally:
        kill(other)


def test_refuses_with_a_connected_client_even_after_the_listener_closed(tmp_path, tree):
    listener = free_listener()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _peer = listener.accept()
    daemon = spawn("refsuite-sms", "--config", str(tmp_path / "x.ini"))
    args = {
        "profile_data": profile([port]),
        "path": str(tree),
        "depth": 2,
        "instance": str(tmp_path),
    }
    before = tree_snapshot(tree)
    try:
        both = run_module(args, tmp_path)
        assert both.get("failed") is True
        assert "daemon sms runs" in both["msg"], "every failed condition is named"
        assert f"connected to port {port}" in both["msg"]
        kill(daemon)
        listener.close()  # the daemon is gone, its accepted connection is not
        refused = run_module(args, tmp_path)
        assert refused.get("failed") is True
        assert (
            f"client 127.0.0.1:{client.getsockname()[1]} is connected to port {port}"
            in (refused["msg"])
        )
        assert "daemon" not in refused["msg"].split("because", 1)[1].split("Stop")[0]
        assert tree_snapshot(tree) == before
    finally:
        kill(daemon)
        client.close()
        served.close()
        listener.close()
    result = run_module(args, tmp_path)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True


def test_symlink_inside_pointing_outside_leaves_outside_intact(tmp_path, tree):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "precious.dat").write_text("precious")
    (tree / "node1" / "link_dir").symlink_to(outside / "keep")
    (tree / "node1" / "link_file").symlink_to(outside / "keep" / "precious.dat")
    (tree / "alias").symlink_to(outside)  # above the depth: not followed
    args = {"profile_data": profile([]), "path": str(tree), "depth": 2, "instance": str(tmp_path)}
    result = run_module(args, tmp_path)
    assert not result.get("failed"), result.get("msg")
    assert f"{tree}/node1/link_dir" in result["removed"]
    assert (outside / "keep" / "precious.dat").read_text() == "precious"
    assert not (tree / "node1" / "link_dir").exists()
    assert (tree / "alias").is_symlink()


@pytest.fixture
def mounted_tree(tmp_path: Path, tree: Path) -> Iterator[Path]:
    mnt = tree / "node1" / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, f"mount failed (this test needs root): {mounted.stderr}"
    try:
        (mnt / "on-other-fs.dat").write_text("other filesystem")
        (mnt / "d").mkdir()
        yield tree
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_mount_inside_the_tree_is_not_descended(tmp_path, mounted_tree):
    mnt = mounted_tree / "node1" / "mnt"
    for depth in (2, 3):
        args = {"profile_data": profile([]), "path": str(mounted_tree), "depth": depth}
        args["instance"] = str(tmp_path)
        result = run_module(args, tmp_path)
        assert not result.get("failed"), result.get("msg")
        assert any(item.startswith(f"{mnt}:") for item in result["not_descended"]), result[
            "not_descended"
        ]
        assert "skipped" not in result  # Ansible reserves it
        assert not any(item.startswith(str(mnt)) for item in result["removed"])
        assert (mnt / "on-other-fs.dat").read_text() == "other filesystem"
        assert (mnt / "d").is_dir()
        assert os.path.ismount(mnt)
    again = run_module(args, tmp_path)
    assert again["changed"] is False


def test_refuses_bad_paths_under_tmp(tmp_path, tree):
    base = {"profile_data": profile([]), "depth": 2, "instance": str(tmp_path)}
    cases = {
        f"{tree}/../cluster": "'..'",
        f"{tree}/absent": "does not exist",
        f"{tree}/node1/members.dat": "not a directory",
    }
    (tmp_path / "link").symlink_to(tree)
    cases[str(tmp_path / "link")] = "symlink"
    before = tree_snapshot(tree)
    for path, words in cases.items():
        result = run_module(dict(base, path=path), tmp_path)
        assert result.get("failed") is True and words in result["msg"], (path, result["msg"])
    assert tree_snapshot(tree) == before


def test_through_ansible_check_apply_check_apply(tmp_path, tree):
    args = {"profile_data": profile([]), "path": str(tree), "depth": 2, "instance": str(tmp_path)}
    first = run_ansible("daemonops.suite.cluster_data", args, check=True)
    assert first["changed"] is True, first
    assert len(tree_snapshot(tree)) == 8
    second = run_ansible("daemonops.suite.cluster_data", args)
    assert second["changed"] is True
    assert tree_snapshot(tree) == [f"{tree}/node1", f"{tree}/node2"]
    third = run_ansible("daemonops.suite.cluster_data", args, check=True)
    assert third["changed"] is False, third
    fourth = run_ansible("daemonops.suite.cluster_data", args)
    assert fourth["changed"] is False, fourth


# ----------------------------------------------------------------------------- the playbook


def reset_profile(suite: Any, path: Path) -> Path:
    """refsuite's profile, pointed at one test instance (control commands, INI, DB, cluster)."""
    import yaml

    data = yaml.safe_load((TOP / "profiles" / "refsuite" / "profile.yml").read_text())
    control = {
        action: [sys.executable, str(TOP / "refsuite" / "bin" / "refsuite"), "--config",
                 str(suite.ini), action]
        for action in ("start", "stop", "status", "restart")
    }  # fmt: skip
    data["suite"]["control"] = dict(control, force_option="--force")
    data["suite"]["config_file"] = str(suite.ini)
    data["suite"]["pid_store"]["path"] = str(suite.state_db)
    data["suite"]["cluster_data"] = {"path": str(suite.cluster), "depth": 2}
    data["suite"].pop("systemd_unit", None)
    data.pop("deploy", None)  # its templates stay in profiles/refsuite/templates/
    path.write_text(yaml.safe_dump(data))
    return path


def run_cluster_reset(suite: Any, profile_path: Path) -> subprocess.CompletedProcess:
    extra = {
        "cluster_reset_hosts": "localhost",
        "cluster_reset_profile": str(profile_path),
        "cluster_reset_instance": str(suite.ini),
        "cluster_reset_config_file": str(suite.ini),
        "cluster_reset_roles": ["server"],
        "ansible_python_interpreter": sys.executable,
    }
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        str(TOP / "playbooks" / "cluster_reset.yml"),
        "-e",
        json.dumps(extra),
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def refsuite_instance(tmp_path: Path) -> Iterator[Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "refsuite"))
    from refsuite_testlib import RefSuite

    (tmp_path / "rs").mkdir()
    suite = RefSuite(tmp_path / "rs")
    try:
        suite.start()
        yield suite
    finally:
        suite.cleanup()


@pytest.mark.slow
def test_cluster_reset_playbook_refuses_with_a_client_then_resets(tmp_path, refsuite_instance):
    suite = refsuite_instance
    profile_path = reset_profile(suite, tmp_path / "profile.yml")
    (suite.cluster / "member-x").mkdir(parents=True, exist_ok=True)
    marker = suite.cluster / "member-x" / "stale-members.dat"
    marker.write_text("from before the reset")
    qm_before = suite.online("qm")

    client = suite.session(suite.ui_port)  # an authenticated ui session (no idle timeout)
    try:
        refused = run_cluster_reset(suite, profile_path)
        assert refused.returncode != 0
        assert "connected" in refused.stdout and "Nothing was stopped or cleared" in refused.stdout
        assert marker.exists(), "nothing may be cleared while a client is connected"
        assert suite.online("qm") == qm_before, "nothing may be stopped while a client is connected"
    finally:
        client.close()

    time.sleep(0.5)  # let ui notice the client has gone
    done = run_cluster_reset(suite, profile_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert not marker.exists() and (suite.cluster / "member-x").is_dir()
    assert "STATUS=SUCCESS" in suite.run("status").stdout
    assert suite.online("qm") not in (None, qm_before), "the suite was restarted"
