"""bacula scenario: Bacula from Debian's packages, deployed by site.yml with profiles/bacula/.

Proves the fleet works the way Bacula's users judge it: every daemon's unit active and
listening on the network, the catalogue in place, health_info (through the audit playbook)
SUCCESS everywhere with the shipped profile, a real backup of known files on each client to
the RDS's storage daemon and a restore whose files have the same sha256; then one fault (the
storage daemon stopped) that the audit names and site.yml repairs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from suite_checks import ansible_playbook, podman_hosts, sha256_of
from testinfra import get_host

SERVER, RDS, CLIENTS = "bacula-server", "bacula-rds", ("bacula-client1", "bacula-client2")
testinfra_hosts = podman_hosts(SERVER, RDS, *CLIENTS)

# what each host runs: (daemon, its Debian unit, its port)
DAEMONS = {
    SERVER: ("bacula-dir", "bacula-director.service", 9101),
    RDS: ("bacula-sd", "bacula-sd.service", 9103),
    CLIENTS[0]: ("bacula-fd", "bacula-fd.service", 9102),
    CLIENTS[1]: ("bacula-fd", "bacula-fd.service", 9102),
}
DATA = "/srv/molecule-data"  # common_deploy_vars.backup_paths in molecule.yml
CATALOG = "/var/lib/bacula/bacula.db"


def _host(name: str):
    return get_host(f"podman://{name}")


def _report_dir(name: str) -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "bacula" / name


def _audit(name: str):
    """playbooks/health_audit.yml with the shipped profile (health_audit_profile: bacula in
    the scenario's group_vars); (process, JSON report)."""
    out = _report_dir(name)
    proc = ansible_playbook("health_audit.yml", "-e", f"health_audit_report_dir={out}")
    report_path = out / "health_audit.json"
    assert report_path.is_file(), f"no report (rc {proc.returncode}): {proc.stdout[-3000:]}"
    return proc, json.loads(report_path.read_text(encoding="utf-8"))


def _bconsole(commands: str) -> str:
    server = _host(SERVER)
    result = server.run(
        f"printf '%s\\n' {shlex.quote(commands)} | bconsole -c /etc/bacula/bconsole.conf"
    )
    assert result.rc == 0, f"bconsole failed: {result.stdout}{result.stderr}"
    return result.stdout


def _job(jobid: int) -> tuple[str, int]:
    """(JobStatus, JobFiles) of a job, from the catalogue (SQLite) on the server."""
    out = _host(SERVER).check_output(
        f"sqlite3 {CATALOG} 'SELECT JobStatus, JobFiles FROM Job WHERE JobId = {int(jobid)}'"
    )
    status, files = out.split("|")
    return status, int(files)


def _queued_jobid(output: str) -> int:
    found = re.findall(r"JobId=(\d+)", output)
    assert found, f"no job was queued:\n{output}"
    return int(found[-1])


# -- the deployment -----------------------------------------------------------------------


def test_daemon_unit_is_active_enabled_and_listening_on_the_network(host):
    name, unit, port = DAEMONS[host.backend.hostname]
    service = host.service(unit.removesuffix(".service"))
    assert service.is_running and service.is_enabled, f"{unit} on {host.backend.hostname}"
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"{name} not on 0.0.0.0:{port}"
    pids = host.check_output(f"systemctl show -p MainPID --value {unit}")
    exe = host.check_output(f"readlink /proc/{pids}/exe")
    assert exe == f"/usr/sbin/{name}"


def test_configuration_is_private_and_valid(host):
    name, _unit, _port = DAEMONS[host.backend.hostname]
    conf = host.file(f"/etc/bacula/{name}.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "bacula", 0o640)
    assert host.run(f"/usr/sbin/{name} -t -c /etc/bacula/{name}.conf").rc == 0


def test_director_knows_every_client_and_storage_of_the_inventory():
    conf = _host(SERVER).check_output("cat /etc/bacula/bacula-dir.conf")
    for client in CLIENTS:
        assert f"Name = {client}-fd" in conf and f'Name = "Backup-{client}"' in conf
    assert f"Name = {RDS}-sd" in conf and f"Address = {RDS}" in conf


def test_catalogue_exists():
    tables = _host(SERVER).check_output(f"sqlite3 {CATALOG} .tables").split()
    assert {"Job", "File", "Media", "Pool", "Client"} <= set(tables), tables


def test_secrets_are_generated_once_on_the_controller_and_private():
    secrets = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".secrets" / "bacula"
    files = sorted(p.name for p in secrets.iterdir())
    assert files == ["client", "director", "storage"], files
    for path in secrets.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert len(path.read_text().split()[0]) == 32
    client_password = (secrets / "client").read_text().split()[0]
    for client in CLIENTS:
        conf = _host(client).check_output("cat /etc/bacula/bacula-fd.conf")
        assert f'Password = "{client_password}"' in conf


def test_audit_with_the_shipped_profile_is_healthy_everywhere():
    proc, report = _audit("healthy")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["unhealthy_hosts"] == [], report["problems"]
    for name, (daemon, _unit, _port) in DAEMONS.items():
        entry = report["hosts"][name]
        assert entry["status"] == "healthy", entry
        assert entry["daemons"][daemon]["state"] == "online", entry["daemons"]


# -- a real backup and restore ------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_backup_and_restore_give_back_the_same_files(client):
    fd = _host(client)
    # known files: random binary, text, a name with spaces, a nested directory
    fd.check_output(
        f"rm -rf {DATA} && mkdir -p '{DATA}/nested dir/deeper' && "
        f"head -c 3145728 /dev/urandom > {DATA}/random.bin && "
        f"echo 'backed up from {client}' > '{DATA}/nested dir/hello world.txt' && "
        f"head -c 65536 /dev/urandom > '{DATA}/nested dir/deeper/part.dat'"
    )
    listing = fd.check_output(
        f"cd {DATA} && find . -type f -print0 | xargs -0 sha256sum | sort -k2"
    )
    originals = dict(reversed(line.split(None, 1)) for line in listing.splitlines())
    assert len(originals) == 3, originals

    out = _bconsole(f"run job=Backup-{client} level=Full yes\nwait\n")
    backup = _queued_jobid(out)
    status, files = _job(backup)
    assert status == "T", f"backup job {backup} ended {status}:\n{_bconsole('messages')}"
    assert files >= 3

    where = f"/var/tmp/molecule-restore-{backup}"
    out = _bconsole(
        f"restore client={client}-fd restoreclient={client}-fd jobid={backup} "
        f"where={where} all done yes\nwait\n"
    )
    restore = _queued_jobid(out)
    status, files = _job(restore)
    assert status == "T", f"restore job {restore} ended {status}:\n{_bconsole('messages')}"
    listing = fd.check_output(
        f"cd {where}{DATA} && find . -type f -print0 | xargs -0 sha256sum | sort -k2"
    )
    restored = dict(reversed(line.split(None, 1)) for line in listing.splitlines())
    assert restored == originals
    # and the volume is on the RDS host's storage daemon
    assert _host(RDS).check_output("ls /var/lib/bacula/volumes").split(), "no volume on the RDS"
    assert sha256_of(fd, f"{where}{DATA}/random.bin") == originals["./random.bin"]


# -- check mode, diff, secrets ------------------------------------------------------------


def _secrets() -> list[str]:
    folder = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".secrets" / "bacula"
    return [p.read_text().split()[0] for p in folder.iterdir()]


def test_check_diff_on_the_deployed_fleet_changes_nothing_and_shows_no_secret():
    proc = ansible_playbook("site.yml", "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.MULTILINE)
    assert sorted(host for host, _changed in recap) == sorted(DAEMONS), recap
    assert all(changed == "0" for _name, changed in recap), proc.stdout[-4000:]
    for secret in _secrets():
        assert secret not in proc.stdout and secret not in proc.stderr


def _main_pids() -> dict[str, int]:
    return {
        name: int(_host(name).check_output(f"systemctl show -p MainPID --value {unit}"))
        for name, (_daemon, unit, _port) in DAEMONS.items()
    }


def test_a_changed_director_file_restarts_only_the_director():
    """The handler restarts the daemons named by the files that changed, nothing else. (The
    fault test below runs site.yml with the scenario's own values again.)"""
    before = _main_pids()
    more = {"common_deploy_vars": {"backup_paths": [DATA, "/etc/hostname"]}}
    proc = ansible_playbook("site.yml", "-e", json.dumps(more))
    assert proc.returncode == 0, proc.stdout[-4000:]
    after = _main_pids()
    assert after[SERVER] != before[SERVER], "bacula-director was not restarted"
    assert {n: after[n] for n in DAEMONS if n != SERVER} == {
        n: before[n] for n in DAEMONS if n != SERVER
    }, "daemons whose files did not change were restarted"
    assert 'File = "/etc/hostname"' in _host(SERVER).check_output("cat /etc/bacula/bacula-dir.conf")


# -- one fault: the storage daemon stops ----------------------------------------------------


def test_stopped_storage_daemon_is_named_by_the_audit_and_site_yml_brings_it_back():
    rds = _host(RDS)
    rds.check_output("systemctl stop bacula-sd.service")
    try:
        proc, report = _audit("sd-stopped")
        assert proc.returncode == 2, "the audit must exit 2 (unhealthy) with bacula-sd stopped"
        assert report["unhealthy_hosts"] == [RDS], report["unhealthy_hosts"]
        assert report["hosts"][RDS]["daemons"]["bacula-sd"]["state"] == "offline"
        assert {(p["host"], p["daemon"]) for p in report["problems"]} == {(RDS, "bacula-sd")}
        # the recap fails exactly the unhealthy host, one line with its reason
        assert f"{RDS} is unhealthy: bacula-sd offline" in proc.stdout, proc.stdout[-2000:]
        markdown = (_report_dir("sd-stopped") / "health_audit.md").read_text(encoding="utf-8")
        assert "bacula-sd" in markdown and "offline" in markdown
    finally:
        site = ansible_playbook("site.yml", "--diff")
    assert site.returncode == 0, site.stdout[-4000:]
    for secret in _secrets():
        assert secret not in site.stdout and secret not in site.stderr
    assert rds.service("bacula-sd").is_running
    proc, report = _audit("repaired")
    assert proc.returncode == 0 and report["unhealthy_hosts"] == [], report["problems"]
