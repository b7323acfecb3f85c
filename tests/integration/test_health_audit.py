# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end: playbooks/health_audit.yml over a fleet of real refsuite instances.

Inventory: three hosts with ``ansible_connection: local`` and different inventory names, each
running its own refsuite instance (own INI, free ports, state DB and paths under tmp), and a
fourth host that is unreachable (SSH to a closed port on 127.0.0.1, refused at once).

- ``srv-alpha`` (server role): healthy, with one client connected to ``ui``;
- ``cli-bravo`` (client role): healthy;
- ``cli-charlie`` (client role): ``sshd`` killed and not restarted (retry_interval = 0);
- ``gone-delta``: unreachable.

The playbook must write all five report formats, say which host and daemon failed, and exit 2
(after writing); with ``health_audit_fail_on_unhealthy=false`` it exits 0. The HTML page is then
opened in headless Chromium: a screenshot and the DOM after its script ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from modrun import free_ports

TOP = Path(__file__).resolve().parents[2]
REFSUITE = TOP / "refsuite" / "bin" / "refsuite"
PLAYBOOK = TOP / "playbooks" / "health_audit.yml"
CHROMIUM = "/usr/bin/chromium"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.slow


@dataclass
class Instance:
    host: str
    role: str
    root: Path
    ports: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / f"{self.host}.ini"

    @property
    def profile(self) -> Path:
        return self.root / f"{self.host}.profile.yml"

    @property
    def state_db(self) -> Path:
        return self.root / "state" / "state.db"

    def refsuite(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REFSUITE), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )

    def processes(self) -> list[psutil.Process]:
        """Processes of this instance only: their command line names our tmp config path."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if str(self.config) in cmdline and cmdline and cmdline[0].startswith("refsuite-"):
                found.append(proc)
        return found

    def daemon(self, name: str) -> list[psutil.Process]:
        return [p for p in self.processes() if (p.info["cmdline"] or [""])[0] == f"refsuite-{name}"]


def write_instance(inst: Instance, retry_interval: int) -> None:
    """INI with own ports and paths, and a copy of the refsuite profile pointing at them."""
    root = inst.root
    (root / "state").mkdir(parents=True)
    ui, stpd1, stpd2, stpd3, ctrl, sshd = free_ports(6)
    inst.ports = {"ui": ui, "stpd": [stpd1, stpd2, stpd3], "ctrl": ctrl, "sshd": sshd}
    inst.config.write_text(
        f"""[suite]
role = {inst.role}
bind = 127.0.0.1
state_db = {inst.state_db}
cluster_path = {root}/cluster
log_file = {root}/log/refsuite.log
data_dir = {root}/data
tls_cert = {root}/tls.pem
tls_key = {root}/tls.key
syslog_socket = {root}/no-syslog
retry_interval = {retry_interval}
[ui]
port = {ui}
[stpd]
ports = {stpd1},{stpd2},{stpd3}
[ctrl]
enabled = false
port = {ctrl}
[sshd]
port = {sshd}
[sms]
data_servers = 1
"""
    )
    if inst.role in ("server", "rds"):  # stpd serves HTTPS: a throw-away self-signed cert
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=localhost", "-keyout", str(root / "tls.key"),
                "-out", str(root / "tls.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    profile = yaml.safe_load((TOP / "profiles" / "refsuite" / "profile.yml").read_text())
    suite = profile["suite"]
    suite["config_file"] = str(inst.config)
    suite["pid_store"]["path"] = str(inst.state_db)
    suite["cluster_data"]["path"] = str(root / "cluster")
    for action in ("start", "stop", "status", "restart"):
        if action in suite.get("control", {}):
            suite["control"][action] = [
                sys.executable, str(REFSUITE), "--config", str(inst.config), action,
            ]  # fmt: skip
    inst.profile.write_text(yaml.safe_dump(profile, sort_keys=False))


def stop_instance(inst: Instance) -> None:
    try:
        inst.refsuite("stop", "--force", timeout=60)
    except subprocess.TimeoutExpired:
        pass
    procs = inst.processes()
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def wait_status_online(inst: Instance, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        res = inst.refsuite("status", timeout=30)
        out = res.stdout + res.stderr
        if res.returncode == 0 and "STATUS=SUCCESS" in res.stdout:
            return out
        time.sleep(0.3)
    raise AssertionError(f"refsuite {inst.host} did not come online:\n{out}")


@dataclass
class Fleet:
    root: Path
    instances: dict[str, Instance]
    inventory: Path
    killed_pid: int
    ui_client: socket.socket


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not REFSUITE.is_file():
        pytest.fail(f"{REFSUITE} does not exist: the reference suite is needed for this test")
    root = tmp_path_factory.mktemp("audit-fleet")
    instances = {
        "srv-alpha": Instance("srv-alpha", "server", root / "srv-alpha"),
        "cli-bravo": Instance("cli-bravo", "client", root / "cli-bravo"),
        "cli-charlie": Instance("cli-charlie", "client", root / "cli-charlie"),
    }
    started: list[Instance] = []
    client = None
    try:
        for inst in instances.values():
            # charlie: qm must not restart the daemon we kill
            write_instance(inst, retry_interval=0 if inst.host == "cli-charlie" else 30)
            started.append(inst)
            res = inst.refsuite("start")
            assert res.returncode == 0, f"refsuite start {inst.host}: {res.stdout}{res.stderr}"
        for inst in instances.values():
            wait_status_online(inst)

        charlie = instances["cli-charlie"]
        (sshd,) = charlie.daemon("sshd")
        killed_pid = sshd.pid
        sshd.send_signal(signal.SIGKILL)
        sshd.wait(timeout=10)
        deadline = time.monotonic() + 20
        while "sshd : offline" not in charlie.refsuite("status").stdout:
            assert time.monotonic() < deadline, "charlie's sshd did not go offline"
            time.sleep(0.3)

        client = socket.create_connection(("127.0.0.1", instances["srv-alpha"].ports["ui"]), 10)

        closed_port = free_ports(1)[0]
        hosts_of = {"server": {}, "client": {}}
        for inst in instances.values():
            hosts_of[inst.role][inst.host] = {
                "ansible_connection": "local",
                "health_audit_profile": str(inst.profile),
                "health_audit_instance": str(inst.config),
                "health_audit_config_file": str(inst.config),
            }
            if inst.host == "cli-bravo":
                # explicit roles here; the other hosts get theirs from their inventory group
                hosts_of[inst.role][inst.host]["health_audit_roles"] = [inst.role]
        hosts_of["server"]["gone-delta"] = {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": closed_port,
            "ansible_user": "nobody",
            "ansible_ssh_common_args": (
                "-o ConnectTimeout=5 -o BatchMode=yes -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null"
            ),
        }
        inventory = root / "inventory.yml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "vars": {"ansible_python_interpreter": sys.executable},
                        "children": {g: {"hosts": h} for g, h in hosts_of.items()},
                    }
                }
            )
        )
        yield Fleet(root, instances, inventory, killed_pid, client)
    finally:
        if client is not None:
            client.close()
        for inst in started:
            stop_instance(inst)


def run_audit(fleet: Fleet, name: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    work = fleet.root / name
    work.mkdir()
    reports = work / "reports"
    env = dict(os.environ)
    collections = TOP / ".build" / "collections"
    env.update(
        ANSIBLE_CONFIG=str(TOP / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        PYTHONPATH=str(collections),
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(work / "local-tmp"),
        ANSIBLE_HOME=str(work / "ansible-home"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / "cp"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    assert (collections / "ansible_collections" / "daemonops" / "suite").exists(), (
        "run `. scripts/env.sh` once: it links the collection under .build/collections"
    )
    cmd = [
        ANSIBLE_PLAYBOOK,
        "-i",
        str(fleet.inventory),
        str(PLAYBOOK),
        "-e",
        f"health_audit_report_dir={reports}",
        *extra,
    ]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, env=env, cwd=str(work), capture_output=True, text=True, timeout=300, check=False
    )
    print(f"{' '.join(cmd)}: rc {proc.returncode} in {time.monotonic() - started:.1f} s")
    return proc, reports


FILES = {
    "json": "health_audit.json",
    "markdown": "health_audit.md",
    "html": "health_audit.html",
    "junit": "health_audit.junit.xml",
    "prometheus": "health_audit.prom",
}


@pytest.fixture(scope="module")
def failing_run(fleet: Fleet) -> tuple[subprocess.CompletedProcess, Path]:
    return run_audit(fleet, "run-default")


def test_playbook_writes_all_reports_then_fails_on_unhealthy_host(
    failing_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    proc, reports = failing_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-6000:]
    for name in FILES.values():
        path = reports / name
        assert path.is_file() and path.stat().st_size > 0, f"{path} missing\n{out[-4000:]}"
    assert not [p.name for p in reports.iterdir() if p.name.startswith(".")], "temp files left"
    # the failure message names the unhealthy hosts, after the report task ran
    assert "Unhealthy hosts: cli-charlie, gone-delta." in out, out[-6000:]
    assert out.index("Write the fleet report") < out.index("Unhealthy hosts:")


def test_json_report_says_which_host_and_daemon_failed(
    failing_run: tuple[subprocess.CompletedProcess, Path], fleet: Fleet
) -> None:
    reports = failing_run[1]
    report = json.loads((reports / FILES["json"]).read_text())
    hosts = report["hosts"]
    assert set(hosts) == {"srv-alpha", "cli-bravo", "cli-charlie", "gone-delta"}
    status = {h: e["status"] for h, e in hosts.items()}
    assert status == {
        "srv-alpha": "healthy",
        "cli-bravo": "healthy",
        "cli-charlie": "unhealthy",
        "gone-delta": "unreachable",
    }, json.dumps({h: e.get("msg") for h, e in hosts.items()}, indent=1)
    assert report["unhealthy_hosts"] == ["cli-charlie", "gone-delta"]
    assert report["unreachable_hosts"] == ["gone-delta"]
    summary = report["summary"]
    assert (summary["hosts"], summary["healthy"], summary["unhealthy"]) == (4, 2, 1)
    assert summary["unreachable"] == 1 and summary["failed"] == 0

    charlie = hosts["cli-charlie"]["daemons"]
    assert charlie["sshd"]["state"] == "offline"
    assert charlie["qm"]["state"] == "online" and charlie["ctrl"]["state"] == "unused"
    assert {p["daemon"] for p in report["problems"] if p["host"] == "cli-charlie"} == {"sshd"}
    assert any("sshd" in p["problem"] for p in report["problems"] if p["host"] == "cli-charlie")

    # each host saw only its own instance
    alpha = hosts["srv-alpha"]["daemons"]
    alpha_pids = {p.pid for p in fleet.instances["srv-alpha"].processes()}
    for name, daemon in alpha.items():
        assert set(daemon["pids"]) <= alpha_pids, name
    assert list(alpha) == [
        "qm", "db", "ui", "passd", "sms", "data_server", "stpd", "ctrl", "sshd", "sepuler",
    ]  # fmt: skip
    assert {d["state"] for n, d in alpha.items() if n != "ctrl"} == {"online"}
    bravo_qm = hosts["cli-bravo"]["daemons"]["qm"]["pids"]
    assert bravo_qm and not set(bravo_qm) & alpha_pids
    # the client we hold open on srv-alpha's ui port is seen, with its peer address
    ui_port = alpha["ui"]["ports"][0]
    assert ui_port["port"] == fleet.instances["srv-alpha"].ports["ui"]
    assert ui_port["listening"] and ui_port["owned"]
    peer = f"127.0.0.1:{fleet.ui_client.getsockname()[1]}"
    assert peer in ui_port["peers"] and alpha["ui"]["clients"] >= 1
    assert "ssh" in hosts["gone-delta"]["msg"].lower() or "connect" in hosts["gone-delta"]["msg"]


def test_markdown_report(failing_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    reports = failing_run[1]
    md = (reports / FILES["markdown"]).read_text()
    assert "4 hosts: 2 healthy, 1 unhealthy, 1 unreachable, 0 failed" in md
    rows = {line.split(" | ")[0][2:]: line for line in md.splitlines() if line.startswith("| ")}
    assert "**offline**" in rows["cli-charlie"] and "**unhealthy**" in rows["cli-charlie"]
    assert "**unreachable**" in rows["gone-delta"]
    assert "offline" not in rows["srv-alpha"] and "healthy" in rows["srv-alpha"]
    assert re.search(r"^- \*\*cli-charlie / sshd\*\* \(offline\): ", md, re.M), md
    assert re.search(r"^- \*\*gone-delta\*\* \(unreachable\): ", md, re.M), md


def test_junit_report(failing_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    reports = failing_run[1]
    root = ET.parse(reports / FILES["junit"]).getroot()
    (suite,) = root.findall("testsuite")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    failing = {k for k, c in cases.items() if c.find("failure") is not None}
    errors = {k for k, c in cases.items() if c.find("error") is not None}
    assert failing == {("cli-charlie", "sshd")}
    assert errors == {("gone-delta", "unreachable")}
    assert ("srv-alpha", "stpd") in cases and ("cli-bravo", "sshd") in cases
    assert cases[("srv-alpha", "ctrl")].find("skipped") is not None
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    assert int(suite.get("tests", "0")) == len(cases) == 10 + 3 + 3 + 1


def test_prometheus_report(failing_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    reports = failing_run[1]
    text = (reports / FILES["prometheus"]).read_text()
    lines = text.splitlines()
    sample = re.compile(
        r'^[a-z_]+(\{[a-z_]+="(?:[^"\\\n]|\\.)*"(,[a-z_]+="(?:[^"\\\n]|\\.)*")*\})? \S+$'
    )
    for line in lines:
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    assert 'daemonops_daemon_up{host="cli-charlie",daemon="sshd",state="offline"} 0' in lines
    assert 'daemonops_daemon_up{host="srv-alpha",daemon="stpd",state="online"} 1' in lines
    assert 'daemonops_host_healthy{host="cli-charlie"} 0' in lines
    assert 'daemonops_host_healthy{host="gone-delta"} 0' in lines
    assert 'daemonops_host_healthy{host="srv-alpha"} 1' in lines
    clients = [
        ln
        for ln in lines
        if ln.startswith('daemonops_daemon_clients{host="srv-alpha",daemon="ui"}')
    ]
    assert len(clients) == 1 and int(clients[0].split()[-1]) >= 1
    assert any(ln.startswith("daemonops_audit_timestamp_seconds ") for ln in lines)


def test_no_failure_when_fail_on_unhealthy_is_false(fleet: Fleet) -> None:
    proc, reports = run_audit(fleet, "run-nofail", "-e", "health_audit_fail_on_unhealthy=false")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    report = json.loads((reports / FILES["json"]).read_text())
    assert report["unhealthy_hosts"] == ["cli-charlie", "gone-delta"]
    assert sorted(p.name for p in reports.iterdir()) == sorted(FILES.values())


# ----------------------------------------------------------------------------- browser


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, decompressed scanlines) of a PNG, with the stdlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.browser
def test_html_report_renders_in_chromium(
    failing_run: tuple[subprocess.CompletedProcess, Path], tmp_path: Path
) -> None:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is required for the browser test"
    reports = failing_run[1]
    page = reports / FILES["html"]
    url = page.resolve().as_uri()

    shot = tmp_path / "shot.png"
    res = chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,900", url)
    assert shot.is_file(), f"no screenshot (rc {res.returncode}): {res.stderr[-3000:]}"
    width, height, raw = png_pixels(shot)
    assert (width, height) == (1280, 900)
    assert shot.stat().st_size > 10_000
    # a blank page compresses to a handful of distinct bytes; a coloured table does not
    assert len(set(raw)) > 50

    res = chromium(tmp_path / "profile-dom", "--dump-dom", url)
    dom = res.stdout
    assert res.returncode == 0 and "</html>" in dom, res.stderr[-3000:]
    assert 'data-audit-ready="1"' in dom, "the page's script did not run"
    assert 'id="audit" data-filter="all"' in dom
    for host in ("srv-alpha", "cli-bravo", "cli-charlie", "gone-delta"):
        assert f'data-host="{host}"' in dom
    for daemon in ("qm", "ui", "stpd", "sshd", "ctrl"):
        assert f'<th class="daemon">{daemon}</th>' in dom
    assert '<span id="shown-count">4</span>' in dom

    # the filter, applied by the script from the URL fragment: healthy rows are hidden
    res = chromium(tmp_path / "profile-filter", "--dump-dom", url + "#only-unhealthy")
    dom = res.stdout
    assert 'id="audit" data-filter="unhealthy"' in dom, res.stderr[-3000:]
    rows = {
        m.group(1): "hidden" in m.group(0)
        for m in re.finditer(r'<tr class="host-\w+" data-host="([^"]+)"[^>]*>', dom)
    }
    assert rows == {
        "cli-bravo": True,
        "cli-charlie": False,
        "gone-delta": False,
        "srv-alpha": True,
    }
    assert '<span id="shown-count">2</span>' in dom
