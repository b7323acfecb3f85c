"""Every profile shipped with the collection (and the documented example) loads and is sane."""

from __future__ import annotations

import glob
import os

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.plugin_utils.profile_resolver import (
    deployment_profile,
    profile_path,
    resolve_profile,
    resolve_profile_args,
    shipped_profiles,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROFILES = sorted(
    glob.glob(os.path.join(ROOT, "profiles", "*.yml"))
    + glob.glob(os.path.join(ROOT, "profiles", "*", "profile.yml"))
)


def _suite_name(path: str) -> str:
    """profiles/<name>.yml or profiles/<name>/profile.yml -> name"""
    if os.path.basename(path) == "profile.yml":
        return os.path.basename(os.path.dirname(path))
    return os.path.splitext(os.path.basename(path))[0]


def test_expected_profiles_are_shipped() -> None:
    assert shipped_profiles() == ["bacula", "os4x", "refsuite", "seon", "sesam", "sysman"]
    assert sorted(_suite_name(p) for p in PROFILES) == shipped_profiles()


@pytest.mark.parametrize("path", PROFILES, ids=_suite_name)
def test_profile_loads_and_round_trips(path: str) -> None:
    profile = load_profile_file(path)
    assert profile.name == _suite_name(path)
    assert load_profile(profile.to_dict()) == profile
    for daemon in profile.daemons:
        assert daemon.description, f"{path}: daemon {daemon.name} needs a description"
        # regexes are anchored, so `grep NAME` or `vi NAME.log` never match
        assert daemon.cmdline_regex.pattern.startswith("^"), daemon.name
        assert not daemon.matches(["grep", daemon.name])
        assert not daemon.matches(["vi", f"/var/log/{daemon.name}.log"])


REFSUITE_ROLES = {
    "server": ["qm", "db", "ui", "passd", "sms", "data_server", "stpd", "ctrl", "sshd", "sepuler"],
    "rds": ["qm", "passd", "sms", "data_server", "stpd", "ctrl", "sshd"],
    "client": ["qm", "ctrl", "sshd"],
}


@pytest.mark.parametrize("role", sorted(REFSUITE_ROLES))
def test_refsuite_role_sets_match_internals(role: str) -> None:
    profile = resolve_profile("refsuite")
    assert [d.name for d in profile.daemons_for_roles([role])] == REFSUITE_ROLES[role]


def test_refsuite_details() -> None:
    p = resolve_profile("refsuite")
    assert p.daemon("ctrl").enabled is False
    assert [d.name for d in p.daemons if not d.enabled] == ["ctrl"]
    assert p.daemon("stpd").port_numbers == [11000, 11001, 11443]
    assert p.daemon("stpd").ports[0].probe == {
        "type": "http",
        "path": "/health",
        "status": 200,
        "tls": False,
        "timeout": 5.0,
    }
    assert p.daemon("ui").port_numbers == [11401]
    assert p.daemon("sshd").port_numbers == [11322]
    assert p.daemon("ctrl").port_numbers == [11301]
    assert p.daemon("data_server").ancestor == "sms"
    assert p.daemon("data_server").count_min == 1
    assert all(d.ancestor == "qm" for d in p.daemons if d.name not in ("qm", "data_server"))
    assert p.daemon("qm").essential
    assert p.systemd_unit == "refsuite.service"
    assert p.config_file == "/etc/refsuite/refsuite.ini"
    assert p.pid_store is not None and p.pid_store.type == "sqlite"
    assert p.pid_store.table == "daemon_pids" and p.pid_store.path == "/var/lib/refsuite/state.db"
    assert set(p.pid_store.columns) == {"name", "pid", "start_time", "boot_id", "host", "exe"}
    assert p.cluster_data is not None and (p.cluster_data.path, p.cluster_data.depth) == (
        "/var/lib/refsuite/cluster",
        2,
    )
    assert p.control_command("start", force=True) == [
        "/opt/refsuite/bin/refsuite",
        "--config",
        "/etc/refsuite/refsuite.ini",
        "start",
        "--force",
    ]
    qm = p.daemon("qm")
    assert qm.matches(["refsuite-qm", "--config", "/etc/refsuite/refsuite.ini"])
    assert not qm.matches(["refsuite-qmx"])
    assert not p.daemon("sms").matches(["refsuite-sms_extra"])


def test_sesam_matches_the_documented_process_tree() -> None:
    p = resolve_profile("sesam")
    ps = {
        "qm": "/opt/sesam/bin/sesam/sm_qm_main",
        "passd": "/opt/sesam/bin/sms/sm_passd",
        "stpd": "/opt/sesam/bin/sms/sm_stpd_main",
        "ctrl": "/opt/sesam/bin/sesam/sm_ctrld_main",
        "sms_watch": "/opt/sesam/bin/sesam/sm_sms_watch 0",
        "sepuler": "/opt/sesam/bin/sesam/sm_sepuler -d",
        "sms": "/opt/sesam/bin/sms/sm_sms_main",
        "data_server": "sm_data_server 2",
    }
    for name, cmd in ps.items():
        matching = [d.name for d in p.daemons if d.matches(cmd.split())]
        assert matching == [name], (cmd, matching)
    assert not any(d.matches(["grep", "--color=auto", "sm_"]) for d in p.daemons)
    assert not p.daemon("stpd").matches(["/opt/sesam/bin/sms//sm_stpd_utl_main", "0"])
    assert [d.name for d in p.daemons_for_roles(["client"])] == ["qm", "ctrl", "sshd"]
    assert p.daemon("stpd").port_numbers == [11000, 11001, 11443]
    assert p.daemon("rmi").port_numbers == [11401]


@pytest.mark.parametrize("suite", ["seon", "os4x"])
def test_seon_and_os4x(suite: str) -> None:
    p = resolve_profile(suite)
    rd = f"{suite}rd"
    assert p.daemon(f"{rd}_tcpip").port_numbers == [3305]
    assert p.daemon(f"{rd}_tcpip_tls").port_numbers == [6619]
    for name in (f"{rd}_tcpip", f"{rd}_tcpip_tls", f"{rd}_capi"):
        assert p.daemon(name).ancestor == rd
    capi = p.daemon(f"{rd}_capi")
    assert (
        capi.count_min == 0 and capi.matches([f"{rd}_capi_0"]) and capi.matches([f"{rd}_capi_12"])
    )
    assert not capi.matches([f"{rd}_capi_"])
    assert [d.name for d in p.daemons if d.matches([f"/opt/{suite}/bin/{rd}"])] == [rd]
    assert [d.name for d in p.daemons if d.matches([f"{rd}_tcpip_tls"])] == [f"{rd}_tcpip_tls"]
    assert p.daemon(f"{suite}clientd").roles == ("server",)
    assert p.pid_store is not None and p.pid_store.type == "postgresql"
    assert p.pid_store.columns == {"name": "name", "pid": "pid"}
    assert p.control is not None and p.control.force_option


def test_sysman() -> None:
    p = resolve_profile("sysman")
    assert p.roles == ("member",)
    assert p.daemon_names == ["esmd", "evmd", "smsd"]
    assert p.daemon("esmd").essential
    assert p.daemon("smsd").port_numbers == [596]
    assert p.cluster_data is not None
    assert (p.cluster_data.path, p.cluster_data.depth) == ("/var/cluster/sms", 2)


def test_bacula_profile_maps_daemons_to_roles_units_and_pidfiles() -> None:
    p = resolve_profile("bacula")
    assert p.folder is not None and p.folder.endswith(os.path.join("profiles", "bacula"))
    assert p.pid_store is not None
    assert p.pid_store.pidfile_name(p.daemon("bacula-fd")) == "bacula-fd.9102.pid"
    for role, name, port, unit in [
        ("server", "bacula-dir", 9101, "bacula-director.service"),
        ("rds", "bacula-sd", 9103, "bacula-sd.service"),
        ("client", "bacula-fd", 9102, "bacula-fd.service"),
    ]:
        daemon = p.daemon(name)
        assert [d.name for d in p.daemons_for_roles([role])] == [name]
        assert daemon.port_numbers == [port] and daemon.systemd_unit == unit
        # Debian's command line, and the exe rule: a copy elsewhere is not the daemon
        argv = [f"/usr/sbin/{name}", "-fP", "-c", f"/etc/bacula/{name}.conf"]
        assert daemon.matches(argv, exe=f"/usr/sbin/{name}")
        assert not daemon.matches(argv, exe=f"/tmp/{name}")
        assert not daemon.matches([f"/usr/sbin/{name}x"], exe=f"/usr/sbin/{name}x")


def test_bacula_deploy_section() -> None:
    deploy = resolve_profile("bacula").deploy
    assert deploy is not None and deploy["source"] == "packages"
    assert deploy["packages"] == {
        "server": ["bacula-director", "bacula-director-sqlite3", "bacula-console"],
        "rds": ["bacula-sd"],
        "client": ["bacula-fd"],
    }
    assert deploy["secrets"] == ["director", "storage", "client"]
    files = {f["dest"]: f for f in deploy["files"]}
    for name, role in (("bacula-dir", "server"), ("bacula-sd", "rds"), ("bacula-fd", "client")):
        conf = files[f"/etc/bacula/{name}.conf"]
        assert conf["validate"] == f"/usr/sbin/{name} -t -c %s"
        assert conf["restarts"] == [name] and conf["roles"] == [role]
        assert conf["mode"] == "0640"
    # bconsole's file restarts nothing
    assert files["/etc/bacula/bconsole.conf"]["restarts"] == []


def test_refsuite_deploy_section_and_deployment_paths() -> None:
    result = deployment_profile(
        "refsuite",
        paths={"prefix": "/srv/rs", "config_file": "/srv/etc/rs.ini", "state_dir": "/srv/state"},
    )
    deploy, profile = result["deploy"], result["profile"]
    assert deploy["source"] == "bundled"
    assert result["paths"] == {
        "prefix": "/srv/rs",
        "config_file": "/srv/etc/rs.ini",
        "config_dir": "/srv/etc",
        "state_dir": "/srv/state",
        "log_dir": "/var/log/refsuite",
    }
    # placeholders replaced, deploy.profile merged into the profile the modules get
    assert deploy["commands"][0]["argv"] == [
        "/srv/rs/bin/refsuite",
        "--config",
        "/srv/etc/rs.ini",
        "gencert",
    ]
    assert deploy["commands"][0]["creates"] == "/srv/etc/tls.pem"
    assert profile["suite"]["control"]["start"] == [
        "/srv/rs/bin/refsuite",
        "--config",
        "/srv/etc/rs.ini",
        "start",
    ]
    assert profile["suite"]["pid_store"]["path"] == "/srv/state/state.db"
    assert profile["suite"]["config_file"] == "/srv/etc/rs.ini"
    assert "deploy" not in profile
    assert [u["name"] for u in deploy["units"] if u["resume"]] == [
        "refsuite-resume.service",
        "refsuite-resume.timer",
    ]
    # defaults from the suite's name and the profile's config_file
    assert deployment_profile("refsuite")["paths"]["prefix"] == "/opt/refsuite"
    assert deployment_profile("bacula")["paths"]["config_file"] == "/etc/bacula/bacula.ini"


def test_profile_without_deploy_section_deploys_nothing_of_its_own() -> None:
    result = deployment_profile("sesam")
    assert result["deploy"]["source"] == "" and result["deploy"]["files"] == []
    assert result["folder"] is None


def test_folder_profile_templates_must_exist(tmp_path: object) -> None:
    folder = os.path.join(str(tmp_path), "mysuite")
    os.makedirs(os.path.join(folder, "templates"))
    data = resolve_profile("bacula").to_dict()
    data["suite"]["name"] = "mysuite"
    import yaml

    path = os.path.join(folder, "profile.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle)
    with pytest.raises(
        SuiteError, match=r"deploy\.files\[0\]\.src: template 'bacula-dir.conf.j2' not found"
    ):
        load_profile_file(path)
    # shipped twice (file and folder): refused as ambiguous
    with open(os.path.join(str(tmp_path), "mysuite.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle)
    with pytest.raises(SuiteError, match="is shipped twice"):
        profile_path("mysuite", profiles_dir=str(tmp_path))


def test_unknown_profile_name_lists_known() -> None:
    with pytest.raises(SuiteError) as info:
        profile_path("nope")
    assert str(info.value).startswith(
        "profile 'nope' is not shipped; known profiles: bacula, os4x, refsuite, seon, sesam, sysman;"
    )
    assert "profile_data" in str(info.value)
    with pytest.raises(SuiteError, match="is not shipped"):
        profile_path("../profiles/refsuite")


def test_resolve_profile_args(tmp_path: object) -> None:
    args = resolve_profile_args({"profile": "sysman", "instance": "x"})
    assert args["profile"] == "sysman" and args["instance"] == "x"
    assert args["profile_data"] == resolve_profile("sysman").to_dict()
    inline = {"profile_data": {"suite": {"name": "x", "roles": ["a"]}, "daemons": []}}
    with pytest.raises(SuiteError, match=r"^profile_data: daemons: must list at least one"):
        resolve_profile_args(inline)
    args = resolve_profile_args(
        {"profile": "profile.yml"}, find_file=lambda p: os.path.join(ROOT, "profiles", "bacula", p)
    )
    assert args["profile_data"]["suite"]["name"] == "bacula"
    assert args["profile_data"]["daemons"][0]["systemd_unit"] == "bacula-director.service"
    with pytest.raises(SuiteError, match=r"file 'missing.yml' not found"):
        resolve_profile_args({"profile": "missing.yml"}, find_file=lambda p: "/nonexistent/" + p)


def test_resolve_profile_args_roles_from_inventory_groups() -> None:
    # the host's groups that are roles of the suite, in the suite's order; others ignored
    args = resolve_profile_args(
        {"profile": "refsuite"}, group_names=["client", "webservers", "server"]
    )
    assert args["roles"] == ["server", "client"]
    # roles given in the task win over the groups
    args = resolve_profile_args(
        {"profile": "refsuite", "roles": ["rds"]}, group_names=["server", "client"]
    )
    assert args["roles"] == ["rds"]
    # no suite role among the groups: an empty list, which the module refuses with a clear message
    assert resolve_profile_args({"profile": "refsuite"}, group_names=["web"])["roles"] == []
    # without group_names (modules that take no roles) nothing is added
    assert "roles" not in resolve_profile_args({"profile": "refsuite"})
