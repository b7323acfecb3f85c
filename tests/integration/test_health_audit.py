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
from modrun import free_ports, text_playbook_env

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

        # an authenticated ui session (the token is next to the instances' INI files)
        client = socket.create_connection(("127.0.0.1", instances["srv-alpha"].ports["ui"]), 10)
        token = (instances["srv-alpha"].config.parent / "token").read_text().strip()
        client.sendall(f"AUTH {token}\n".encode())
        assert client.makefile("rb").readline() == b"OK\n"

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


def run_audit(
    fleet: Fleet,
    name: str,
    *extra: str,
    report_dir: bool = True,
    inventory: Path | None = None,
) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the playbook in ``fleet.root/name`` (made if missing); reports in ``name/reports``
    (given with -e, or, with ``report_dir=False``, by the role's default ``./reports``)."""
    work = fleet.root / name
    work.mkdir(exist_ok=True)
    reports = work / "reports"
    env = text_playbook_env(work, ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / "cp"))
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory or fleet.inventory), str(PLAYBOOK), *extra]
    if report_dir:
        cmd += ["-e", f"health_audit_report_dir={reports}"]
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
    # one failure per unhealthy host, with its reason, after the report task ran
    assert re.search(r"fatal: \[cli-charlie\]: FAILED! =>\s+changed: false\s+msg: .cli-charlie "
                     r"is unhealthy: sshd offline", out), out[-6000:]  # fmt: skip
    assert "gone-delta is unreachable: " in out
    assert out.index("Write the fleet report") < out.index("cli-charlie is unhealthy")
    # the recap blames exactly the unhealthy hosts
    recap = {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+: ok=.* failed=(\d+)", out, re.M)}
    assert recap == {"cli-bravo": 0, "cli-charlie": 1, "gone-delta": 1, "localhost": 0,
                     "srv-alpha": 0}, out[-3000:]  # fmt: skip
    # the paths written are printed
    for name in FILES.values():
        assert f"Report: {reports / name}" in out


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
    # problems first: unreachable, then unhealthy, then healthy
    assert report["unhealthy_hosts"] == ["gone-delta", "cli-charlie"]
    assert list(hosts) == ["gone-delta", "cli-charlie", "cli-bravo", "srv-alpha"]
    assert report["unreachable_hosts"] == ["gone-delta"]
    assert report["schema_version"] == 2 and report["profile"] == "refsuite"
    assert 0 < report["duration_seconds"] < 300
    assert hosts["srv-alpha"]["instance"] == str(fleet.instances["srv-alpha"].config)
    assert hosts["srv-alpha"]["config_checksum"].startswith("sha256:")
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
    # one stable test per host for reachability, an error for the unreachable one
    assert errors == {("gone-delta", "reachable")}
    assert {k for k in cases if k[1] == "reachable"} == {
        (h, "reachable") for h in ("srv-alpha", "cli-bravo", "cli-charlie", "gone-delta")
    }
    assert 0 < float(suite.get("time", "0")) < 300
    assert 0 < float(cases[("srv-alpha", "reachable")].get("time", "0")) < 60
    assert ("srv-alpha", "stpd") in cases and ("cli-bravo", "sshd") in cases
    assert cases[("srv-alpha", "ctrl")].find("skipped") is not None
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    assert int(suite.get("tests", "0")) == len(cases) == 10 + 3 + 3 + 4


def test_prometheus_report(failing_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    reports = failing_run[1]
    text = (reports / FILES["prometheus"]).read_text()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            assert key not in samples.setdefault(sample.name, {}), sample
            samples[sample.name][key] = sample.value

    def value(name: str, **labels: str) -> float:
        return samples[name][tuple(sorted(labels.items()))]

    state = samples["daemonops_daemon_state"]
    charlie_sshd = {
        dict(k)["state"]: v
        for k, v in state.items()
        if dict(k)["host"] == "cli-charlie" and dict(k)["daemon"] == "sshd"
    }
    assert charlie_sshd == {"online": 0, "degraded": 0, "offline": 1, "unused": 0, "unknown": 0}
    essential = {dict(k)["daemon"]: dict(k)["essential"] for k in state}
    assert essential["qm"] == "true" and essential["sshd"] == "false"
    assert value("daemonops_daemon_up", host="srv-alpha", daemon="stpd") == 1
    assert value("daemonops_daemon_start_time_seconds", host="srv-alpha", daemon="qm") > 1e9
    assert ("daemonops_daemon_start_time_seconds", "cli-charlie", "sshd") not in {
        ("daemonops_daemon_start_time_seconds", dict(k)["host"], dict(k)["daemon"])
        for k in samples["daemonops_daemon_start_time_seconds"]
    }
    assert value("daemonops_host_healthy", host="cli-charlie") == 0
    assert value("daemonops_host_healthy", host="srv-alpha") == 1
    assert value("daemonops_host_reachable", host="gone-delta") == 0
    assert value("daemonops_host_reachable", host="cli-charlie") == 1
    assert value("daemonops_host_state", host="gone-delta", state="unreachable") == 1
    assert value("daemonops_host_check_failed", host="gone-delta") == 0
    assert value("daemonops_daemon_clients", host="srv-alpha", daemon="ui") >= 1
    assert 0 < value("daemonops_audit_duration_seconds") < 300
    assert value("daemonops_audit_timestamp_seconds") > 1e9
    assert value("daemonops_audit_hosts", status="unhealthy") == 1


def test_no_failure_when_fail_on_unhealthy_is_false(fleet: Fleet) -> None:
    proc, reports = run_audit(fleet, "run-nofail", "-e", "health_audit_fail_on_unhealthy=false")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    report = json.loads((reports / FILES["json"]).read_text())
    assert report["unhealthy_hosts"] == ["gone-delta", "cli-charlie"]
    assert sorted(p.name for p in reports.iterdir() if p.is_file()) == sorted(FILES.values())
    assert len(list((reports / "history").iterdir())) == 1


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
        for m in re.finditer(r'<tr id="[^"]+" class="host-\w+[^"]*" data-host="([^"]+)"[^>]*>', dom)
    }
    assert rows == {
        "cli-bravo": True,
        "cli-charlie": False,
        "gone-delta": False,
        "srv-alpha": True,
    }
    assert '<span id="shown-count">2</span>' in dom


# ----------------------------------------------------------------------------- exit codes


def test_configuration_error_exits_4_contacts_no_host_and_writes_no_report(
    fleet: Fleet,
) -> None:
    proc, reports = run_audit(fleet, "run-bad-profile", "-e", "health_audit_profile=refsuit")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-6000:]
    flat = re.sub(r"\s+", " ", out).replace("''", "'")  # the callback folds long messages
    assert "health audit configuration error (4 problems, no host was contacted)" in flat
    assert "srv-alpha: health_audit_profile 'refsuit': profile 'refsuit' is not shipped" in flat
    # no host was contacted: the health check never ran, the unreachable host was not tried
    assert "Check the suite's daemons on the host" not in out
    recap = re.findall(r"^(\S+)\s+: ok=\d+", out.split("PLAY RECAP")[1], re.M)
    assert recap == ["localhost"], out[-3000:]
    assert not reports.exists()

    proc, reports = run_audit(fleet, "run-no-host", "-e", "health_audit_hosts=nosuchgroup")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-6000:]
    flat = re.sub(r"\s+", " ", out).replace("''", "'")
    assert "the pattern 'nosuchgroup' matches no host of the inventory" in flat
    assert not reports.exists()

    # with --limit the first play has no host (localhost is not in the limit): the role checks
    # each host itself and ends the play the same way
    proc, reports = run_audit(
        fleet, "run-limit", "--limit", "srv-alpha", "-e", '{"health_audit_roles": ["nosuchrole"]}'
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out[-6000:]
    flat = re.sub(r"\s+", " ", out).replace("''", "'")
    assert "srv-alpha: health_audit_roles nosuchrole not a role of suite refsuite" in flat
    assert "Check the suite's daemons on the host" not in out
    assert not reports.exists()


def test_healthy_hosts_exit_0_and_reports_go_to_the_working_directory(fleet: Fleet) -> None:
    proc, _reports = run_audit(
        fleet, "run-healthy", "-e", "health_audit_hosts=srv-alpha:cli-bravo", report_dir=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    reports = fleet.root / "run-healthy" / "reports"  # ./reports of the playbook's cwd
    report = json.loads((reports / FILES["json"]).read_text())
    assert report["healthy"] is True and set(report["hosts"]) == {"srv-alpha", "cli-bravo"}
    assert f"Report: {reports / FILES['html']}" in out
    assert not (TOP / "reports").exists() or not (TOP / "reports" / FILES["json"]).exists()


def test_multi_instance_recipe_with_the_shipped_profile(fleet: Fleet) -> None:
    """docs/audit.md: two instances on one host, each an inventory host with
    health_audit_instance and health_audit_config_file, and the shipped profile by name. The
    PID store is each instance's own state_db (from its INI), so records are consistent."""
    hosts = {
        name: {
            "ansible_connection": "local",
            "health_audit_profile": "refsuite",
            "health_audit_instance": str(fleet.instances[name].config),
            "health_audit_config_file": str(fleet.instances[name].config),
        }
        for name in ("srv-alpha", "cli-bravo")
    }
    inventory = fleet.root / "multi-instance.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {"ansible_python_interpreter": sys.executable},
                    "children": {
                        "server": {"hosts": {"srv-alpha": hosts["srv-alpha"]}},
                        "client": {"hosts": {"cli-bravo": hosts["cli-bravo"]}},
                    },
                }
            }
        )
    )
    proc, reports = run_audit(fleet, "run-multi", inventory=inventory)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    report = json.loads((reports / FILES["json"]).read_text())
    for host in ("srv-alpha", "cli-bravo"):
        entry = report["hosts"][host]
        assert entry["status"] == "healthy", entry["problems"]
        own = {p.pid for p in fleet.instances[host].processes()}
        for name, daemon in entry["daemons"].items():
            if daemon["state"] == "unused":
                continue
            assert daemon["pid_record"]["status"] == "consistent", (host, name, daemon)
            assert daemon["pid_record"]["pid"] in own
    # the same with an explicit store path: a wrong one shows the records missing
    proc, reports = run_audit(
        fleet, "run-multi-override", "-e", f"health_audit_pid_store_path={fleet.root}/none.db",
        "-e", "health_audit_fail_on_unhealthy=false", inventory=inventory,
    )  # fmt: skip
    report = json.loads((reports / FILES["json"]).read_text())
    qm = report["hosts"]["srv-alpha"]["daemons"]["qm"]["pid_record"]
    assert qm["status"] != "consistent" and "none.db" in json.dumps(qm), qm


# ----------------------------------------------------------------------------- large fleet


def synthetic_fleet(count: int = 300, bad_every: int = 16) -> dict[str, Any]:
    """``count`` hosts named like a real fleet; every ``bad_every``-th one unhealthy, two
    unreachable, one silenced."""
    names = ["qm", "db", "ui", "passd", "sms", "data_server", "stpd", "ctrl", "sshd", "sepuler"]
    now = time.time()
    results: dict[str, Any] = {}
    for i in range(count):
        daemons = {}
        for j, name in enumerate(names):
            state = "unused" if name == "ctrl" else "online"
            daemons[name] = {
                "state": state,
                "essential": name == "qm",
                "problems": [],
                "pids": [] if state == "unused" else [1000 + i * 20 + j],
                "ports": [] if state == "unused" else [
                    {"port": 11000 + j, "listening": True, "owned": True, "clients": j % 2,
                     "peers": ["10.0.0.9:50000"] if j % 2 else []}],
                "start_time": now - 86400 * (i % 9) - 3600,
                "uptime": 86400 * (i % 9) + 3600,
                "ancestry": {"expected": "qm", "ok": True, "chain": [1000 + i * 20 + j, 1000]},
            }  # fmt: skip
        if i % bad_every == 5:
            daemons["stpd"].update(state="offline", pids=[], problems=["stpd offline"])
        results[f"node{i:03d}.dc{i % 3}"] = {
            "status": "SUCCESS", "msg": "", "roles": ["server"], "profile": "refsuite",
            "host": f"node{i:03d}", "daemons": daemons,
        }  # fmt: skip
    results["node007.dc1"] = {"unreachable": True, "msg": "ssh: connect to host: No route"}
    results["node250.dc1"] = {"unreachable": True, "msg": "ssh: connect to host: timed out"}
    return results


@pytest.mark.browser
def test_large_fleet_page_in_chromium(tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is required for the browser test"
    sys.path.insert(0, str(TOP / ".build" / "collections"))
    from ansible_collections.daemonops.suite.plugins.plugin_utils import audit_report as ar

    report = ar.build_report(
        synthetic_fleet(), time.time(), profile="refsuite", started=time.time() - 42.5,
        maintenance=[{"host": "node021.dc0", "reason": "disk swap", "until": "2099-01-01"}],
    )  # fmt: skip
    bad = [h for h, e in report["hosts"].items() if e["status"] != "healthy"]
    assert len(report["hosts"]) == 300 and len(bad) == 21
    page = tmp_path / "fleet.html"
    page.write_text(ar.to_html(report))
    url = page.resolve().as_uri()

    res = chromium(tmp_path / "p1", "--dump-dom", "--window-size=1280,900", url)
    dom = res.stdout
    assert 'data-audit-ready="1"' in dom, res.stderr[-3000:]
    rows = re.findall(r'<tr id="([^"]+)" class="host-(\w+)[^"]*" data-host="([^"]+)"', dom)
    assert len(rows) == 300
    # the first rows are the problems: unreachable, then unhealthy; healthy ones after
    statuses = [status for _id, status, _host in rows]
    assert statuses[:2] == ["unreachable", "unreachable"]
    assert statuses[2:21] == ["unhealthy"] * 19 and set(statuses[21:]) == {"healthy"}
    assert "profile refsuite" in dom and "in 42 s" in dom
    # every problem link points at a host row of the page
    ids = {row_id for row_id, _s, _h in rows}
    start = dom.index('id="problems"')
    problems = dom[start : dom.index("</ul>", start)]
    links = re.findall(r'href="#([^"]+)"', problems)
    assert len(links) == 21 and set(links) <= ids
    assert dom.index('id="problems"') < dom.index('id="audit"')

    # following a link to a row near the end scrolls it into view
    target = rows[-10][0]
    res = chromium(tmp_path / "p2", "--dump-dom", "--window-size=1280,900", f"{url}#{target}")
    dom = res.stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, res.stderr[-3000:]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("data-target") == target, attrs
    assert int(attrs["data-scroll"]) > 2000  # far down the page
    assert 0 <= int(attrs["data-target-top"]) < 900  # and on screen

    # the filter keeps only the problem rows, the header stays (sticky)
    res = chromium(tmp_path / "p3", "--dump-dom", url + "#only-unhealthy")
    shown = re.search(r'<span id="shown-count">(\d+)</span>', res.stdout)
    assert shown and shown.group(1) == "20"  # 21 problem hosts, the silenced one hidden
    assert "#top{position:sticky" in res.stdout

    shot = tmp_path / "fleet.png"
    chromium(tmp_path / "p4", f"--screenshot={shot}", "--window-size=1280,1000", url)
    width, height, raw = png_pixels(shot)
    assert (width, height) == (1280, 1000) and len(set(raw)) > 50


# ----------------------------------------------------------------------------- history


def test_second_audit_shows_new_and_resolved_problems_and_drift(fleet: Fleet) -> None:
    """Two consecutive audits into one directory: between them charlie's sshd is restarted
    (resolved), ctrl is enabled in alpha's INI (a new problem: ctrl offline) which also
    changes alpha's configuration checksum (drift), and bravo is restarted (its daemons'
    start times change). Runs last: it changes the fleet."""
    extra = ("-e", "health_audit_fail_on_unhealthy=false")
    proc, reports = run_audit(fleet, "run-history", *extra)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    first = json.loads((reports / FILES["json"]).read_text())
    assert first["since_last"] is None

    alpha = fleet.instances["srv-alpha"]
    alpha.config.write_text(
        alpha.config.read_text().replace("[ctrl]\nenabled = false", "[ctrl]\nenabled = true")
    )
    charlie = fleet.instances["cli-charlie"]
    (qm,) = charlie.daemon("qm")
    qm.send_signal(signal.SIGHUP)  # qm restarts failed daemons now
    wait_status_online(charlie)
    bravo = fleet.instances["cli-bravo"]
    res = bravo.refsuite("restart")  # every daemon of bravo gets a new start time
    assert res.returncode == 0, res.stdout + res.stderr
    wait_status_online(bravo)

    proc, reports = run_audit(fleet, "run-history", *extra)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    second = json.loads((reports / FILES["json"]).read_text())
    since = second["since_last"]
    assert since["previous_generated_at"] == first["generated_at"]
    assert ("srv-alpha", "ctrl", "offline") in {
        (p["host"], p["daemon"], p["state"]) for p in since["new_problems"]
    }, since
    assert ("cli-charlie", "sshd", "offline") in {
        (p["host"], p["daemon"], p["state"]) for p in since["resolved_problems"]
    }, since
    assert [(d["host"], d["field"]) for d in since["drift"]] == [("srv-alpha", "config_checksum")]
    assert {(r["host"], r["daemon"]) for r in since["restarted"]} == {
        ("cli-bravo", "qm"),
        ("cli-bravo", "sshd"),
    }, since["restarted"]
    assert len(list((reports / "history").iterdir())) == 2
    page = (reports / FILES["html"]).read_text()
    assert page.index('id="since"') < page.index('id="audit"')
    assert "New problems (1)" in page and "Changed out of band (drift) (1)" in page
    md = (reports / FILES["markdown"]).read_text()
    assert "- resolved problem: **cli-charlie / sshd** (offline)" in md
