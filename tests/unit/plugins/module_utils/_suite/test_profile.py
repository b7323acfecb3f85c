"""Unit tests for the suite profile: every validation rule, matching, INI overrides."""

from __future__ import annotations

import copy
import re
import typing as t

import pytest

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import (
    ProfileError,
    SuiteError,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile import (
    Daemon,
    Port,
    Profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
    load_profile_file,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.suite_ini import apply_config

SRC = "profiles/t.yml"


def base() -> dict[str, t.Any]:
    """A valid profile touching every feature; tests mutate a deep copy."""
    return copy.deepcopy(
        {
            "suite": {
                "name": "tsuite",
                "description": "test suite",
                "roles": ["server", "rds", "client"],
                "control": {
                    "start": ["/opt/t/bin/t", "--config", "/etc/t/t.ini", "start"],
                    "stop": ["/opt/t/bin/t", "stop"],
                    "status": ["/opt/t/bin/t", "status"],
                    "force_option": "--force",
                },
                "systemd_unit": "t.service",
                "config_file": "/etc/t/t.ini",
                "pid_store": {
                    "type": "sqlite",
                    "path": "/var/lib/t/state.db",
                    "table": "daemon_pids",
                    "columns": {"name": "name", "pid": "pid", "start_time": "st"},
                },
                "cluster_data": {"path": "/var/lib/t/cluster", "depth": 2},
            },
            "daemons": [
                {
                    "name": "qm",
                    "roles": ["server", "rds", "client"],
                    "match": {"cmdline": "^t-qm( |$)"},
                    "essential": True,
                    "count": {"min": 1, "max": 1},
                },
                {
                    "name": "sms",
                    "roles": ["server", "rds"],
                    "match": {"cmdline": "^t-sms( |$)"},
                    "ancestor": "qm",
                },
                {
                    "name": "stpd",
                    "description": "transfer",
                    "roles": ["server", "rds"],
                    "match": {"cmdline": "^t-stpd( |$)", "exe": "python"},
                    "ancestor": "qm",
                    "ports": [
                        {
                            "port": 11000,
                            "probe": {"type": "http", "path": "/health", "status": 200},
                        },
                        {"port": 11001},
                        {"port": 11443, "probe": {"type": "tcp"}},
                    ],
                },
                {
                    "name": "ctrl",
                    "roles": ["client"],
                    "match": {"cmdline": "^t-ctrl( |$)"},
                    "ports": [{"port": 11301}],
                    "enabled": False,
                },
            ],
        }
    )


def refused(data: t.Any, *fragments: str) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(data, source=SRC)
    msg = str(info.value)
    assert msg.startswith(f"{SRC}: "), msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    return msg


def daemon(data: dict[str, t.Any], name: str) -> dict[str, t.Any]:
    return next(d for d in data["daemons"] if d["name"] == name)


# ------------------------------------------------------------------------------ valid data


def test_base_profile_loads_with_defaults() -> None:
    profile = load_profile(base(), source=SRC)
    assert profile.name == "tsuite"
    assert profile.source == SRC
    assert profile.roles == ("server", "rds", "client")
    assert profile.daemon_names == ["qm", "sms", "stpd", "ctrl"]
    sms = profile.daemon("sms")
    assert (sms.count_min, sms.count_max, sms.essential, sms.enabled) == (1, None, False, True)
    assert sms.ports == ()
    stpd = profile.daemon("stpd")
    assert stpd.port_numbers == [11000, 11001, 11443]
    assert stpd.ports[0].probe == {
        "type": "http",
        "path": "/health",
        "status": 200,
        "tls": False,
        "timeout": 5.0,
    }
    assert stpd.ports[1].probe is None
    assert stpd.ports[2].probe == {"type": "tcp", "timeout": 5.0}
    assert isinstance(stpd.cmdline_regex, re.Pattern)
    assert profile.daemon("ctrl").enabled is False
    assert profile.pid_store is not None
    assert profile.pid_store.columns == {"name": "name", "pid": "pid", "start_time": "st"}
    assert profile.cluster_data is not None and profile.cluster_data.depth == 2
    assert profile.control is not None and profile.control.force_option == "--force"


def test_errors_are_suite_errors_with_msg() -> None:
    with pytest.raises(SuiteError) as info:
        load_profile({"suite": {}}, source=SRC)
    assert info.value.msg == str(info.value)


def test_to_dict_round_trips_and_is_json() -> None:
    import json

    profile = load_profile(base(), source=SRC)
    data = json.loads(json.dumps(profile.to_dict()))
    again = load_profile(data, source="again")
    assert again == profile
    assert again.to_dict() == profile.to_dict()


def test_daemon_lookup_and_unknown_daemon() -> None:
    profile = load_profile(base(), source=SRC)
    assert profile.daemon("qm").name == "qm"
    with pytest.raises(ProfileError, match=r"no daemon 'nope'; known daemons: qm, sms, stpd"):
        profile.daemon("nope")


def test_daemons_for_roles_keeps_profile_order() -> None:
    profile = load_profile(base(), source=SRC)
    assert [d.name for d in profile.daemons_for_roles(["client"])] == ["qm", "ctrl"]
    assert [d.name for d in profile.daemons_for_roles(["rds", "client"])] == [
        "qm",
        "sms",
        "stpd",
        "ctrl",
    ]
    assert profile.daemons_for_roles([]) == []
    with pytest.raises(
        ProfileError,
        match=r"^roles: member not a role of suite tsuite; use some of server, rds, client",
    ):
        profile.daemons_for_roles(["member"])


def test_control_command() -> None:
    profile = load_profile(base(), source=SRC)
    assert profile.control_command("start") == ["/opt/t/bin/t", "--config", "/etc/t/t.ini", "start"]
    assert profile.control_command("start", force=True, config_file="/etc/t/b.ini") == [
        "/opt/t/bin/t",
        "--config",
        "/etc/t/b.ini",
        "start",
        "--force",
    ]
    with pytest.raises(ProfileError, match=r"no suite.control.restart"):
        profile.control_command("restart")
    with pytest.raises(ProfileError, match=r"unknown control action"):
        profile.control_command("reload")


def test_per_daemon_control_unit_and_log() -> None:
    data = base()
    data["suite"]["control"]["start_daemon"] = [
        "/opt/t/bin/t",
        "--config",
        "/etc/t/t.ini",
        "start",
        "{daemon}",
    ]
    data["daemons"][0]["systemd_unit"] = "t-first.service"
    data["daemons"][0]["log_file"] = "/var/log/t/first.log"
    profile = load_profile(data, source=SRC)
    first = profile.daemons[0]
    assert first.systemd_unit == "t-first.service" and first.log_file == "/var/log/t/first.log"
    assert profile.daemons[1].systemd_unit is None and profile.daemons[1].log_file is None
    assert profile.daemon_command("start_daemon", "x", force=True, config_file="/b.ini") == [
        "/opt/t/bin/t",
        "--config",
        "/b.ini",
        "start",
        "x",
        "--force",
    ]
    assert profile.daemon_command("stop_daemon", "x") is None
    again = load_profile(profile.to_dict(), source=SRC)
    assert again.daemons[0].systemd_unit == "t-first.service"
    assert again.control is not None and again.control.start_daemon == profile.control.start_daemon


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["suite"]["control"].update(stop_daemon=["/t", "stop"]),
            r"control.stop_daemon.*'\{daemon\}'",
        ),
        (lambda d: d["daemons"][0].update(log_file="rel.log"), r"log_file.*absolute path"),
        (lambda d: d["daemons"][0].update(systemd_unit=3), r"systemd_unit"),
    ],
)
def test_per_daemon_keys_refused(change: t.Callable[[dict], None], message: str) -> None:
    data = base()
    change(data)
    with pytest.raises(ProfileError, match=message):
        load_profile(data, source=SRC)


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("top", "extra"),
        ("suite", "nmae"),
        ("control", "kill"),
        ("pid_store", "file"),
        ("columns", "pidd"),
        ("cluster_data", "deep"),
        ("daemon", "port"),
        ("match", "argv"),
        ("port", "proto"),
        ("probe", "url"),
        ("count", "maximum"),
    ],
)
def test_unknown_key_refused_at_every_level(where: str, key: str) -> None:
    data = base()
    stpd = daemon(data, "stpd")
    target = {
        "top": data,
        "suite": data["suite"],
        "control": data["suite"]["control"],
        "pid_store": data["suite"]["pid_store"],
        "columns": data["suite"]["pid_store"]["columns"],
        "cluster_data": data["suite"]["cluster_data"],
        "daemon": stpd,
        "match": stpd["match"],
        "port": stpd["ports"][1],
        "probe": stpd["ports"][0]["probe"],
        "count": daemon(data, "qm")["count"],
    }[where]
    target[key] = 1
    msg = refused(data, key, "unknown key")
    if where in ("daemon", "match", "port", "probe"):
        assert "daemon 'stpd'" in msg
    if where == "count":
        assert "daemon 'qm'" in msg and "count.maximum" in msg
    if where == "probe":
        assert "ports[0].probe.url" in msg
    if where == "columns":
        assert "pid_store.columns.pidd" in msg


def test_unknown_key_suggests_close_match() -> None:
    data = base()
    daemon(data, "stpd")["ports"][0]["probe"]["paht"] = "/x"
    refused(data, "daemon 'stpd'", "ports[0].probe.paht", "did you mean 'path'?")


def test_daemon_without_match_cmdline() -> None:
    data = base()
    del daemon(data, "sms")["match"]
    refused(data, "daemon 'sms'", "match: missing required field")
    data = base()
    daemon(data, "sms")["match"] = {"exe": "x"}
    refused(data, "daemon 'sms'", "match.cmdline: missing required field")


@pytest.mark.parametrize("field", ["cmdline", "exe"])
def test_invalid_regex_named(field: str) -> None:
    data = base()
    daemon(data, "stpd")["match"][field] = "^t-stpd(["
    refused(data, "daemon 'stpd'", f"match.{field}", "invalid regular expression '^t-stpd(['")


@pytest.mark.parametrize("value", [0, 70000, -1, 65536])
def test_port_outside_range(value: int) -> None:
    data = base()
    daemon(data, "stpd")["ports"][1]["port"] = value
    msg = refused(data)
    assert msg == f"{SRC}: daemon 'stpd': ports[1].port: {value} is outside 1-65535"


@pytest.mark.parametrize("value", ["11001", 11001.0, True, None])
def test_port_not_integer(value: t.Any) -> None:
    data = base()
    daemon(data, "stpd")["ports"][1]["port"] = value
    if value is None:
        refused(data, "daemon 'stpd'", "ports[1].port: missing required field")
    else:
        refused(data, "daemon 'stpd'", "ports[1].port: must be an integer")


def test_port_boundaries_accepted() -> None:
    data = base()
    daemon(data, "stpd")["ports"][1]["port"] = 65535
    daemon(data, "ctrl")["ports"][0]["port"] = 1
    profile = load_profile(data, source=SRC)
    assert profile.daemon("stpd").port_numbers[1] == 65535
    assert profile.daemon("ctrl").port_numbers == [1]


def test_same_port_on_two_daemons_names_both() -> None:
    data = base()
    daemon(data, "ctrl")["ports"][0]["port"] = 11001
    refused(data, "daemon 'ctrl'", "ports[0].port", "11001", "daemon 'stpd'")


def test_same_port_twice_in_one_daemon() -> None:
    data = base()
    daemon(data, "stpd")["ports"][2]["port"] = 11000
    refused(data, "daemon 'stpd'", "ports[2].port", "already listed as ports[0]")


def test_unknown_ancestor() -> None:
    data = base()
    daemon(data, "sms")["ancestor"] = "master"
    refused(data, "daemon 'sms'", "ancestor", "'master' is not a daemon of this profile")


def test_ancestry_cycle_printed() -> None:
    data = base()
    daemon(data, "qm")["ancestor"] = "sms"
    refused(data, "daemon 'qm'", "ancestor", "ancestry cycle qm -> sms -> qm")


def test_self_ancestor_is_a_cycle() -> None:
    data = base()
    daemon(data, "sms")["ancestor"] = "sms"
    refused(data, "daemon 'sms'", "ancestry cycle sms -> sms")


def test_long_cycle_printed_in_order() -> None:
    data = base()
    daemon(data, "qm")["ancestor"] = "stpd"
    daemon(data, "stpd")["ancestor"] = "sms"
    refused(data, "ancestry cycle qm -> stpd -> sms -> qm")


def test_daemon_role_not_in_suite_roles() -> None:
    data = base()
    daemon(data, "ctrl")["roles"] = ["client", "member"]
    refused(data, "daemon 'ctrl'", "roles[1]", "role 'member' is not in suite.roles")


def test_daemon_needs_a_role() -> None:
    data = base()
    daemon(data, "ctrl")["roles"] = []
    refused(data, "daemon 'ctrl'", "roles: must name at least one role")


def test_duplicate_daemon_names() -> None:
    data = base()
    data["daemons"].append(copy.deepcopy(daemon(data, "sms")))
    refused(data, "daemon 'sms'", "name: duplicate daemon name (also daemons[1])")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("suite",), "suite: missing required field"),
        (("suite", "name"), "suite.name: missing required field"),
        (("suite", "roles"), "suite.roles: missing required field"),
        (("daemons",), "daemons: missing required field"),
        (("control", "start"), "control.start: missing required field"),
        (("pid_store", "type"), "pid_store.type: missing required field"),
        (("pid_store", "table"), "pid_store.table: missing required field"),
        (("pid_store", "path"), "pid_store.path: missing required field"),
        (("cluster_data", "path"), "cluster_data.path: missing required field"),
    ],
)
def test_missing_required_fields(path: tuple[str, ...], expected: str) -> None:
    data = base()
    if path[0] in ("control", "pid_store", "cluster_data"):
        del data["suite"][path[0]][path[1]]
    elif len(path) == 2:
        del data[path[0]][path[1]]
    else:
        del data[path[0]]
    refused(data, expected)


def test_daemon_missing_name_uses_index() -> None:
    data = base()
    del data["daemons"][2]["name"]
    refused(data, "daemons[2]: name: missing required field")


def test_daemon_missing_roles() -> None:
    data = base()
    del daemon(data, "sms")["roles"]
    refused(data, "daemon 'sms': roles: missing required field")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.__setitem__("daemons", {"qm": {}}), "daemons: must be a list"),
        (lambda d: d["suite"].__setitem__("roles", "server"), "suite.roles: must be a list"),
        (lambda d: d["suite"].__setitem__("name", 5), "suite.name: must be a string"),
        (lambda d: d["suite"].__setitem__("name", "T-Suite"), "suite.name: 'T-Suite' must match"),
        (lambda d: d["daemons"][0].__setitem__("essential", "yes"), "essential: must be true or"),
        (lambda d: d["daemons"][0].__setitem__("enabled", 1), "enabled: must be true or false"),
        (lambda d: d["daemons"][0].__setitem__("match", "^x"), "match: must be a mapping"),
        (lambda d: d["daemons"][2].__setitem__("ports", 11000), "ports: must be a list"),
        (lambda d: d["daemons"][2]["ports"].__setitem__(0, 11000), "ports[0]: must be a mapping"),
        (lambda d: d["daemons"][0]["count"].__setitem__("min", "1"), "count.min: must be an int"),
        (lambda d: d["daemons"][0]["count"].__setitem__("min", -1), "count.min: -1 must be 0"),
        (lambda d: d["suite"]["control"].__setitem__("stop", "t stop"), "control.stop: must be"),
        (lambda d: d["suite"]["control"].__setitem__("stop", []), "control.stop: must be a non"),
        (lambda d: d["daemons"][0].__setitem__("name", "q m"), "name: 'q m' is not a valid"),
        (lambda d: d.__setitem__("daemons", []), "daemons: must list at least one daemon"),
        (lambda d: d["suite"].__setitem__("config_file", "t.ini"), "suite.config_file: 't.ini'"),
        (lambda d: d["suite"]["roles"].append("rds"), "suite.roles[3]: role 'rds' is listed tw"),
    ],
)
def test_wrong_types_and_values(
    mutate: t.Callable[[dict[str, t.Any]], None], expected: str
) -> None:
    data = base()
    mutate(data)
    refused(data, expected)


def test_not_a_mapping_at_all() -> None:
    refused(["suite"], "must be a mapping, got a list")
    refused(None, "must be a mapping, got null")


def test_count_min_greater_than_max() -> None:
    data = base()
    daemon(data, "qm")["count"] = {"min": 3, "max": 2}
    refused(data, "daemon 'qm'", "count: min 3 is greater than max 2")


def test_count_max_zero_refused_and_min_zero_accepted() -> None:
    data = base()
    daemon(data, "qm")["count"] = {"min": 0, "max": 0}
    refused(data, "daemon 'qm'", "count.max: 0 must be 1 or more")
    data = base()
    daemon(data, "sms")["count"] = {"min": 0}
    assert load_profile(data).daemon("sms").count_min == 0


def test_pid_store_type_must_be_known() -> None:
    data = base()
    data["suite"]["pid_store"]["type"] = "mysql"
    refused(data, "suite: pid_store.type: 'mysql' is not one of sqlite, pidfile, postgresql")


def test_pid_store_keys_that_do_not_apply() -> None:
    data = base()
    data["suite"]["pid_store"]["dsn"] = "dbname=x"
    refused(data, "pid_store.dsn: only applies to pid_store type postgresql")
    data = base()
    data["suite"]["pid_store"] = {"type": "pidfile", "path": "/run/t", "table": "x"}
    refused(data, "pid_store.table: only applies to pid_store type sqlite or postgresql")
    data = base()
    data["suite"]["pid_store"] = {"type": "postgresql", "table": "x", "path": "/x"}
    refused(data, "pid_store.path: only applies to pid_store type sqlite or pidfile")


def test_pid_store_table_and_columns_must_be_identifiers() -> None:
    data = base()
    data["suite"]["pid_store"]["table"] = "pids; DROP TABLE x"
    refused(data, "pid_store.table: 'pids; DROP TABLE x' is not a plain table name")
    data = base()
    data["suite"]["pid_store"]["columns"]["pid"] = "pid)"
    refused(data, "pid_store.columns.pid: 'pid)' is not a plain column name")
    data = base()
    del data["suite"]["pid_store"]["columns"]["name"]
    refused(data, "pid_store.columns.name: missing required field")


def test_pid_store_postgresql_and_pidfile() -> None:
    data = base()
    data["suite"]["pid_store"] = {"type": "postgresql", "dsn": "dbname=seon", "table": "s.pids"}
    store = load_profile(data).pid_store
    assert store is not None
    assert (store.type, store.dsn, store.table, store.path) == (
        "postgresql",
        "dbname=seon",
        "s.pids",
        None,
    )
    assert store.columns == {"name": "name", "pid": "pid"}
    data = base()
    data["suite"]["pid_store"] = {
        "type": "pidfile",
        "path": "/run/t",
        "pattern": "{name}.{port}.pid",
    }
    profile = load_profile(data)
    assert profile.pid_store is not None
    assert profile.pid_store.pidfile_name(profile.daemon("stpd")) == "stpd.11000.pid"
    assert profile.pid_store.pidfile_name(profile.daemon("qm")) == "qm..pid"
    data["suite"]["pid_store"] = {"type": "pidfile", "path": "/run/t"}
    profile = load_profile(data)
    assert profile.pid_store is not None
    assert profile.pid_store.pidfile_name(profile.daemon("qm")) == "qm.pid"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("../{name}.pid", "must be a file name"),
        ("{pid}.pid", "may only use the fields"),
        ("fixed.pid", "must contain {name}"),
    ],
)
def test_pidfile_pattern_refused(pattern: str, expected: str) -> None:
    data = base()
    data["suite"]["pid_store"] = {"type": "pidfile", "path": "/run/t", "pattern": pattern}
    refused(data, "pid_store.pattern", expected)


def test_pid_store_path_must_be_absolute() -> None:
    data = base()
    data["suite"]["pid_store"]["path"] = "state.db"
    refused(data, "pid_store.path: 'state.db' must be an absolute path")


@pytest.mark.parametrize("depth", [0, -2])
def test_cluster_data_depth_below_one(depth: int) -> None:
    data = base()
    data["suite"]["cluster_data"]["depth"] = depth
    refused(data, "suite: cluster_data.depth", f"{depth} must be 1 or more")


def test_cluster_data_relative_path() -> None:
    data = base()
    data["suite"]["cluster_data"]["path"] = "var/cluster/sms"
    refused(data, "cluster_data.path: 'var/cluster/sms' must be an absolute path")


def test_cluster_data_defaults_and_normalises() -> None:
    data = base()
    data["suite"]["cluster_data"] = {"path": "/var/cluster/sms/"}
    cluster = load_profile(data).cluster_data
    assert cluster is not None and (cluster.path, cluster.depth) == ("/var/cluster/sms", 1)


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        ({"type": "icmp"}, "probe.type: 'icmp' is not one of tcp, http"),
        ({"type": "tcp", "path": "/x"}, "probe.path: only applies to probe type http"),
        ({"type": "http", "path": "health"}, "probe.path: 'health' must start with '/'"),
        ({"type": "http", "status": 42}, "probe.status: 42 is not an HTTP status"),
        ({"type": "http", "timeout": 0}, "probe.timeout: must be a positive number"),
        ({"type": "http", "tls": "yes"}, "probe.tls: must be true or false"),
        ({"path": "/"}, "probe.type: missing required field"),
    ],
)
def test_probe_validation(probe: dict[str, t.Any], expected: str) -> None:
    data = base()
    daemon(data, "stpd")["ports"][0]["probe"] = probe
    refused(data, "daemon 'stpd'", f"ports[0].{expected}")


# ------------------------------------------------------------------------------ matching


def make_daemon(pattern: str, exe: t.Optional[str] = None) -> Daemon:
    return Daemon(
        name="d",
        description="",
        roles=("server",),
        cmdline_regex=re.compile(pattern),
        exe_regex=re.compile(exe) if exe else None,
        ancestor=None,
        ports=(Port(1),),
    )


def test_matches_long_names_beyond_comm_limit() -> None:
    # comm would be cut to 15 characters ("seonrd_tcpip_tl"); the cmdline is complete
    tls = make_daemon(r"^(\S*/)?seonrd_tcpip_tls( |$)")
    plain = make_daemon(r"^(\S*/)?seonrd_tcpip( |$)")
    assert tls.matches(["seonrd_tcpip_tls"])
    assert not plain.matches(["seonrd_tcpip_tls"])
    assert plain.matches(["seonrd_tcpip"])
    ds = make_daemon("^refsuite-data_server( |$)")
    assert ds.matches(["refsuite-data_server", "1", "--config", "/etc/refsuite/refsuite.ini"])


def test_grep_and_editor_lines_not_matched() -> None:
    stpd = make_daemon(r"^(\S*/)?sm_stpd_main( |$)")
    assert stpd.matches(["/opt/sesam/bin/sms/sm_stpd_main"])
    assert stpd.matches(["/opt/sesam/bin/sms/sm_stpd_main", "-D"])
    assert not stpd.matches(["grep", "--color=auto", "sm_stpd_main"])
    assert not stpd.matches(["vi", "/var/log/sm_stpd_main.log"])
    assert not stpd.matches(["less", "/opt/sesam/bin/sms/sm_stpd_main"])
    assert not stpd.matches(["/opt/sesam/bin/sms/sm_stpd_main_old"])
    assert not stpd.matches([])


def test_exe_regex_and_instance_filter() -> None:
    qm = make_daemon("^refsuite-qm( |$)", exe="python3")
    cmd = ["refsuite-qm", "--config", "/srv/a/refsuite.ini"]
    assert qm.matches(cmd, exe="/usr/bin/python3.11")
    assert not qm.matches(cmd, exe="/usr/bin/perl")
    assert qm.matches(cmd, exe=None)  # unreadable exe is not held against the process
    assert qm.matches(cmd, instance="/srv/a/refsuite.ini")
    assert not qm.matches(cmd, instance="/srv/b/refsuite.ini")
    assert qm.matches(cmd, instance="")


def test_shipped_sesam_regexes_via_profile() -> None:
    profile = load_profile_file(_root() + "/profiles/sesam.yml")
    db = profile.daemon("db")
    assert db.matches(["/usr/lib/postgresql/15/bin/postmaster", "-D", "/var/opt/sesam/db"])
    assert not db.matches(["postgres: checkpointer"])
    rmi = profile.daemon("rmi")
    assert rmi.matches(
        [
            "java",
            "-classpath",
            "/opt/sesam/bin/gui//sm_ui.jar",
            "de.sep.sesam.gui.server.GUIServer",
            "-p11401",
        ]
    )
    assert not rmi.matches(["grep", "de.sep.sesam.gui.server.GUIServer"])


def _root() -> str:
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(os.path.join(here, "..", "..", "..", "..", ".."))


# ------------------------------------------------------------------------------ INI overrides


def loaded() -> Profile:
    return load_profile(base(), source=SRC)


def test_apply_config_enables_and_replaces_ports(tmp_path: t.Any) -> None:
    ini = tmp_path / "t.ini"
    ini.write_text(
        "[suite]\nrole = server ; comment\n"
        "[ctrl]\nenabled = true\nport = 12301\n"
        "[stpd]\nports = 12000, 12001, 12002\n"
        "[sms]\ndata_servers = 2\n"
    )
    profile = apply_config(loaded(), str(ini))
    assert profile.daemon("ctrl").enabled is True
    assert profile.daemon("ctrl").port_numbers == [12301]
    stpd = profile.daemon("stpd")
    assert stpd.port_numbers == [12000, 12001, 12002]
    # each port keeps its probe: the INI gives as many ports as the profile
    assert stpd.ports[0].probe is not None and stpd.ports[0].probe["path"] == "/health"
    assert stpd.ports[1].probe is None
    assert stpd.ports[2].probe is not None and stpd.ports[2].probe["type"] == "tcp"
    assert profile.daemon("sms") == loaded().daemon("sms")


def test_apply_config_missing_file_or_no_path_unchanged(tmp_path: t.Any) -> None:
    profile = loaded()
    assert apply_config(profile, str(tmp_path / "absent.ini")) is profile
    data = base()
    del data["suite"]["config_file"]
    bare = load_profile(data)
    assert apply_config(bare) is bare


def test_apply_config_uses_suite_config_file_by_default(tmp_path: t.Any) -> None:
    ini = tmp_path / "t.ini"
    ini.write_text("[ctrl]\nenabled = yes\n")
    data = base()
    data["suite"]["config_file"] = str(ini)
    assert apply_config(load_profile(data)).daemon("ctrl").enabled is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ctrl]\nenabled = maybe\n", "line 2: [ctrl] enabled: 'maybe' is not a boolean"),
        ("[ctrl]\n\nport = 99999\n", "line 3: [ctrl] port: port 99999 is outside 1-65535"),
        ("[stpd]\nports = 1,x\n", "line 2: [stpd] ports: 'x' is not a port number"),
        ("[ctrl]\nport = 1,2\n", "line 2: [ctrl] port: give one port number"),
        ("[stpd]\nports = 5,5\n", "[stpd] ports: '5,5' lists a port twice"),
        ("garbage\n[ctrl]\n", "line 1: not a valid INI file"),
        ("[ctrl]\nenabled = true\nenabled = false\n", "line 3: not a valid INI file"),
        (
            "[ctrl]\nport = 11000\n",
            "line 2: [ctrl] port: port 11000 is used by both stpd and ctrl",
        ),
        ("[stpd]\nports = 12000, 12001\n", "line 2: [stpd] ports: 2 port(s) given"),
        ("[sms]\nport = 12000\n", "line 2: [sms] port: daemon sms has no ports"),
        ("[other]\nenabled = true\n", "line 1: [other]: unknown section 'other'"),
        ("[suite]\nrole = backup\n", "line 2: [suite] role: unknown role 'backup'"),
        ("[ctrl]\nport = 1\n[ctrl]\nenabled = true\n", "line 3: not a valid INI file"),
        ("enabled = true\n[ctrl]\n", "line 1: not a valid INI file: key 'enabled' comes"),
    ],
)
def test_apply_config_bad_content_names_file_and_line(
    tmp_path: t.Any, text: str, expected: str
) -> None:
    ini = tmp_path / "t.ini"
    ini.write_text(text)
    with pytest.raises(ProfileError) as info:
        apply_config(loaded(), str(ini))
    assert str(info.value).startswith(f"{ini}: "), str(info.value)
    assert expected in str(info.value)


def test_apply_config_unreadable_file(tmp_path: t.Any) -> None:
    ini = tmp_path / "t.ini"
    ini.write_bytes(b"[ctrl]\nenabled = \xff\xfe\n")
    with pytest.raises(ProfileError, match=r"cannot read the suite configuration file"):
        apply_config(loaded(), str(ini))
    with pytest.raises(ProfileError, match=r"cannot read"):
        apply_config(loaded(), str(tmp_path))  # a directory


def test_apply_config_reads_daemon_sections_and_ignores_other_suite_keys(
    tmp_path: t.Any,
) -> None:
    # [suite] keys other than role belong to the suite; daemon sections give enabled and ports
    ini = tmp_path / "t.ini"
    ini.write_text("[suite]\nport = x\n[sms]\ndata_servers = 3\n[qm]\nenabled = off\n")
    profile = apply_config(loaded(), str(ini))
    assert profile.daemon("qm").enabled is False
    assert profile.daemon("sms") == loaded().daemon("sms")


def test_apply_config_revalidates(tmp_path: t.Any) -> None:
    # what the INI may change is checked again: port range, known daemons, one port one daemon
    profile = loaded()
    ini = tmp_path / "t.ini"

    def applied(text: str) -> Profile:
        ini.write_text(text)
        return apply_config(profile, str(ini))

    changed = applied("[ctrl]\nenabled = true\nport = 1\n")
    assert changed.daemon("ctrl").enabled and changed.daemon("ctrl").port_numbers == [1]
    assert profile.daemon("ctrl").enabled is False  # the original is untouched
    with pytest.raises(ProfileError, match=r"line 2: \[ctrl\] port: port 0 is outside 1-65535"):
        applied("[ctrl]\nport = 0\n")
    with pytest.raises(ProfileError, match=r"unknown section 'nope'; the tsuite profile knows"):
        applied("[nope]\nenabled = true\n")
    with pytest.raises(ProfileError, match=r"port 11443 is used by both stpd and ctrl"):
        applied("[ctrl]\nport = 11443\n")


def test_load_profile_file_errors(tmp_path: t.Any) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("suite: [unclosed\n")
    with pytest.raises(ProfileError, match=r"bad.yml: not valid YAML"):
        load_profile_file(str(bad))
    with pytest.raises(ProfileError, match=r"absent.yml: cannot read profile"):
        load_profile_file(str(tmp_path / "absent.yml"))
    wrong = tmp_path / "wrong.yml"
    wrong.write_text("suite: {name: x, roles: [a]}\ndaemons: [{name: d, roles: [a]}]\n")
    with pytest.raises(ProfileError) as info:
        load_profile_file(str(wrong))
    assert str(info.value) == f"{wrong}: daemon 'd': match: missing required field"


@pytest.mark.parametrize(
    ("value", "expected"), [("root", "root"), (0, 0), ("998", 998), ("bacula", "bacula")]
)
def test_match_user_is_a_uid_or_a_user_name(value, expected):
    data = {
        "suite": {"name": "t", "roles": ["s"]},
        "daemons": [{"name": "d", "roles": ["s"], "match": {"cmdline": "^d", "user": value}}],
    }
    daemon = load_profile(data).daemon("d")
    assert daemon.user == expected
    assert daemon.to_dict()["match"]["user"] == expected


@pytest.mark.parametrize("value", [-1, True, "no spaces allowed", "", "bacula\n"])
def test_bad_match_user_is_refused(value):
    data = {
        "suite": {"name": "t", "roles": ["s"]},
        "daemons": [{"name": "d", "roles": ["s"], "match": {"cmdline": "^d", "user": value}}],
    }
    with pytest.raises(ProfileError, match=r"match\.user"):
        load_profile(data)
