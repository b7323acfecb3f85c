# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure pieces of a discovered profile: titles, names, regexes, the pool guess, cgroups,
pidfile patterns, the YAML text, merging the proposals of several hosts."""

from __future__ import annotations

import re

import pytest
import yaml

from ansible_collections.daemonops.suite.plugins.module_utils._suite.errors import SuiteError
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import ProcInfo
from ansible_collections.daemonops.suite.plugins.module_utils._suite.profile_schema import (
    load_profile,
)
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proposal import (
    common_prefix,
    count_for,
    daemon_names,
    exe_regex,
    instance_guess,
    merge_proposals,
    parse_cgroup_unit,
    pidfile_pattern,
    program_title,
    regex_escape,
    render_yaml,
    slug,
    suite_name_guess,
    yaml_scalar,
)

# ----------------------------------------------------------------------------- regexes


@pytest.mark.parametrize(
    "text",
    ["refsuite-qm", "a.b+c", "nginx: master process", "x(1)[2]{3}|$^?*\\", "/opt/a b/c"],
)
def test_escaped_text_matches_itself_only(text):
    pattern = re.compile("^" + regex_escape(text) + "$")
    assert pattern.match(text)
    assert not pattern.match(text + "x")
    assert not pattern.match(text.replace(text[-1], "#") if text[-1] != "#" else "x")


def test_escape_keeps_dashes_and_spaces_readable():
    assert regex_escape("refsuite-qm") == "refsuite-qm"
    assert regex_escape("postgres: checkpointer") == "postgres: checkpointer"
    assert regex_escape("python3.11") == "python3\\.11"


def test_cmdline_rule_is_anchored_and_ends_at_a_word():
    rule = re.compile(program_title(["refsuite-qm", "--config", "/x"]).cmdline_regex())
    assert rule.pattern == "^refsuite-qm( |$)"
    assert rule.search("refsuite-qm --config /x") and rule.search("refsuite-qm")
    assert not rule.search("refsuite-qmx") and not rule.search("grep refsuite-qm")


def test_setproctitle_titles_keep_their_words():
    title = program_title(["postgres: checkpointer "])  # one rewritten string
    assert title.words == ("postgres:", "checkpointer")
    assert title.cmdline_regex() == "^postgres: checkpointer( |$)"
    assert title.base == "postgres checkpointer"
    nginx = program_title(["nginx:", "master", "process", "/usr/sbin/nginx", "-g", "daemon on;"])
    assert nginx.cmdline_regex() == "^nginx: master process( |$)"
    assert program_title(["sshd:", "root@pts/0"]).words == ("sshd:",)
    debian = program_title(["postgres: 15/main: checkpointer "])  # a Debian cluster's title
    assert debian.cmdline_regex() == "^postgres: 15/main: checkpointer( |$)"
    assert debian.base == "postgres checkpointer"
    backend = program_title(["postgres: 15/main: app app 127.0.0.1(5432) idle"])
    assert backend.words == ("postgres:", "15/main:", "app", "app")


def test_interpreter_runs_a_program_named_by_its_script():
    title = program_title(["/usr/bin/java", "-Xmx1g", "-cp", "/opt/a.jar", "de.sep.Server"])
    assert title.script == "de.sep.Server" and title.base == "de.sep.Server"
    rule = re.compile(title.cmdline_regex())
    assert rule.search("/usr/bin/java -Xmx1g -cp /opt/a.jar de.sep.Server -p 1")
    assert not rule.search("/usr/bin/java -cp /opt/a.jar de.sep.Other")
    assert program_title(["python3", "-m", "http.server"]).script == "http.server"
    assert program_title(["python3", "/opt/x/agent.py"]).base == "agent"


def test_exe_rule_pins_the_binary_and_leaves_an_interpreter_version_open():
    rule, loosened = exe_regex("/usr/lib/postgresql/15/bin/postgres")
    assert not loosened and rule == "^/usr/lib/postgresql/15/bin/postgres$"
    rule, loosened = exe_regex("/usr/bin/python3.11")
    assert loosened
    assert re.search(rule, "/usr/bin/python3.11") and re.search(rule, "/usr/bin/python3.12")
    assert not re.search(rule, "/usr/bin/python2.7") and not re.search(rule, "/tmp/python3.11")
    # the loosened rule must pass the profile validator's regex-safety check (no nested
    # unbounded repeats), or every proposal for an interpreter-run suite would be refused
    load_profile(
        {
            "suite": {"name": "x", "roles": ["server"]},
            "daemons": [
                {"name": "d", "roles": ["server"], "match": {"cmdline": "^d$", "exe": rule}}
            ],
        }
    )


# ----------------------------------------------------------------------------- naming


def test_common_prefix_is_cut_at_a_separator_and_names_the_suite():
    names, prefix = daemon_names(["refsuite-qm", "refsuite-db", "refsuite-data_server"])
    assert names == ["qm", "db", "data_server"] and prefix == "refsuite-"
    assert suite_name_guess(prefix, names[0]) == "refsuite"
    names, prefix = daemon_names(["sm_qm_main", "sm_sms_main", "sm_passd"])
    assert names == ["qm_main", "sms_main", "passd"] and suite_name_guess(prefix, "x") == "sm"


def test_no_prefix_when_a_name_would_be_empty_or_only_one_program():
    assert common_prefix(["postgres", "postgres_checkpointer"]) == ""
    assert common_prefix(["bacula-dir"]) == ""
    assert common_prefix(["abc", "abd"]) == ""  # no separator
    names, prefix = daemon_names(["postgres", "postgres checkpointer"])
    assert names == ["postgres", "postgres_checkpointer"] and prefix == ""
    assert suite_name_guess("", "Bacula-Dir") == "bacula_dir"


def test_names_are_valid_and_unique():
    names, _prefix = daemon_names(["x y", "x:y", ".hidden", "x y"])
    assert names == ["x_y", "x_y_2", "hidden", "x_y_3"]
    assert slug("-") == "d"
    for name in names:
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name)


# ----------------------------------------------------------------------------- counts


def test_worker_pool_guess():
    assert count_for([10]) == ({"min": 1, "max": 1}, "1 running now")
    count, why = count_for([10, 10, 10])
    assert count == {"min": 1} and "worker pool" in why
    assert count_for([10, 11])[0] == {"min": 1, "max": 2}  # one under each of two parents


# ----------------------------------------------------------------------------- host facts


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("0::/system.slice/postgresql@15-main.service\n", "postgresql@15-main.service"),
        ("12:pids:/x\n1:name=systemd:/system.slice/bacula-fd.service\n0::/\n", "bacula-fd.service"),
        ("0::/user.slice/user-0.slice/session-3.scope\n", None),
        ("0::/user.slice/user-0.slice/user@0.service/init.scope\n", None),
        ("0::/\n", None),
        ("", None),
    ],
)
def test_cgroup_unit(text, unit):
    assert parse_cgroup_unit(text) == unit


def test_pidfile_pattern():
    assert pidfile_pattern("bacula-dir.9101.pid", "bacula-dir", 9101) == "{name}.{port}.pid"
    assert pidfile_pattern("sm_stpd_main.pid", "stpd_main", None) == "sm_{name}.pid"
    assert pidfile_pattern("postmaster.pid", "postgres", 5432) is None
    pattern = pidfile_pattern("x-19101.pid", "x", 9101)
    assert pattern == "{name}-19101.pid"  # 9101 inside 19101 is not the port


def test_instance_guess_is_a_path_every_process_has():
    def info(pid, *argv):
        return ProcInfo(pid, 1, argv[0], argv, None, None, "sleeping", "root")

    procs = [info(1, "a", "--config", "/etc/a.ini"), info(2, "b", "-c", "/etc/a.ini", "/tmp")]
    assert instance_guess(procs) == "/etc/a.ini"
    assert instance_guess([*procs, info(3, "c")]) is None


# ----------------------------------------------------------------------------- YAML


@pytest.mark.parametrize(
    "value",
    [
        *("plain", "^a( |$)", "it's", "yes", "null", "123", "1.5", "a: b", "#x", "\ttab", "", "-x"),
        *("plain\n", "/usr/sbin/x\n"),  # a trailing newline is no plain scalar
    ],
)
def test_yaml_scalar_reads_back(value):
    assert yaml.safe_load(f"k: {yaml_scalar(value)}") == {"k": value}


def test_render_yaml_reads_back_with_comments():
    proposal = {
        "suite": {
            "name": "s",
            "roles": ["server"],
            "pid_store": {"type": "pidfile", "path": "/run/s", "pattern": "{name}.pid"},
        },
        "daemons": [
            {
                "name": "m",
                "roles": ["server"],
                "match": {"cmdline": "^m( |$)", "exe": "^/usr/bin/m$"},
                "ports": [{"port": 80, "probe": {"type": "tcp"}}],
                "count": {"min": 1, "max": 1},
            }
        ],
    }
    comments = {"suite.name": "guess: it's # a name", "daemons.m.ports.80": "listening"}
    text = render_yaml(proposal, comments, header=["first", "second"])
    assert yaml.safe_load(text) == proposal
    assert "  name: s  # guess: it's # a name\n" in text
    assert "- {port: 80, probe: {type: tcp}}  # listening" in text
    assert text.startswith("# first\n# second\nsuite:\n")


# ----------------------------------------------------------------------------- merge


def proposal(role, *daemons, unit=None):
    suite = {"name": "acme", "roles": [role]}
    if unit:
        suite["systemd_unit"] = unit
    return {
        "suite": suite,
        "daemons": [
            {
                "name": name,
                "roles": [role],
                "match": {"cmdline": f"^acme-{name}( |$)"},
                **({"ancestor": "master"} if name != "master" else {}),
                **({"ports": [{"port": port, "probe": {"type": "tcp"}}]} if port else {}),
                "count": count,
            }
            for name, port, count in daemons
        ],
    }


ONE = {"min": 1, "max": 1}


def test_merge_three_hosts_into_three_roles():
    server = proposal(
        "server", ("master", None, ONE), ("db", 5432, ONE), ("web", 80, ONE), unit="a.service"
    )
    rds = proposal("rds", ("master", None, ONE), ("web", 80, {"min": 1, "max": 2}))
    client = proposal("client", ("master", None, ONE), ("agent", None, {"min": 1}))
    merged = merge_proposals([server, rds, client], name="acme_fleet")
    profile = load_profile(merged)
    assert profile.name == "acme_fleet" and profile.roles == ("server", "rds", "client")
    assert profile.systemd_unit == "a.service"
    assert profile.daemon("master").roles == ("server", "rds", "client")
    assert profile.daemon("db").roles == ("server",)
    assert profile.daemon("web").roles == ("server", "rds")
    assert (profile.daemon("web").count_min, profile.daemon("web").count_max) == (1, 2)
    assert profile.daemon("agent").roles == ("client",)
    assert profile.daemon_names == ["master", "db", "web", "agent"]
    assert server["daemons"][0]["roles"] == ["server"]  # inputs are left alone


def test_merge_refuses_what_does_not_agree():
    server = proposal("server", ("master", None, ONE), ("web", 80, ONE))
    other_port = proposal("rds", ("master", None, ONE), ("web", 81, ONE))
    with pytest.raises(SuiteError, match=r"daemon 'web': ports differ .*\[80\].*\[81\]"):
        merge_proposals([server, other_port])
    other_match = proposal("rds", ("master", None, ONE))
    other_match["daemons"][0]["match"]["cmdline"] = "^other( |$)"
    with pytest.raises(SuiteError, match=r"daemon 'master': match differs"):
        merge_proposals([server, other_match])
    with pytest.raises(SuiteError, match=r"item 1 is not a proposal"):
        merge_proposals([server, {"x": 1}])
    with pytest.raises(SuiteError, match=r"at least one proposal"):
        merge_proposals([])
    unbounded = proposal("rds", ("master", None, ONE), ("web", 80, {"min": 0}))
    merged = merge_proposals([server, unbounded])
    assert merged["daemons"][1]["count"] == {"min": 0}


def test_merge_finds_one_program_named_differently_on_two_hosts():
    server = proposal("server", ("master", None, ONE), ("web", 80, ONE))
    client = proposal("client", ("acme-master", None, ONE), ("agent", None, ONE))
    client["daemons"][0]["match"] = dict(server["daemons"][0]["match"])
    del client["daemons"][0]["ancestor"]
    client["daemons"][1]["ancestor"] = "acme-master"
    merged = load_profile(merge_proposals([server, client]))
    assert merged.daemon_names == ["master", "web", "agent"]
    assert merged.daemon("master").roles == ("server", "client")
    assert merged.daemon("agent").ancestor == "master"
