# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the fleet audit aggregation and its five renderers (synthetic results)."""

from __future__ import annotations

import datetime
import html.parser
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from ansible_collections.daemonops.suite.plugins.plugin_utils import audit_report as ar

GENERATED_AT = 1732890000.5
HOSTILE_HOST = '<script>alert("x")</script>\'&|*_\\\nrow'
HOSTILE_DAEMON = 'd"<b>&\\|`x`\n'


def port(number: int, clients: int = 0, listening: bool = True, owned: bool = True) -> dict:
    return {
        "port": number,
        "listening": listening,
        "owned": owned,
        "holder": None if owned else "nginx[812]",
        "addresses": ["127.0.0.1"],
        "clients": clients,
        "peers": [f"127.0.0.1:{50000 + i}" for i in range(clients)],
        "probe": {"ok": listening, "detail": "HTTP 200" if listening else "refused"},
    }


def daemon(state: str, *ports: dict, problems: list[str] | None = None) -> dict:
    return {
        "state": state,
        "essential": True,
        "problems": problems if problems is not None else [],
        "pids": [] if state in ("offline", "unused") else [4242],
        "count": 0 if state in ("offline", "unused") else 1,
        "expected_count": {"min": 1, "max": None},
        "ancestry": None,
        "start_time": 1732880000.0,
        "uptime": 3600.2,
        "ports": list(ports),
        "pid_record": {"status": "consistent", "pid": 4242, "reason": None},
    }


def health(daemons: dict[str, dict], host: str = "h") -> dict:
    bad = [
        p for d in daemons.values() if d["state"] in ("offline", "degraded") for p in d["problems"]
    ]
    return {
        "changed": False,
        "failed": False,
        "status": "FAILURE" if bad else "SUCCESS",
        "msg": "; ".join(bad) if bad else "All daemons online",
        "status_lines": [f"{n} : {d['state']}" for n, d in daemons.items()],
        "roles": ["server"],
        "profile": "refsuite",
        "host": host,
        "summary": {},
        "daemons": daemons,
    }


def fleet() -> dict[str, Any]:
    web1 = health(
        {
            "qm": daemon("online"),
            "stpd": daemon("online", port(11000, clients=2), port(11443)),
            "ui": daemon("online", port(11401, clients=1)),
            "ctrl": daemon("unused"),
        }
    )
    web1["elapsed"] = 0.25
    return {
        "web2": health(
            {
                "qm": daemon("online"),
                "stpd": daemon("offline", problems=["stpd offline"]),
                "ui": daemon(
                    "degraded",
                    port(11401, listening=False, owned=False),
                    problems=["ui port 11401 held by nginx[812]"],
                ),
                "ctrl": daemon("unused"),
            }
        ),
        "web1": web1,
        "client1": health({"qm": daemon("online"), "sshd": daemon("online")}),
        "gone": {"unreachable": True, "msg": "Failed to connect to the host via ssh"},
        "broken": {"failed": True, "msg": "profile refsuite: unknown key 'foo'"},
    }


@pytest.fixture
def report() -> dict:
    return ar.build_report(fleet(), GENERATED_AT)


@pytest.fixture
def hostile() -> dict:
    return ar.build_report(
        {
            HOSTILE_HOST: health(
                {
                    HOSTILE_DAEMON: daemon(
                        "offline", problems=['<img src=x onerror="alert(1)"> & \\ "q"']
                    ),
                    "qm": daemon("online", port(1, clients=1)),
                }
            ),
            'x"}\\ 1\nfake_metric 1': {"unreachable": True, "msg": "</error><x>\x00\x1b"},
        },
        GENERATED_AT,
    )


# ----------------------------------------------------------------------------- build_report


def test_build_report_classifies_hosts_and_counts(report: dict) -> None:
    # problems first: unreachable and failed, unhealthy, then healthy; by name within each
    assert list(report["hosts"]) == ["broken", "gone", "web2", "client1", "web1"]
    status = {h: e["status"] for h, e in report["hosts"].items()}
    assert status == {
        "broken": "failed",
        "client1": "healthy",
        "gone": "unreachable",
        "web1": "healthy",
        "web2": "unhealthy",
    }
    s = report["summary"]
    assert (s["hosts"], s["healthy"], s["unhealthy"], s["unreachable"], s["failed"]) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert s["daemons"] == {
        "total": 10,
        "online": 6,
        "degraded": 1,
        "offline": 1,
        "unused": 2,
        "unknown": 0,
    }
    assert s["clients"] == 3
    assert report["unhealthy_hosts"] == ["broken", "gone", "web2"]
    assert report["reasons"] == {
        "broken": "failed: profile refsuite: unknown key 'foo'",
        "gone": "unreachable: Failed to connect to the host via ssh",
        "web2": "unhealthy: stpd offline; ui port 11401 held by nginx[812]",
    }
    assert report["schema_version"] == ar.SCHEMA_VERSION
    assert report["unreachable_hosts"] == ["gone"]
    assert report["healthy"] is False
    # column order: each host's order kept (client1 has qm then sshd)
    assert report["daemon_names"] == ["qm", "stpd", "ui", "ctrl", "sshd"]
    assert report["generated_at"] == "2024-11-29T14:20:00.500000Z"
    assert report["generated_at_epoch"] == GENERATED_AT


def test_build_report_problems_name_host_and_daemon(report: dict) -> None:
    assert report["problems"] == [
        {
            "host": "broken",
            "daemon": "",
            "state": "failed",
            "problem": "profile refsuite: unknown key 'foo'",
        },
        {
            "host": "gone",
            "daemon": "",
            "state": "unreachable",
            "problem": "Failed to connect to the host via ssh",
        },
        {"host": "web2", "daemon": "stpd", "state": "offline", "problem": "stpd offline"},
        {
            "host": "web2",
            "daemon": "ui",
            "state": "degraded",
            "problem": "ui port 11401 held by nginx[812]",
        },
    ]
    assert report["hosts"]["web1"]["daemons"]["stpd"]["clients"] == 2
    assert report["hosts"]["web2"]["summary"]["offline"] == 1


def test_build_report_keeps_every_field_of_the_result(report: dict) -> None:
    stpd = report["hosts"]["web1"]["daemons"]["stpd"]
    assert stpd["pid_record"]["status"] == "consistent"
    assert stpd["ports"][0]["peers"] == ["127.0.0.1:50000", "127.0.0.1:50001"]
    assert report["hosts"]["web1"]["profile"] == "refsuite"


def test_daemon_columns_keep_profile_order_whichever_host_comes_first() -> None:
    server = ["qm", "db", "ui", "passd", "sms", "data_server", "stpd", "ctrl", "sshd", "sepuler"]
    client = ["qm", "ctrl", "sshd"]
    for names in ({"a": client, "b": server}, {"a": server, "b": client}):
        results = {h: health({n: daemon("online") for n in ds}) for h, ds in names.items()}
        assert ar.build_report(results, GENERATED_AT)["daemon_names"] == server
    results = {"a": health({"y": daemon("online")}), "b": health({"x": daemon("online")})}
    assert ar.build_report(results, GENERATED_AT)["daemon_names"] == ["x", "y"]


def test_empty_fleet_is_healthy() -> None:
    r = ar.build_report({}, GENERATED_AT)
    assert r["healthy"] is True
    assert r["unhealthy_hosts"] == []
    assert r["summary"]["hosts"] == 0
    for fmt in ar.FORMATS:
        assert ar.render(r, fmt)
    assert "No hosts in this audit." in ar.to_markdown(r)
    suite = ET.fromstring(ar.to_junit(r)).find("testsuite")
    assert suite is not None and suite.get("tests") == "0"


def test_missing_problems_and_unknown_state_are_reported() -> None:
    r = ar.build_report(
        {
            "a": {"status": "FAILURE", "msg": "", "daemons": {"qm": {"state": "offline"}}},
            "b": {"daemons": {"qm": {"state": "exploded"}}},
            "c": {"status": "FAILURE", "msg": "something else failed", "daemons": {}},
            "d": {"changed": False, "skipped": True},
            "e": "nonsense",
        },
        GENERATED_AT,
    )
    assert r["hosts"]["a"]["daemons"]["qm"]["problems"] == ["qm offline"]
    assert r["hosts"]["b"]["daemons"]["qm"]["state"] == "unknown"
    assert r["hosts"]["b"]["daemons"]["qm"]["reported_state"] == "exploded"
    assert r["hosts"]["b"]["status"] == "unhealthy"
    assert r["hosts"]["c"]["status"] == "unhealthy"
    assert r["hosts"]["c"]["problems"][0]["problem"] == "something else failed"
    assert r["hosts"]["d"]["status"] == "failed"
    assert "skipped" in r["hosts"]["d"]["msg"]
    assert r["hosts"]["e"]["status"] == "failed"
    assert r["unhealthy_hosts"] == ["d", "e", "a", "b", "c"]


def test_generated_at_accepts_datetime_and_rejects_garbage() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert ar.build_report({}, when)["generated_at"] == "2024-01-02T03:04:05Z"
    with pytest.raises(ar.AuditReportError, match="generated_at"):
        ar.build_report({}, "yesterday")
    with pytest.raises(ar.AuditReportError, match="results must be a mapping"):
        ar.build_report([], GENERATED_AT)  # type: ignore[arg-type]


def test_render_unknown_format_names_the_choices(report: dict) -> None:
    with pytest.raises(ar.AuditReportError, match=r"formats: unknown format 'pdf'.*json"):
        ar.render(report, "pdf")


# ----------------------------------------------------------------------------- JSON


def test_json_round_trips(report: dict) -> None:
    data = json.loads(ar.to_json(report))
    assert data == json.loads(json.dumps(report))
    assert data["summary"]["unhealthy"] == 1
    assert data["hosts"]["web2"]["daemons"]["stpd"]["state"] == "offline"


def test_json_hostile_names_round_trip(hostile: dict) -> None:
    data = json.loads(ar.to_json(hostile))
    assert HOSTILE_HOST in data["hosts"]
    assert HOSTILE_DAEMON in data["hosts"][HOSTILE_HOST]["daemons"]


# ----------------------------------------------------------------------------- Markdown


def test_markdown_summary_table_and_problems(report: dict) -> None:
    md = ar.to_markdown(report)
    lines = md.splitlines()
    assert lines[0] == "# Daemon health audit"
    assert "5 hosts: 2 healthy, 1 unhealthy, 1 unreachable, 1 failed" in lines[2]
    header = next(line for line in lines if line.startswith("| Host |"))
    assert header == "| Host | Status | qm | stpd | ui | ctrl | sshd |"
    table = [line for line in lines if line.startswith("| ")]
    assert all(line.count(" |") == header.count(" |") for line in table), table
    web2 = next(line for line in table if line.startswith("| web2 "))
    assert web2 == "| web2 | **unhealthy** | online | **offline** | **degraded** | unused | · |"
    web1 = next(line for line in table if line.startswith("| web1 "))
    assert "online (2 clients)" in web1 and "online (1 client)" in web1
    assert "| gone | **unreachable** |" in md
    problems = lines[lines.index("## Problems") :]
    assert "- **web2 / stpd** (offline): stpd offline" in problems
    assert "- **gone** (unreachable): Failed to connect to the host via ssh" in problems


def test_markdown_escapes_hostile_names(hostile: dict) -> None:
    md = ar.to_markdown(hostile)
    assert not re.search(r"(?<!\\)[<>]", md), "unescaped < or > would be raw HTML"
    assert "\x00" not in md and "\x1b" not in md
    assert r"\<script\>" in md
    header = next(line for line in md.splitlines() if line.startswith("| Host |"))
    # the pipe inside the daemon name is escaped: still 4 cells (Host, Status, 2 daemons)
    assert len(re.split(r"(?<!\\)\|", header)) == 6
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 4  # header, rule, two hosts: the newline in a name did not split a row
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 6, row


def test_markdown_healthy_fleet_says_no_problems() -> None:
    r = ar.build_report({"a": health({"qm": daemon("online")})}, GENERATED_AT)
    assert "None: every host is healthy." in ar.to_markdown(r)


# ----------------------------------------------------------------------------- HTML


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.cells: list[tuple[str, str]] = []  # (class, text) of td in #audit

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    c.close()
    return c


def test_html_is_self_contained_with_table_filter_and_colours(report: dict) -> None:
    page = ar.to_html(report)
    parsed = parse_html(page)
    tags = [t for t, _attrs in parsed.tags]
    assert tags.count("script") == 1 and tags.count("style") == 1
    for tag, attrs in parsed.tags:
        # links only within the page (the problem list to the host rows)
        assert "src" not in attrs and (attrs.get("href") or "#").startswith("#"), (tag, attrs)
    assert "http://" not in page and "https://" not in page and "@import" not in page
    assert 'id="only-unhealthy"' in page and "Show only unhealthy rows" in page
    rows = [a for t, a in parsed.tags if t == "tr" and "data-host" in a]
    assert [(a["data-host"], a["data-healthy"]) for a in rows] == [
        ("broken", "0"),
        ("gone", "0"),
        ("web2", "0"),
        ("client1", "1"),
        ("web1", "1"),
    ]
    assert [a["id"] for a in rows] == [f"host-{a['data-host']}" for a in rows]
    classes = [a.get("class") for t, a in parsed.tags if t == "td"]
    for state in ("online", "degraded", "offline", "unused", "unreachable", "failed", "na"):
        assert state in classes, state
    css = page[page.index("<style>") : page.index("</style>")]
    for state, colour in (
        ("online", "#c8efc8"),
        ("degraded", "#ffd27a"),
        ("offline", "#f49a9a"),
        ("unused", "#ddd"),
        ("unreachable", "#333"),
    ):
        assert f".{state}{{background:{colour}" in css
    # details per cell: pids, ports with listening/owned and clients with peers
    titles = [a["title"] for t, a in parsed.tags if t == "td" and a.get("title")]
    stpd = next(t for t in titles if t.startswith("stpd: pids: 4242"))
    assert "port 11000: listening, owned, probe ok: HTTP 200; 2 clients" in stpd
    assert "port 11443: listening, owned, probe ok: HTTP 200; 0 clients" in stpd
    assert "uptime: 1 h 0 min" in stpd and "started: 2024-11-29 11:33:20 UTC" in stpd
    assert "127.0.0.1:50000, 127.0.0.1:50001" in stpd
    ui = next(t for t in titles if "port 11401: NOT listening, NOT owned" in t)
    assert "held by nginx[812]" in ui
    text = "".join(parsed.text)
    assert "web2 / stpd (offline): stpd offline" in text
    # the problem list comes before the table
    assert page.index('id="problems"') < page.index('id="audit"')


def test_html_escapes_hostile_names(hostile: dict) -> None:
    page = ar.to_html(hostile)
    parsed = parse_html(page)
    tags = [t for t, _attrs in parsed.tags]
    assert tags.count("script") == 1 and "img" not in tags and "b" not in tags
    rows = [a for t, a in parsed.tags if t == "tr" and "data-host" in a]
    assert {a["data-host"] for a in rows} == {HOSTILE_HOST, 'x"}\\ 1\nfake_metric 1'}
    headers = "".join(parsed.text)
    assert HOSTILE_DAEMON in headers
    assert '<img src=x onerror="alert(1)"> & \\ "q"' in headers


# ----------------------------------------------------------------------------- JUnit


def test_junit_one_suite_one_case_per_host_and_daemon(report: dict) -> None:
    root = ET.fromstring(ar.to_junit(report))
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    got = {(c.get("classname"), c.get("name")) for c in cases}
    assert got == {
        ("broken", "reachable"),
        ("client1", "reachable"),
        ("client1", "qm"),
        ("client1", "sshd"),
        ("gone", "reachable"),
        ("web1", "reachable"),
        ("web1", "qm"),
        ("web1", "stpd"),
        ("web1", "ui"),
        ("web1", "ctrl"),
        ("web2", "reachable"),
        ("web2", "qm"),
        ("web2", "stpd"),
        ("web2", "ui"),
        ("web2", "ctrl"),
    }
    assert suite.get("tests") == "15"
    assert suite.get("failures") == "2"
    assert suite.get("errors") == "2"
    assert suite.get("skipped") == "2"
    by_key = {(c.get("classname"), c.get("name")): c for c in cases}
    fail = by_key[("web2", "stpd")].find("failure")
    assert fail is not None and fail.get("type") == "offline"
    assert fail.get("message") == "stpd offline"
    degraded = by_key[("web2", "ui")].find("failure")
    assert degraded is not None and degraded.get("type") == "degraded"
    assert "held by nginx[812]" in (degraded.text or "")
    err = by_key[("gone", "reachable")].find("error")
    assert err is not None and err.get("message") == "Failed to connect to the host via ssh"
    assert err.get("type") == "unreachable"
    broken = by_key[("broken", "reachable")].find("error")
    assert broken is not None and broken.get("type") == "failed"
    assert list(by_key[("web1", "reachable")]) == []
    assert by_key[("web1", "reachable")].get("time") == "0.250"  # health_info's elapsed
    assert by_key[("web1", "ctrl")].find("skipped") is not None
    assert list(by_key[("web1", "qm")]) == []


def test_junit_escapes_hostile_names(hostile: dict) -> None:
    text = ar.to_junit(hostile)
    root = ET.fromstring(text)  # well-formed despite <, &, quotes, NUL and ESC
    cases = root.find("testsuite").findall("testcase")  # type: ignore[union-attr]
    classnames = {c.get("classname") for c in cases}
    assert HOSTILE_HOST in classnames  # attribute newlines survive as &#10;
    names = {c.get("name") for c in cases}
    assert HOSTILE_DAEMON in names
    failure = next(c for c in cases if c.get("name") == HOSTILE_DAEMON).find("failure")
    assert failure is not None
    assert failure.get("message") == '<img src=x onerror="alert(1)"> & \\ "q"'
    error = next(c for c in cases if c.find("error") is not None).find("error")
    assert error is not None
    assert error.get("message") == "</error><x>\ufffd\ufffd"


# ----------------------------------------------------------------------------- Prometheus

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABEL = rf"[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE}"
SAMPLE = re.compile(
    rf"^(?P<name>{METRIC_NAME})(?:\{{(?P<labels>{LABEL}(?:,{LABEL})*)\}})? "
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)
HELP = re.compile(rf"^# HELP (?P<name>{METRIC_NAME}) (?:[^\\\n]|\\[\\n])*$")
TYPE = re.compile(rf"^# TYPE (?P<name>{METRIC_NAME}) (?:counter|gauge|histogram|summary|untyped)$")
LABEL_PAIR = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)=({LABEL_VALUE})")


def unescape_label(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], str]]]:
    """Strict line-by-line check of the text exposition format; returns samples by family."""
    assert text.endswith("\n")
    families: dict[str, list[tuple[dict[str, str], str]]] = {}
    helped: set[str] = set()
    typed: set[str] = set()
    current = None
    seen_series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for line in text.splitlines():
        if line.startswith("# HELP"):
            m = HELP.match(line)
            assert m, line
            name = m["name"]
            assert name not in families, f"family {name} is not contiguous"
            helped.add(name)
            current = name
            families[name] = []
        elif line.startswith("# TYPE"):
            m = TYPE.match(line)
            assert m, line
            assert m["name"] == current and current in helped and current not in typed, line
            typed.add(current)
        else:
            m = SAMPLE.match(line)
            assert m, f"bad sample line: {line!r}"
            assert m["name"] == current and current in typed, line
            labels = {k: unescape_label(v) for k, v in LABEL_PAIR.findall(m["labels"] or "")}
            key = (m["name"], tuple(sorted(labels.items())))
            assert key not in seen_series, f"duplicate series {key}"
            seen_series.add(key)
            families[current].append((labels, m["value"]))
    return families


def test_prometheus_format_and_values(report: dict) -> None:
    fams = parse_prometheus(ar.to_prometheus(report))
    assert set(fams) >= {
        "daemonops_daemon_up",
        "daemonops_daemon_clients",
        "daemonops_host_healthy",
        "daemonops_audit_timestamp_seconds",
    }
    up = {(lb["host"], lb["daemon"]): v for lb, v in fams["daemonops_daemon_up"]}
    assert up[("web2", "stpd")] == "0" and up[("web1", "stpd")] == "1"
    assert len(up) == 10
    state = {
        (lb["host"], lb["daemon"]): lb["state"]
        for lb, v in fams["daemonops_daemon_state"]
        if v == "1"
    }
    assert state[("web2", "stpd")] == "offline" and state[("web2", "ui")] == "degraded"
    assert state[("web1", "stpd")] == "online" and state[("web1", "ctrl")] == "unused"
    assert len(state) == 10 and len(fams["daemonops_daemon_state"]) == 10 * 5
    clients = {(lb["host"], lb["daemon"]): v for lb, v in fams["daemonops_daemon_clients"]}
    assert clients[("web1", "stpd")] == "2" and clients[("web1", "ui")] == "1"
    healthy = {lb["host"]: v for lb, v in fams["daemonops_host_healthy"]}
    assert healthy == {"broken": "0", "client1": "1", "gone": "0", "web1": "1", "web2": "0"}
    reachable = {lb["host"]: v for lb, v in fams["daemonops_host_reachable"]}
    # a failed check is not an unreachable host
    assert reachable["gone"] == "0" and reachable["broken"] == "1" and reachable["web2"] == "1"
    failed = {lb["host"]: v for lb, v in fams["daemonops_host_check_failed"]}
    assert failed["broken"] == "1" and failed["gone"] == "0"
    (ts,) = fams["daemonops_audit_timestamp_seconds"]
    assert ts == ({}, "1732890000.5")
    by_status = {lb["status"]: v for lb, v in fams["daemonops_audit_hosts"]}
    assert by_status == {"healthy": "2", "unhealthy": "1", "unreachable": "1", "failed": "1"}


def test_prometheus_escapes_hostile_labels(hostile: dict) -> None:
    text = ar.to_prometheus(hostile)
    fams = parse_prometheus(text)  # a label breaking out would fail the line check
    hosts = {lb["host"] for lb, _value in fams["daemonops_host_healthy"]}
    assert hosts == {HOSTILE_HOST, 'x"}\\ 1\nfake_metric 1'}
    daemons = {lb["daemon"] for lb, _value in fams["daemonops_daemon_up"]}
    assert daemons == {HOSTILE_DAEMON, "qm"}
    assert not any(line.startswith("fake_metric") for line in text.splitlines())


def test_prometheus_empty_fleet_still_has_timestamp() -> None:
    fams = parse_prometheus(ar.to_prometheus(ar.build_report({}, 5)))
    assert fams["daemonops_daemon_up"] == []
    assert fams["daemonops_audit_timestamp_seconds"] == [({}, "5.0")]


# ----------------------------------------------------------------------------- scale


def test_thousand_hosts_aggregate_in_linear_time() -> None:
    names = ["qm", "db", "ui", "passd", "sms", "data_server", "stpd", "ctrl", "sshd", "sepuler"]
    results = {}
    for i in range(1000):
        daemons = {n: daemon("online", port(11000 + j, clients=j % 3)) for j, n in enumerate(names)}
        if i % 10 == 0:
            daemons["stpd"] = daemon("offline", problems=["stpd offline"])
        results[f"host{i:04d}"] = health(daemons)
    start = time.perf_counter()
    r = ar.build_report(results, GENERATED_AT)
    elapsed = time.perf_counter() - start
    assert len(r["unhealthy_hosts"]) == 100
    # the contract is <= 1 ms per host; measured ~0.05 ms, so this only catches blow-ups
    assert elapsed < 1.0, f"build_report took {elapsed:.3f} s for 1000 hosts"
    start = time.perf_counter()
    for fmt in ar.FORMATS:
        assert ar.render(r, fmt)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"rendering five formats took {elapsed:.3f} s for 1000 hosts"


# ----------------------------------------------------------------------------- module stub


def test_module_spec_matches_action_spec_and_module_refuses_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite import module_kit
    from ansible_collections.daemonops.suite.plugins.modules import audit_report as module

    seen: dict[str, Any] = {}

    class FakeModule:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

        def fail_json(self, **kwargs: Any) -> None:
            seen["failed_with"] = kwargs["msg"]
            raise SystemExit(1)

    # run_module builds the AnsibleModule of every module
    monkeypatch.setattr(module_kit, "AnsibleModule", FakeModule)
    with pytest.raises(SystemExit):
        module.main()
    assert seen["argument_spec"] == ar.ARGUMENT_SPEC
    for rule, value in ar.ARGUMENT_RULES.items():
        assert seen[rule] == value, rule
    assert "runs on the controller only" in seen["failed_with"]
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(documented) == set(ar.ARGUMENT_SPEC)
    for name, spec in ar.ARGUMENT_SPEC.items():
        for key in ("type", "elements", "choices", "default", "required"):
            assert documented[name].get(key) == spec.get(key), (name, key)


# ------------------------------------------------------------- results read from hostvars


def test_collect_registered_reads_the_variable_and_marks_hosts_without_it() -> None:
    unreachable = {"unreachable": True, "changed": False, "msg": "ssh: connect refused"}
    variables = {
        "web1": {"health": health({"qm": daemon("online")}), "other": 1},
        "gone": {"health": unreachable},
        "late": {"other": 1},
    }
    asked: list[str] = []

    def host_vars(host: str) -> Any:
        asked.append(host)
        return variables[host]

    results = ar.collect_registered(["web1", "gone", "late", "web1"], "health", host_vars)
    assert list(results) == ["web1", "gone", "late"]
    assert asked == ["web1", "gone", "late"]  # a host named twice is read once
    assert results["web1"] is variables["web1"]["health"]
    assert results["gone"] is unreachable
    assert results["late"] == {"failed": True, "msg": ar.MISSING_RESULT_MSG}
    report = ar.build_report(results, GENERATED_AT)
    assert report["unreachable_hosts"] == ["gone"]
    assert report["hosts"]["late"]["status"] == "failed"
    assert report["hosts"]["web1"]["status"] == "healthy"


@pytest.mark.parametrize("host", ["", None, 5])
def test_collect_registered_refuses_bad_host_names(host: Any) -> None:
    with pytest.raises(ar.AuditReportError, match=r"^hosts: .* is not an inventory host name"):
        ar.collect_registered(["a", host], "health", lambda h: {})


def test_collect_registered_refuses_hosts_outside_the_inventory() -> None:
    with pytest.raises(ar.AuditReportError, match=r"^hosts: 'nohost' is not a host of the inv"):
        ar.collect_registered(["nohost"], "health", lambda h: None)


@pytest.fixture
def fleet_vars(tmp_path: Any) -> Any:
    """Real ansible-core inventory, variable manager and hostvars: four hosts, three of them
    with a registered ``health`` (one unreachable), and ``late`` without it."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    inventory_file = tmp_path / "inventory.ini"
    inventory_file.write_text("[server]\nweb1\nweb2 other=1\ngone\nlate\n")
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(inventory_file)])
    manager = VariableManager(loader=loader, inventory=inventory)
    registered = {
        "web1": health({"qm": daemon("online"), "stpd": daemon("online", port(11000, 2))}),
        "web2": health({"qm": daemon("online"), "stpd": daemon("offline")}),
        "gone": {"unreachable": True, "changed": False, "msg": "ssh: connect refused"},
    }
    for host, value in registered.items():
        manager.set_nonpersistent_facts(host, {"health": value})
    return HostVars(inventory, manager, loader), registered


def test_registered_lookup_reads_the_fact_cache_and_falls_back_to_raw_get(
    fleet_vars: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ansible_collections.daemonops.suite.plugins.action.audit_report import registered_lookup

    hostvars, registered = fleet_vars
    slow: list[str] = []
    raw_get = hostvars.raw_get

    def counting_raw_get(host: str) -> Any:
        slow.append(host)
        return raw_get(host)

    monkeypatch.setattr(hostvars, "raw_get", counting_raw_get)
    lookup = registered_lookup(hostvars, "health")
    for host, value in registered.items():
        # the same value the public (slow) way gives
        assert lookup(host)["health"] == value == raw_get(host)["health"]
    assert slow == []  # registered hosts never needed the merged variables
    late = lookup("late")
    assert "health" not in late
    assert late["inventory_hostname"] == "late"  # raw_get answered
    assert slow == ["late"]
    assert lookup("nohost") is None

    # without the private cache (another ansible-core), raw_get alone gives the same results
    class OtherHostVars(Mapping):
        def __init__(self) -> None:
            self.raw_get = counting_raw_get

        def __getitem__(self, host: str) -> Any:
            raise AssertionError("hostvars[host] templates every variable")

        def __contains__(self, host: object) -> bool:
            return host in hostvars

        def __iter__(self) -> Iterator[str]:
            return iter(hostvars)

        def __len__(self) -> int:
            return len(hostvars)

    slow.clear()
    lookup = registered_lookup(OtherHostVars(), "health")
    assert {h: lookup(h)["health"] for h in registered} == registered
    assert slow == list(registered)
    # a plain mapping of host variables works too
    plain = {"web1": {"health": registered["web1"]}}
    assert registered_lookup(plain, "health")("web1")["health"] is registered["web1"]


class _Task:
    action = "daemonops.suite.audit_report"
    async_val = 0
    check_mode = False

    def __init__(self, args: dict[str, Any], check_mode: bool = False) -> None:
        self.args = args
        self.check_mode = check_mode


def run_action(args: dict[str, Any], task_vars: dict[str, Any], check_mode: bool = False) -> dict:
    from unittest import mock

    from ansible_collections.daemonops.suite.plugins.action.audit_report import ActionModule

    connection = mock.MagicMock()
    connection._shell.tmpdir = "/nonexistent-tmp"  # never used: the action has no target
    action = ActionModule(
        _Task(args, check_mode), connection, mock.MagicMock(), mock.MagicMock(), None, None
    )
    return action.run(task_vars=task_vars)


def test_action_reads_registered_results_of_the_play_hosts(fleet_vars: Any, tmp_path: Any) -> None:
    hostvars, _registered = fleet_vars
    task_vars = {"hostvars": hostvars, "ansible_play_hosts_all": ["web1", "web2", "gone", "late"]}
    dest = tmp_path / "reports"
    result = run_action({"register_name": "health", "dest": str(dest)}, task_vars)
    assert result["unhealthy_hosts"] == ["gone", "late", "web2"]
    assert result["unreachable_hosts"] == ["gone"]
    assert result["summary"]["hosts"] == 4 and result["summary"]["failed"] == 1
    report = json.loads((dest / "health_audit.json").read_text())
    assert report["hosts"]["late"] == {
        "status": "failed",
        "msg": ar.MISSING_RESULT_MSG,
        "daemons": {},
        "problems": [],
    }
    assert report["hosts"]["gone"]["msg"] == "ssh: connect refused"
    assert report["hosts"]["web1"]["daemons"]["stpd"]["clients"] == 2
    assert sorted(p.name for p in dest.iterdir() if p.is_file()) == sorted(
        "health_audit" + suffix for suffix in ar.FILE_SUFFIXES.values()
    )
    (kept,) = (dest / "history").iterdir()
    assert result["history_file"] == str(kept)
    assert json.loads(kept.read_text()) == report
    assert result["since_last"] is None

    # hosts limits the report; the same report as passing the results directly
    only = run_action(
        {"register_name": "health", "hosts": ["web2"], "dest": str(dest), "formats": ["json"]},
        task_vars,
    )
    direct = run_action(
        {"results": {"web2": hostvars.raw_get("web2")["health"]}, "dest": str(tmp_path / "d")},
        {},
        check_mode=True,
    )
    assert only["summary"] == direct["summary"] and only["problems"] == direct["problems"]
    assert only["summary"]["hosts"] == 1 and only["unhealthy_hosts"] == ["web2"]
    assert not (tmp_path / "d").exists()  # check mode writes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"dest": "x"}, r"one of the following is required: results, register_name"),
        (
            {"dest": "x", "results": {}, "register_name": "health"},
            r"mutually exclusive: results\|register_name",
        ),
        (
            {"dest": "x", "results": {}, "hosts": ["web1"]},
            r"missing parameter\(s\) required by 'hosts': register_name",
        ),
        (
            {"dest": "x", "results": ["web1"]},
            r"^results: expected a dict .* got list; or give register_name",
        ),
        ({"dest": "x", "register_name": ""}, r"^register_name: empty"),
        (
            {"dest": "x", "register_name": "health", "hosts": ["nohost"]},
            r"^hosts: 'nohost' is not a host",
        ),
    ],
)
def test_action_option_errors_name_the_option(
    fleet_vars: Any, args: dict[str, Any], message: str
) -> None:
    from ansible.errors import AnsibleActionFail

    hostvars, _registered = fleet_vars
    with pytest.raises(AnsibleActionFail, match=message):
        run_action(args, {"hostvars": hostvars, "ansible_play_hosts_all": ["web1"]})


def test_action_without_play_hosts_asks_for_hosts() -> None:
    from ansible.errors import AnsibleActionFail

    with pytest.raises(AnsibleActionFail, match=r"^hosts: not given and ansible_play_hosts_all"):
        run_action({"register_name": "health", "dest": "x"}, {"hostvars": {}})


# ----------------------------------------------------------------------------- operations


def test_cells_say_only_what_applies() -> None:
    offline = daemon("offline", port(11000, listening=False), problems=["x offline"])
    offline["ancestry"] = {"expected": "qm", "ok": None, "chain": []}
    unused = daemon("unused", port(11301, listening=False, owned=False))
    one = daemon("online", port(11401, clients=1))
    one["ancestry"] = {"expected": "qm", "ok": True, "chain": [4242, 4000]}
    r = ar.build_report({"h": health({"stpd": offline, "ctrl": unused, "ui": one})}, GENERATED_AT)
    cells = {
        a["title"].split(":", 1)[0]: a["title"]
        for t, a in parse_html(ar.to_html(r)).tags
        if t == "td" and a.get("title")
    }
    assert "ancestor" not in cells["stpd"] and "NOT owned" not in cells["stpd"]
    assert "port 11000: free" in cells["stpd"]
    assert cells["ctrl"] == "ctrl: unused: not enabled for this host"
    assert "1 client" in cells["ui"] and "1 clients" not in cells["ui"]
    assert "ancestor qm: ok (4242 &lt;- 4000)" in ar.to_html(r)


def test_maintenance_silences_host_and_daemon_until_it_expires() -> None:
    results = fleet()
    maintenance = [
        {"host": "gone", "reason": "rack move", "until": "2099-01-01"},
        {"host": "web2", "daemon": "stpd", "reason": "disk swap", "until": "2099-01-01T10:00:00Z"},
        {"host": "broken", "reason": "old ticket", "until": "2020-01-01"},
    ]
    r = ar.build_report(results, GENERATED_AT, maintenance=maintenance)
    # gone is silenced; web2 still fails for ui (stpd alone would not count); broken expired
    assert r["unhealthy_hosts"] == ["broken", "web2"]
    assert r["reasons"]["web2"] == "unhealthy: ui port 11401 held by nginx[812]"
    assert r["hosts"]["gone"]["silenced"]["reason"] == "rack move"
    assert r["hosts"]["web2"]["daemons"]["stpd"]["silenced"]["until"] == "2099-01-01T10:00:00Z"
    assert [m["host"] for m in r["maintenance"]["expired"]] == ["broken"]
    assert r["summary"]["silenced"] == 1
    page = ar.to_html(r)
    row = re.search(r'<tr id="host-gone" class="([^"]+)"', page)
    assert row and "silenced" in row.group(1)
    assert "disk swap" in page and "expired 2020-01-01T23:59:59Z" in page
    junit = ET.fromstring(ar.to_junit(r)).find("testsuite")
    assert junit is not None and junit.get("errors") == "1"  # only broken
    fams = parse_prometheus(ar.to_prometheus(r))
    silenced = {lb["host"]: v for lb, v in fams["daemonops_host_silenced"]}
    assert silenced["gone"] == "1" and silenced["web2"] == "0"
    only_stpd = ar.build_report(
        {"web2": health({"stpd": daemon("offline", problems=["stpd offline"])})},
        GENERATED_AT,
        maintenance=maintenance[1:2],
    )
    assert only_stpd["unhealthy_hosts"] == [] and only_stpd["healthy"] is True


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"host": "a", "reason": "x"}, "needs host, reason and until"),
        ({"host": "a", "reason": "x", "until": "soon"}, "is not a date"),
        ("a", "is not a dict"),
    ],
)
def test_maintenance_refuses_bad_entries(entry: Any, message: str) -> None:
    with pytest.raises(ar.AuditReportError, match=message):
        ar.build_report({}, GENERATED_AT, maintenance=[entry])


def test_compare_reports_lists_what_changed() -> None:
    first = fleet()
    first["web1"]["version"] = "0.1.0"
    first["web1"]["config_checksum"] = "sha256:aaa"
    before = json.loads(ar.to_json(ar.build_report(first, GENERATED_AT)))
    second = fleet()
    del second["broken"]
    second["new1"] = health({"qm": daemon("online")})
    second["web2"]["daemons"]["stpd"] = daemon("online")  # resolved
    second["client1"]["daemons"]["sshd"] = daemon("offline", problems=["sshd offline"])
    second["web1"]["version"] = "0.1.0"
    second["web1"]["config_checksum"] = "sha256:bbb"  # drift
    second["web1"]["daemons"]["ui"]["start_time"] = 1732889000.0  # restarted
    after = ar.build_report(second, GENERATED_AT + 3600)
    since = ar.compare_reports(before, after)
    assert [(p["host"], p["daemon"]) for p in since["new_problems"]] == [("client1", "sshd")]
    assert sorted((p["host"], p["daemon"]) for p in since["resolved_problems"]) == [
        ("broken", ""),
        ("web2", "stpd"),
    ]
    assert since["hosts_added"] == ["new1"] and since["hosts_removed"] == ["broken"]
    assert [(r["host"], r["daemon"]) for r in since["restarted"]] == [("web1", "ui")]
    assert since["drift"] == [
        {"host": "web1", "field": "config_checksum", "before": "sha256:aaa", "after": "sha256:bbb"}
    ]
    after["since_last"] = since
    md = ar.to_markdown(after)
    assert "- new problem: **client1 / sshd** (offline): sshd offline" in md
    assert "- drift: **web1** config\\_checksum sha256:aaa → sha256:bbb" in md
    page = ar.to_html(after)
    assert page.index('id="since"') < page.index('id="problems"') < page.index('id="audit"')
    assert '<li id="drift"><strong>Changed out of band (drift) (1)</strong>' in page


def test_action_keeps_history_and_compares_with_the_last_audit(tmp_path: Any) -> None:
    dest = tmp_path / "reports"
    healthy = {"a": health({"qm": daemon("online")}), "b": health({"qm": daemon("online")})}
    first = run_action({"results": healthy, "dest": str(dest), "history": 2}, {})
    assert first["since_last"] is None and first["healthy"] is True
    broken = {"a": health({"qm": daemon("offline", problems=["qm offline"])})}
    for _round in range(3):
        time.sleep(0.002)  # distinct millisecond stamps
        last = run_action({"results": broken, "dest": str(dest), "history": 2}, {})
    kept = sorted((dest / "history").iterdir())
    assert len(kept) == 2 and str(kept[-1]) == last["history_file"]
    # the last run compared with the one before it: nothing new any more
    assert last["since_last"]["new_problems"] == [] and last["since_last"]["hosts_removed"] == []
    none_kept = run_action({"results": healthy, "dest": str(dest), "history": 0}, {})
    assert [p["host"] for p in none_kept["since_last"]["resolved_problems"]] == ["a"]
    assert none_kept["since_last"]["hosts_added"] == ["b"]
    assert not list((dest / "history").iterdir()) and none_kept["history_file"] is None


def test_action_refuses_an_empty_audit(tmp_path: Any) -> None:
    from ansible.errors import AnsibleActionFail

    with pytest.raises(AnsibleActionFail, match="no hosts to report on"):
        run_action({"results": {}, "dest": str(tmp_path)}, {})
    assert not list(tmp_path.iterdir())


def test_human_times() -> None:
    assert ar.human_duration(0.44) == "0.4 s"
    assert ar.human_duration(42) == "42 s"
    assert ar.human_duration(7 * 60 + 3) == "7 min 3 s"
    assert ar.human_duration(2 * 3600 + 5 * 60) == "2 h 5 min"
    assert ar.human_duration(3 * 86400 + 4 * 3600 + 59) == "3 d 4 h"
    assert ar.human_time(0) == "1970-01-01 00:00:00 UTC" and ar.human_time(None) == "-"
