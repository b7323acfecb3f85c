# Copyright: daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet health audit: aggregate health_info results and render them.

Pure logic, no I/O: ``collect_registered()`` picks each host's registered health_info result
out of its variables; ``build_report()`` turns ``{host: health_info result}`` into one report
dict; ``to_json``, ``to_markdown``, ``to_html``, ``to_junit`` and ``to_prometheus`` render that
dict as text. Everything is one linear pass with plain string building (no templates), so a
fleet of thousands of hosts is aggregated and rendered in milliseconds.

A host entry is either a health_info result (see docs/internals.md, "The health_info result"),
``{'unreachable': True, 'msg': ...}`` or ``{'failed': True, 'msg': ...}`` (the shapes Ansible
registers when a task could not reach a host or failed on it).
"""

from __future__ import annotations

import datetime
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from ansible_collections.daemonops.suite.plugins.module_utils._suite.states import (
    DAEMON_STATES,
    FAILURE,
    HEALTHY_STATES,
    HOST_FAILED,
    HOST_HEALTHY,
    HOST_NOT_CHECKED,
    HOST_STATES,
    HOST_UNHEALTHY,
    HOST_UNREACHABLE,
    NOT_APPLICABLE,
    ONLINE,
    UNKNOWN,
    UNUSED,
)

#: Version of the JSON report's layout (docs/audit.md, "The JSON report"); raised when a key
#: changes meaning or disappears.
SCHEMA_VERSION = 2
#: Hosts are listed problems first: unreachable and failed, unhealthy, then healthy.
HOST_ORDER = {HOST_FAILED: 0, HOST_UNREACHABLE: 0, HOST_UNHEALTHY: 1, HOST_HEALTHY: 2}
FORMATS = ("json", "markdown", "html", "junit", "prometheus")
FILE_SUFFIXES = {
    "json": ".json",
    "markdown": ".md",
    "html": ".html",
    "junit": ".junit.xml",
    "prometheus": ".prom",
}

#: The audit_report action's options; plugins/modules/audit_report.py documents the same spec.
ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "results": {"type": "dict"},
    "register_name": {"type": "str"},
    "hosts": {"type": "list", "elements": "str"},
    "dest": {"type": "path", "required": True},
    "formats": {
        "type": "list",
        "elements": "str",
        "choices": list(FORMATS),
        "default": list(FORMATS),
    },
    "basename": {"type": "str", "default": "health_audit"},
    "history": {"type": "int", "default": 30},
    "maintenance": {"type": "list", "elements": "dict", "default": []},
    "profile": {"type": "str"},
    "started": {"type": "float"},
}
#: The rules between the options (ArgumentSpecValidator / AnsibleModule keyword arguments).
ARGUMENT_RULES: dict[str, Any] = {
    "mutually_exclusive": [["results", "register_name"]],
    "required_one_of": [["results", "register_name"]],
    "required_by": {"hosts": ["register_name"]},
}

#: The msg of a host that has no registered result (it left the play before the check).
MISSING_RESULT_MSG = (
    "no health result, the host left the play before the check (unreachable or failed earlier)"
)


class AuditReportError(ValueError):
    """Bad input to the audit report (the message names the field and how to fix it)."""


# --------------------------------------------------------------------------- aggregation


def _epoch(generated_at: Any) -> float:
    if isinstance(generated_at, datetime.datetime):
        if generated_at.tzinfo is None:
            generated_at = generated_at.replace(tzinfo=datetime.timezone.utc)
        return generated_at.timestamp()
    if isinstance(generated_at, bool) or not isinstance(generated_at, (int, float)):
        raise AuditReportError(
            f"generated_at must be epoch seconds (int/float) or a datetime, "
            f"got {type(generated_at).__name__}"
        )
    return float(generated_at)


def _is_mapping(value: Any) -> bool:
    # dict first: a C-level check, while isinstance(x, Mapping) goes through the ABC machinery
    return isinstance(value, dict) or isinstance(value, Mapping)


def _port_clients(port: Any) -> int:
    if _is_mapping(port):
        clients = port.get("clients")
        if isinstance(clients, int) and not isinstance(clients, bool):
            return clients
    return 0


def _daemon_entry(name: str, data: Any) -> dict[str, Any]:
    """Normalise one daemon of a health_info result (keeps every field it had)."""
    entry: dict[str, Any] = dict(data) if _is_mapping(data) else {}
    state = entry.get("state")
    if state not in DAEMON_STATES:
        entry["reported_state"] = state
        entry["state"] = UNKNOWN
    problems = entry.get("problems")
    if not isinstance(problems, list):
        problems = [] if problems is None else [problems]
    problems = [str(p) for p in problems]
    if not problems and entry["state"] not in HEALTHY_STATES:
        problems = [f"{name} {entry['state']}"]
    entry["problems"] = problems
    ports = entry.get("ports")
    entry["ports"] = list(ports) if isinstance(ports, list) else []
    pids = entry.get("pids")
    entry["pids"] = list(pids) if isinstance(pids, list) else []
    entry["clients"] = sum(_port_clients(p) for p in entry["ports"])
    return entry


class _Columns:
    """Daemon names of all hosts in one order that keeps each host's (profile) order.

    A name not seen yet goes right after the name that precedes it on its host, so a client
    host's ``qm, ctrl, sshd`` and a server's ``qm, db, ui, ..., ctrl, sshd, sepuler`` merge into
    the server's order whichever host comes first.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._known: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._known

    def add(self, name: str, after: str | None) -> None:
        self._known.add(name)
        if after is None:
            self.names.insert(0, name)
        else:
            self.names.insert(self.names.index(after) + 1, name)


def _host_entry(host: str, result: Any, daemon_names: _Columns) -> dict[str, Any]:
    if not _is_mapping(result):
        return {
            "status": HOST_FAILED,
            "msg": f"no health_info result for host {host} (got {type(result).__name__})",
            "daemons": {},
            "problems": [],
        }
    if result.get("unreachable"):
        return {
            "status": HOST_UNREACHABLE,
            "msg": str(result.get("msg") or "host unreachable"),
            "daemons": {},
            "problems": [],
        }
    daemons_in = result.get("daemons")
    if not _is_mapping(daemons_in):
        if result.get("failed"):
            msg = str(result.get("msg") or "health_info failed")
        elif result.get("skipped"):
            msg = "health_info was skipped on this host"
        else:
            msg = "health_info result has no 'daemons' mapping"
        return {"status": HOST_FAILED, "msg": msg, "daemons": {}, "problems": []}

    daemons: dict[str, dict[str, Any]] = {}
    counts = dict.fromkeys((*DAEMON_STATES, UNKNOWN), 0)
    clients = 0
    problems: list[dict[str, str]] = []
    previous = None
    for raw_name, data in daemons_in.items():
        name = str(raw_name)
        if name not in daemon_names:
            daemon_names.add(name, after=previous)
        previous = name
        entry = _daemon_entry(name, data)
        daemons[name] = entry
        state = entry["state"]
        counts[state] += 1
        clients += entry["clients"]
        if state not in HEALTHY_STATES:
            problems.extend(
                {"daemon": name, "state": state, "problem": p} for p in entry["problems"]
            )
    status_text = result.get("status")
    unhealthy = bool(problems) or status_text == FAILURE or bool(result.get("failed"))
    msg = str(result.get("msg") or "")
    if unhealthy and not problems:
        problems.append(
            {"daemon": "", "state": HOST_FAILED, "problem": msg or "health check failed"}
        )
    return {
        "status": HOST_UNHEALTHY if unhealthy else HOST_HEALTHY,
        "msg": msg,
        "roles": list(result.get("roles") or []),
        "profile": result.get("profile"),
        "instance": result.get("instance"),
        "hostname": result.get("host"),
        "version": result.get("version"),
        "config_checksum": result.get("config_checksum"),
        "elapsed": result.get("elapsed"),
        "summary": {"total": len(daemons), **counts, "clients": clients},
        "status_lines": list(result.get("status_lines") or []),
        "daemons": daemons,
        "problems": problems,
    }


class Maintenance:
    """The maintenance list: ``{host, daemon?, reason, until}`` entries; expired ones are kept
    apart (listed in the report as expired, silencing nothing)."""

    def __init__(self, entries: Iterable[Mapping[str, Any]] | None, now: float) -> None:
        self.hosts: dict[str, dict[str, str]] = {}
        self.daemons: dict[tuple[str, str], dict[str, str]] = {}
        self.expired: list[dict[str, str]] = []
        for raw in entries or ():
            if not _is_mapping(raw):
                raise AuditReportError(
                    f"maintenance: {raw!r} is not a dict with host, reason and until"
                )
            host, reason, until = raw.get("host"), raw.get("reason"), raw.get("until")
            if not host or not reason or not until:
                raise AuditReportError(
                    f"maintenance: {dict(raw)!r} needs host, reason and until "
                    "(YYYY-MM-DD or an ISO 8601 time); daemon is optional"
                )
            try:
                moment = parse_until(until)
            except ValueError as exc:
                raise AuditReportError(f"maintenance: until {exc}") from None
            entry = {
                "host": str(host),
                "daemon": str(raw.get("daemon") or ""),
                "reason": str(reason),
                "until": moment.isoformat().replace("+00:00", "Z"),
            }
            if moment.timestamp() < now:
                self.expired.append(entry)
            elif entry["daemon"]:
                self.daemons[(entry["host"], entry["daemon"])] = entry
            else:
                self.hosts[entry["host"]] = entry

    @property
    def active(self) -> list[dict[str, str]]:
        return [*self.hosts.values(), *self.daemons.values()]


def parse_until(value: Any) -> datetime.datetime:
    """A maintenance entry's expiry: ``YYYY-MM-DD`` (end of that day, UTC) or an ISO 8601 time
    (UTC when it gives no zone). ValueError says what is accepted (the caller names the key)."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, datetime.date):
        moment = datetime.datetime.combine(value, datetime.time(23, 59, 59))
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = datetime.date.fromisoformat(text)
                moment = datetime.datetime.combine(day, datetime.time(23, 59, 59))
            else:
                moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date; give YYYY-MM-DD or an ISO 8601 time such as "
                "2026-12-24T18:00:00Z"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def _iso(epoch: float) -> str:
    stamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return stamp.isoformat().replace("+00:00", "Z")


def _reason(entry: Mapping[str, Any]) -> str:
    """Why a host fails the audit, in one line: ``unhealthy: stpd offline; ...``."""
    if entry["status"] in HOST_NOT_CHECKED:
        return f"{entry['status']}: {entry['msg']}"
    texts = [
        (f"{p['daemon']} " if p["daemon"] and not p["problem"].startswith(p["daemon"]) else "")
        + p["problem"]
        for p in entry["problems"]
        if not p.get("silenced")
    ]
    return f"{entry['status']}: {'; '.join(dict.fromkeys(texts))}"


def build_report(
    host_results: Mapping[str, Any],
    generated_at: Any,
    *,
    profile: str | None = None,
    started: float | None = None,
    maintenance: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Aggregate ``{host: health_info result}`` into one report dict (JSON-serialisable).

    ``generated_at`` is epoch seconds or a datetime; ``started`` (epoch seconds) gives the
    audit's duration. Hosts are listed problems first (unreachable and failed, unhealthy, then
    healthy; by name within each); daemon columns keep the order in which daemons first appear
    (the profile's order); ``profile`` defaults to the suites the hosts reported. ``maintenance`` entries that have not expired silence a host or one
    daemon: shown, but kept out of ``unhealthy_hosts`` (the verdict).
    """
    if not isinstance(host_results, Mapping):
        raise AuditReportError(
            "results must be a mapping of inventory host name to its health_info result, "
            f"got {type(host_results).__name__}"
        )
    epoch = _epoch(generated_at)
    silence = Maintenance(maintenance, epoch)
    daemon_names = _Columns()
    entries: dict[str, dict[str, Any]] = {}
    for raw_host in sorted(host_results, key=str):
        host = str(raw_host)
        entry = _host_entry(host, host_results[raw_host], daemon_names)
        host_silence = silence.hosts.get(host)
        if host_silence:
            entry["silenced"] = host_silence
        for name, daemon in entry["daemons"].items():
            daemon_silence = silence.daemons.get((host, name))
            if daemon_silence:
                daemon["silenced"] = daemon_silence
        for p in entry["problems"]:
            if host_silence or (host, p["daemon"]) in silence.daemons:
                p["silenced"] = True
        entries[host] = entry
    hosts = dict(sorted(entries.items(), key=lambda item: HOST_ORDER[item[1]["status"]]))
    host_counts = dict.fromkeys(HOST_STATES, 0)
    daemon_counts = dict.fromkeys((*DAEMON_STATES, UNKNOWN), 0)
    clients = 0
    problems: list[dict[str, Any]] = []
    reasons: dict[str, str] = {}
    for host, entry in hosts.items():
        host_counts[entry["status"]] += 1
        silenced = "silenced" in entry
        if entry["status"] in HOST_NOT_CHECKED:
            problem = {
                "host": host,
                "daemon": "",
                "state": entry["status"],
                "problem": entry["msg"],
            }
            if silenced:
                problem["silenced"] = True
            problems.append(problem)
        else:
            summary = entry["summary"]
            for state in daemon_counts:
                daemon_counts[state] += summary[state]
            clients += summary["clients"]
            problems.extend({"host": host, **p} for p in entry["problems"])
        if entry["status"] != HOST_HEALTHY and not silenced:
            if entry["status"] == HOST_UNHEALTHY and all(
                p.get("silenced") for p in entry["problems"]
            ):
                continue
            reasons[host] = _reason(entry)
    unhealthy_hosts = list(reasons)
    if profile is None:
        suites = sorted({str(e["profile"]) for e in hosts.values() if e.get("profile")})
        profile = ", ".join(suites) or None
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(epoch),
        "generated_at_epoch": epoch,
        "started_at": None if started is None else _iso(started),
        "duration_seconds": None if started is None else round(max(epoch - started, 0.0), 3),
        "profile": profile,
        "summary": {
            "hosts": len(hosts),
            **host_counts,
            "silenced": sum(1 for e in hosts.values() if "silenced" in e),
            "daemons": {"total": sum(daemon_counts.values()), **daemon_counts},
            "clients": clients,
        },
        "healthy": not unhealthy_hosts,
        "unhealthy_hosts": unhealthy_hosts,
        "unreachable_hosts": [h for h, e in hosts.items() if e["status"] == HOST_UNREACHABLE],
        "reasons": reasons,
        "maintenance": {"active": silence.active, "expired": silence.expired},
        "since_last": None,
        "daemon_names": daemon_names.names,
        "hosts": hosts,
        "problems": problems,
    }
    return report


# --------------------------------------------------------------------------- history


def _problem_key(problem: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(problem.get("host")), str(problem.get("daemon") or ""), str(problem.get("state")))


def compare_reports(previous: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """What changed since ``previous`` (an earlier report, as read from its JSON file).

    Problems are compared by host, daemon and state (their text may hold PIDs that change);
    a daemon restarted when its start time changed; a host drifted when its suite version or
    configuration checksum changed.
    """
    before_hosts = previous.get("hosts") if _is_mapping(previous.get("hosts")) else {}
    after_hosts = current["hosts"]

    def keyed(report: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
        found: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for p in report.get("problems") or []:
            if _is_mapping(p):
                found.setdefault(_problem_key(p), p)
        return found

    old, new = keyed(previous), keyed(current)
    restarted: list[dict[str, Any]] = []
    drift: list[dict[str, Any]] = []
    for host, entry in after_hosts.items():
        was = before_hosts.get(host)
        if not _is_mapping(was):
            continue
        for field in ("version", "config_checksum"):
            a, b = was.get(field), entry.get(field)
            if a is not None and b is not None and a != b:
                drift.append({"host": host, "field": field, "before": a, "after": b})
        old_daemons = was.get("daemons") if _is_mapping(was.get("daemons")) else {}
        for name, daemon in entry["daemons"].items():
            prior = old_daemons.get(name)
            if not _is_mapping(prior):
                continue
            a, b = prior.get("start_time"), daemon.get("start_time")
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) > 1:
                restarted.append({"host": host, "daemon": name, "before": a, "after": b})
    return {
        "previous_generated_at": previous.get("generated_at"),
        "previous_generated_at_epoch": previous.get("generated_at_epoch"),
        "new_problems": [dict(p) for k, p in new.items() if k not in old],
        "resolved_problems": [dict(p) for k, p in old.items() if k not in new],
        "hosts_added": [h for h in after_hosts if h not in before_hosts],
        "hosts_removed": [h for h in before_hosts if h not in after_hosts],
        "restarted": restarted,
        "drift": drift,
    }


_MISSING = object()


def collect_registered(
    hosts: Iterable[Any], register_name: str, host_vars: Callable[[str], Any]
) -> dict[str, Any]:
    """``{host: its registered result}`` for ``hosts``; a host named twice is read once.

    ``host_vars(host)`` returns the host's variables (a mapping); only ``register_name`` is read
    from it. A host without that variable gets ``{'failed': True, 'msg': MISSING_RESULT_MSG}``,
    so it is reported as failed. A host whose variables are not a mapping (not an inventory
    host) is an error naming it.
    """
    results: dict[str, Any] = {}
    for raw_host in hosts:
        if not isinstance(raw_host, str) or not raw_host:
            raise AuditReportError(
                f"hosts: {raw_host!r} is not an inventory host name; give a list of names, "
                "such as ansible_play_hosts_all"
            )
        if raw_host in results:
            continue
        variables = host_vars(raw_host)
        if not _is_mapping(variables):
            raise AuditReportError(
                f"hosts: {raw_host!r} is not a host of the inventory; give inventory host names, "
                "such as ansible_play_hosts_all"
            )
        result = variables.get(register_name, _MISSING)
        results[raw_host] = (
            {"failed": True, "msg": MISSING_RESULT_MSG} if result is _MISSING else result
        )
    return results


def summary_line(report: Mapping[str, Any]) -> str:
    """One human sentence: ``3 hosts: 1 healthy, 1 unhealthy, 1 unreachable, 0 failed; ...``."""
    s = report["summary"]
    d = s["daemons"]
    line = (
        f"{s['hosts']} hosts: {s['healthy']} healthy, {s['unhealthy']} unhealthy, "
        f"{s['unreachable']} unreachable, {s['failed']} failed; "
        f"{d['total']} daemons: {d['online']} online, {d['degraded']} degraded, "
        f"{d['offline']} offline, {d['unused']} unused"
    )
    if d.get("unknown"):
        line += f", {d['unknown']} unknown"
    if s.get("silenced"):
        line = line.replace(" failed; ", f" failed, {s['silenced']} silenced; ", 1)
    connections = "connection" if s["clients"] == 1 else "connections"
    return f"{line}; {s['clients']} client {connections}"


# --------------------------------------------------------------------------- JSON


def _json_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def to_json(report: Mapping[str, Any]) -> str:
    """The full report (every field of every health_info result) as JSON.

    Top-level keys, and each host, are on their own line: readable with ``jq`` or a pager and
    fast to write (the C encoder does the work; indenting everything would be ten times slower).
    """
    lines = []
    for key, value in report.items():
        if key == "hosts" and isinstance(value, Mapping) and value:
            hosts = ",\n".join(
                f"    {_json_compact(str(h))}: {_json_compact(e)}" for h, e in value.items()
            )
            lines.append(f'  "hosts": {{\n{hosts}\n  }}')
        else:
            lines.append(f"  {_json_compact(str(key))}: {_json_compact(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")
_WHITESPACE = re.compile(r"[\r\n\t\f\v]+")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def md_escape(text: Any) -> str:
    """Escape text for a Markdown paragraph or table cell (no HTML, no markup, no line break)."""
    text = _CONTROL.sub("\ufffd", _WHITESPACE.sub(" ", str(text)))
    return _MD_SPECIAL.sub(r"\\\1", text)


def _clients(count: int) -> str:
    return f"{count} client" if count == 1 else f"{count} clients"


def _md_cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "·"
    state = entry["state"]
    text = state
    if state == ONLINE and entry["clients"]:
        text = f"online ({_clients(entry['clients'])})"
    return text if state in HEALTHY_STATES else f"**{md_escape(text)}**"


def to_markdown(report: Mapping[str, Any]) -> str:
    """Summary line, a hosts x daemons table, then the list of problems."""
    names = report["daemon_names"]
    head = f"Generated {human_time(report.get('generated_at_epoch'))}"
    if report.get("duration_seconds") is not None:
        head += f" in {human_duration(report['duration_seconds'])}"
    if report.get("profile"):
        head += f", profile {md_escape(report['profile'])}"
    out = ["# Daemon health audit", "", f"{head}. {summary_line(report)}.", ""]
    since = report.get("since_last")
    if since:
        previous = human_time(since.get("previous_generated_at_epoch"))
        out += [f"## Since the last audit ({previous})", ""]
        for title, key in (
            ("New problems", "new_problems"),
            ("Resolved problems", "resolved_problems"),
        ):
            for p in since[key]:
                where = md_escape(p["host"]) + (
                    f" / {md_escape(p['daemon'])}" if p.get("daemon") else ""
                )
                out.append(
                    f"- {title[:-1].lower()}: **{where}** ({md_escape(p['state'])}): {md_escape(p['problem'])}"
                )
        for title, key in (("host added", "hosts_added"), ("host removed", "hosts_removed")):
            out.extend(f"- {title}: **{md_escape(h)}**" for h in since[key])
        for r in since["restarted"]:
            out.append(
                f"- restarted: **{md_escape(r['host'])} / {md_escape(r['daemon'])}** at "
                f"{human_time(r['after'])}"
            )
        for d in since["drift"]:
            out.append(
                f"- drift: **{md_escape(d['host'])}** {md_escape(d['field'])} "
                f"{md_escape(d['before'])} → {md_escape(d['after'])}"
            )
        if out[-1] == "":
            out.append("Nothing changed.")
        out.append("")
    if not report["hosts"]:
        out += ["No hosts in this audit.", ""]
    else:
        out.append("| Host | Status |" + "".join(f" {md_escape(n)} |" for n in names))
        out.append("|---|---|" + "---|" * len(names))
        dash = " · |" * len(names)
        for host, entry in report["hosts"].items():
            status = entry["status"]
            status_cell = status if status == HOST_HEALTHY else f"**{status}**"
            if entry.get("silenced"):
                status_cell = f"{status} (silenced)"
            row = f"| {md_escape(host)} | {status_cell} |"
            if status in HOST_NOT_CHECKED:
                out.append(row + dash)
                continue
            daemons = entry["daemons"]
            out.append(row + "".join(f" {_md_cell(daemons.get(n))} |" for n in names))
        out.append("")
        out.append("Legend: `·` = daemon not expected on this host's roles.")
        out.append("")
    out.append("## Problems")
    out.append("")
    if not report["problems"]:
        out.append("None: every host is healthy.")
    for p in report["problems"]:
        where = md_escape(p["host"]) + (f" / {md_escape(p['daemon'])}" if p["daemon"] else "")
        quiet = " (silenced)" if p.get("silenced") else ""
        out.append(f"- **{where}** ({md_escape(p['state'])}): {md_escape(p['problem'])}{quiet}")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def human_time(epoch: Any) -> str:
    """``2026-12-06 17:39:13 UTC`` for epoch seconds; ``-`` for anything else."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        return "-"
    stamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def human_duration(seconds: Any) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``7 min 3 s``, ``12 s``, ``0.4 s``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _port_text(port: Any, running: bool) -> str:
    if not _is_mapping(port):
        return str(port)
    if not running:
        # nobody to own it: say only whether something else holds it
        holder = port.get("holder")
        text = f"port {port.get('port')}: " + (
            f"held by {holder}" if holder else "listening" if port.get("listening") else "free"
        )
        return text
    flags = [
        "listening" if port.get("listening") else "NOT listening",
        "owned" if port.get("owned") else "NOT owned",
    ]
    holder = port.get("holder")
    if holder:
        flags.append(f"held by {holder}")
    probe = port.get("probe")
    if _is_mapping(probe):
        flags.append(f"probe {'ok' if probe.get('ok') else 'FAILED'}: {probe.get('detail', '')}")
    text = f"port {port.get('port')}: {', '.join(flags)}; {_clients(_port_clients(port))}"
    peers = port.get("peers")
    if peers:
        text += " (" + ", ".join(str(p) for p in peers) + ")"
    return text


def _cell_details(entry: Mapping[str, Any]) -> list[str]:
    state = entry["state"]
    running = bool(entry["pids"])
    lines = []
    silenced = entry.get("silenced")
    if silenced:
        lines.append(f"silenced until {silenced['until']}: {silenced['reason']}")
    if state == UNUSED:
        lines.append("unused: not enabled for this host")
        lines.extend(f"problem: {p}" for p in entry["problems"])
        return lines
    lines.append("pids: " + (", ".join(str(p) for p in entry["pids"]) or "none"))
    lines.extend(_port_text(p, running) for p in entry["ports"])
    ancestry = entry.get("ancestry")
    if running and _is_mapping(ancestry) and ancestry.get("ok") is not None:
        chain = " <- ".join(str(p) for p in ancestry.get("chain") or [])
        ok = "ok" if ancestry.get("ok") else "WRONG"
        lines.append(
            f"ancestor {ancestry.get('expected')}: {ok}" + (f" ({chain})" if chain else "")
        )
    record = entry.get("pid_record")
    if _is_mapping(record) and record.get("status") not in (None, NOT_APPLICABLE):
        lines.append(f"pid record: {record.get('status')}")
    if running and isinstance(entry.get("start_time"), (int, float)):
        lines.append(f"started: {human_time(entry['start_time'])}")
    if running and isinstance(entry.get("uptime"), (int, float)):
        lines.append(f"uptime: {human_duration(entry['uptime'])}")
    lines.extend(f"problem: {p}" for p in entry["problems"])
    return lines


def _html_cell(name: str, entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return '<td class="na" title="not expected on this host">&middot;</td>'
    state = entry["state"]
    css = state + (" silenced" if entry.get("silenced") else "")
    # escaping is per character, so each line is escaped once for both the title and the list
    details = [_h(line) for line in _cell_details(entry)]
    label = _h(state) + (f" ({_clients(entry['clients'])})" if entry["clients"] else "")
    items = "".join(f"<li>{line}</li>" for line in details)
    return (
        f'<td class="{css}" title="{_h(name)}: {"; ".join(details)}">'
        f"<details><summary>{label}</summary><ul>{items}</ul></details></td>"
    )


_HTML_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 1.5em 1.5em;color:#222}
h1{font-size:1.4em;margin:.4em 0}
h2{font-size:1.15em}
#top{position:sticky;top:0;z-index:3;background:#fff;border-bottom:1px solid #bbb;padding:.3em 0}
#top p{margin:.2em 0}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .5em;vertical-align:top;text-align:left}
thead th{background:#eee;position:sticky;top:var(--top-height,0);z-index:2}
td details summary{cursor:pointer;white-space:nowrap}
td ul{margin:.3em 0;padding-left:1.2em;font-size:.85em}
.online{background:#c8efc8}
.degraded{background:#ffd27a}
.offline{background:#f49a9a}
.unused{background:#ddd;color:#555}
.unknown{background:#e3c6f0}
.unreachable{background:#333;color:#fff}
.failed{background:#7a2b2b;color:#fff}
.silenced,tr.silenced td,tr.silenced th{background:#eee !important;color:#888 !important}
.na{color:#999;text-align:center}
th.host{white-space:nowrap}
th.host a{color:inherit}
tr.host-healthy th.host{border-left:6px solid #3a3}
tr.host-unhealthy th.host{border-left:6px solid #d33}
tr.host-unreachable th.host,tr.host-failed th.host{border-left:6px solid #333}
tr:target th.host{outline:3px solid #06c}
.status-unhealthy{color:#b00;font-weight:bold}
#controls label{margin-right:1em}
#problems li,#since li{margin:.2em 0}
#problem-box{max-height:40vh;overflow:auto}
.legend span{padding:0 .5em;margin-right:.3em;border:1px solid #bbb}
"""

_HTML_SCRIPT = """
(function(){
  var box=document.getElementById('only-unhealthy');
  var search=document.getElementById('search');
  var rows=document.querySelectorAll('#audit tbody tr');
  var shown=document.getElementById('shown-count');
  var top=document.getElementById('top');
  function fit(){
    document.documentElement.style.setProperty('--top-height',top.offsetHeight+'px');
  }
  function apply(){
    var n=0, q=search.value.trim().toLowerCase();
    for(var i=0;i<rows.length;i++){
      var hide=(box.checked&&rows[i].getAttribute('data-healthy')==='1')||
        (q!==''&&rows[i].getAttribute('data-search').indexOf(q)<0);
      rows[i].hidden=hide;
      if(!hide){n++;}
    }
    shown.textContent=String(n);
    document.getElementById('audit').setAttribute('data-filter',box.checked?'unhealthy':'all');
    fit();
  }
  box.addEventListener('change',function(){
    if(history.replaceState){
      history.replaceState(null,'',box.checked?'#only-unhealthy':location.pathname+location.search);
    }
    apply();
  });
  function reveal(){
    // a link to a host row (#host-...) shows the row even when a filter hides it
    if(location.hash.indexOf('#host-')!==0){return;}
    var row=document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if(!row){return;}
    if(row.hidden){box.checked=false;search.value='';apply();}
    row.scrollIntoView({block:'center'});
    document.body.setAttribute('data-target',row.id);
    document.body.setAttribute('data-target-top',String(Math.round(row.getBoundingClientRect().top)));
    document.body.setAttribute('data-scroll',String(Math.round(window.scrollY)));
  }
  search.addEventListener('input',apply);
  window.addEventListener('resize',fit);
  window.addEventListener('hashchange',reveal);
  if(location.hash==='#only-unhealthy'){box.checked=true;}
  apply();
  reveal();
  document.body.setAttribute('data-audit-ready','1');
})();
"""


class _Anchors:
    """One HTML id per host (``host-<name>``, characters outside [A-Za-z0-9_.-] replaced)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.ids: dict[str, str] = {}
        used: set[str] = set()
        for host in hosts:
            base = "host-" + re.sub(r"[^A-Za-z0-9_.-]", "_", host)
            anchor, n = base, 1
            while anchor in used:
                n += 1
                anchor = f"{base}-{n}"
            used.add(anchor)
            self.ids[host] = anchor

    def link(self, host: str) -> str:
        return f'<a href="#{self.ids[host]}">{_h(host)}</a>' if host in self.ids else _h(host)


def _html_since(since: Mapping[str, Any] | None, anchors: _Anchors) -> list[str]:
    if not since:
        return ['<section id="since"><h2>Since the last audit</h2>',
                "<p>No earlier audit kept: nothing to compare with.</p></section>"]  # fmt: skip
    out = [
        '<section id="since"><h2>Since the last audit</h2><p>Compared with the audit of ',
        _h(human_time(since.get("previous_generated_at_epoch"))),
        ".</p><ul>",
    ]

    def problem(p: Mapping[str, Any]) -> str:
        where = anchors.link(str(p.get("host")))
        if p.get("daemon"):
            where += f" / {_h(p['daemon'])}"
        return f"{where} ({_h(p.get('state'))}): {_h(p.get('problem'))}"

    groups = (
        ("new-problems", "New problems", [problem(p) for p in since["new_problems"]]),
        (
            "resolved-problems",
            "Resolved problems",
            [problem(p) for p in since["resolved_problems"]],
        ),
        ("hosts-added", "Hosts added", [anchors.link(h) for h in since["hosts_added"]]),
        ("hosts-removed", "Hosts removed", [_h(h) for h in since["hosts_removed"]]),
        (
            "restarted",
            "Daemons restarted",
            [
                f"{anchors.link(r['host'])} / {_h(r['daemon'])}: started "
                f"{_h(human_time(r['after']))} (was {_h(human_time(r['before']))})"
                for r in since["restarted"]
            ],
        ),
        (
            "drift",
            "Changed out of band (drift)",
            [
                f"{anchors.link(d['host'])}: {_h(d['field'])} {_h(d['before'])} &rarr; "
                f"{_h(d['after'])}"
                for d in since["drift"]
            ],
        ),
    )
    for css, title, items in groups:
        body = (
            ", ".join(items) if css.startswith("hosts") else "".join(f"<li>{i}</li>" for i in items)
        )
        if not items:
            out.append(f'<li id="{css}">{title}: none</li>')
        elif css.startswith("hosts"):
            out.append(f'<li id="{css}"><strong>{title} ({len(items)})</strong>: {body}</li>')
        else:
            out.append(
                f'<li id="{css}"><strong>{title} ({len(items)})</strong><ul>{body}</ul></li>'
            )
    out.append("</ul></section>")
    return out


def to_html(report: Mapping[str, Any]) -> str:
    """A self-contained page (inline CSS and JS, no external resource), problems first."""
    names = report["daemon_names"]
    hosts = report["hosts"]
    anchors = _Anchors(hosts)
    duration = report.get("duration_seconds")
    head = f"Generated {human_time(report.get('generated_at_epoch'))}"
    if duration is not None:
        head += f" in {human_duration(duration)}"
    if report.get("profile"):
        head += f", profile {report['profile']}"
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        "<title>Daemon health audit ",
        _h(report["generated_at"]),
        "</title><style>",
        _HTML_STYLE,
        '</style></head><body><div id="top"><h1>Daemon health audit</h1><p id="generated">',
        _h(head),
        '.</p><p id="summary">',
        _h(summary_line(report)),
        '.</p><div id="controls"><label><input type="checkbox" id="only-unhealthy"> '
        'Show only unhealthy rows</label><label>Search <input type="search" id="search" '
        'placeholder="host, daemon, problem"></label> (<span id="shown-count">',
        str(len(hosts)),
        "</span> of ",
        str(len(hosts)),
        ' hosts shown) <span class="legend">',
        "".join(
            f'<span class="{s}">{s}</span>'
            for s in (*DAEMON_STATES, HOST_UNREACHABLE, HOST_FAILED, "silenced")
        ),
        "</span></div></div>",
    ]
    parts.extend(_html_since(report.get("since_last"), anchors))
    parts.append(
        '<section id="problem-section"><h2>Problems</h2><div id="problem-box"><ul id="problems">'
    )
    if not report["problems"]:
        parts.append("<li>None: every host is healthy.</li>")
    for p in report["problems"]:
        where = anchors.link(p["host"]) + (f" / {_h(p['daemon'])}" if p["daemon"] else "")
        muted = ' class="silenced"' if p.get("silenced") else ""
        parts.append(
            f'<li{muted}><strong>{where}</strong> (<span class="{_h(p["state"])}">'
            f"{_h(p['state'])}</span>): {_h(p['problem'])}"
            + (" (silenced)" if p.get("silenced") else "")
            + "</li>"
        )
    parts.append("</ul></div></section>")
    maint = report.get("maintenance") or {}
    if maint.get("active") or maint.get("expired"):
        parts.append('<section id="maintenance"><h2>Maintenance</h2><ul>')
        for m in maint.get("active", []):
            what = anchors.link(m["host"]) + (f" / {_h(m['daemon'])}" if m["daemon"] else "")
            parts.append(f"<li>{what}: {_h(m['reason'])} (until {_h(m['until'])})</li>")
        for m in maint.get("expired", []):
            what = _h(m["host"]) + (f" / {_h(m['daemon'])}" if m["daemon"] else "")
            parts.append(f"<li>{what}: expired {_h(m['until'])}, no longer silenced</li>")
        parts.append("</ul></section>")
    parts += [
        '<h2>Hosts</h2><table id="audit"><thead><tr><th>Host</th><th>Status</th>',
        "".join(f'<th class="daemon">{_h(n)}</th>' for n in names),
        "</tr></thead><tbody>",
    ]
    width = len(names)
    for host, entry in hosts.items():
        status = entry["status"]
        silenced = entry.get("silenced")
        healthy = "1" if status == HOST_HEALTHY or silenced else "0"
        hhost = _h(host)
        search_text = " ".join(
            [host, status, *(f"{p['daemon']} {p['problem']}" for p in entry["problems"]),
             entry.get("msg") or ""]
        ).lower()  # fmt: skip
        css = f"host-{status}" + (" silenced" if silenced else "")
        title = (
            f' title="silenced until {_h(silenced["until"])}: {_h(silenced["reason"])}"'
            if silenced
            else ""
        )
        row = (
            f'<tr id="{anchors.ids[host]}" class="{css}" data-host="{hhost}" '
            f'data-healthy="{healthy}" data-search="{_h(search_text)}"{title}>'
            f'<th class="host"><a href="#{anchors.ids[host]}">{hhost}</a></th>'
        )
        if status in HOST_NOT_CHECKED:
            msg = _h(entry["msg"])
            parts.append(
                f'{row}<td class="{status}" title="{msg}">{status}</td>'
                f'<td class="{status}" colspan="{max(width, 1)}">{msg}</td></tr>'
            )
            continue
        daemons = entry["daemons"]
        parts.append(
            f'{row}<td class="status-{status}">{status}</td>'
            + "".join(_html_cell(n, daemons.get(n)) for n in names)
            + "</tr>"
        )
    parts.extend(("</tbody></table><script>", _HTML_SCRIPT, "</script></body></html>\n"))
    return "".join(parts)


# --------------------------------------------------------------------------- JUnit XML

# Characters XML 1.0 cannot carry at all (even as references): replaced by U+FFFD.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ATTR = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("\n"): "&#10;",
    ord("\r"): "&#13;",
    ord("\t"): "&#9;",
}
_XML_TEXT = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord("\r"): "&#13;"}


def xml_attr(text: Any) -> str:
    return _XML_INVALID.sub("\ufffd", str(text)).translate(_XML_ATTR)


def xml_text(text: Any) -> str:
    return _XML_INVALID.sub("\ufffd", str(text)).translate(_XML_TEXT)


def to_junit(report: Mapping[str, Any]) -> str:
    """One testsuite; per host a testcase ``reachable``, then one per daemon (classname = host,
    name = daemon).

    Every host has the ``reachable`` case whatever its state, so CI systems track the same test
    from one audit to the next: an unreachable host (or one whose check failed) gets an
    ``<error>`` there and no daemon cases. offline/degraded daemons get a ``<failure>``, unused
    and silenced ones are ``<skipped>``. The suite's ``time`` is the audit's duration, the
    ``reachable`` case's the time health_info took on the host.
    """
    cases: list[str] = []
    failures = errors = skipped = 0
    for host, entry in report["hosts"].items():
        chost = xml_attr(host)
        status = entry["status"]
        silenced = entry.get("silenced")
        elapsed = entry.get("elapsed")
        took = f"{elapsed:.3f}" if isinstance(elapsed, (int, float)) else "0"
        head = f'  <testcase classname="{chost}" name="reachable" time="{took}">'
        if status in HOST_NOT_CHECKED or (not entry["daemons"] and status != HOST_HEALTHY):
            msg = (
                entry["msg"]
                if status in HOST_NOT_CHECKED
                else "; ".join(p["problem"] for p in entry["problems"])
            )
            kind = status if status in HOST_NOT_CHECKED else HOST_FAILED
            if silenced:
                skipped += 1
                cases.append(
                    f'{head}\n    <skipped message="silenced: {xml_attr(silenced["reason"])}"/>\n'
                    "  </testcase>\n"
                )
                continue
            errors += 1
            cases.append(
                f'{head}\n    <error type="{kind}" message="{xml_attr(msg)}">'
                f"{xml_text(msg)}</error>\n  </testcase>\n"
            )
            continue
        cases.append(head[:-1] + "/>\n")
        for name, d in entry["daemons"].items():
            state = d["state"]
            head = f'  <testcase classname="{chost}" name="{xml_attr(name)}" time="0">'
            quiet = silenced or d.get("silenced")
            if state == ONLINE:
                cases.append(head[:-1] + "/>\n")
            elif state == UNUSED or quiet:
                skipped += 1
                why = UNUSED if state == UNUSED else f"silenced: {quiet['reason']}"
                cases.append(f'{head}\n    <skipped message="{xml_attr(why)}"/>\n  </testcase>\n')
            else:
                failures += 1
                msg = "; ".join(d["problems"])
                cases.append(
                    f'{head}\n    <failure type="{xml_attr(state)}" message="{xml_attr(msg)}">'
                    f"{xml_text(chr(10).join(d['problems']))}</failure>\n  </testcase>\n"
                )
    stamp = report["generated_at"].rstrip("Z")
    duration = report.get("duration_seconds") or 0
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="daemonops health audit" tests="{len(cases)}" '
        f'failures="{failures}" errors="{errors}" skipped="{skipped}" time="{duration:.3f}">\n'
        f'<testsuite name="daemonops.health_audit" tests="{len(cases)}" failures="{failures}" '
        f'errors="{errors}" skipped="{skipped}" time="{duration:.3f}" '
        f'timestamp="{xml_attr(stamp)}">\n'
    )
    return header + "".join(cases) + "</testsuite>\n</testsuites>\n"


# --------------------------------------------------------------------------- Prometheus

_PROM_LABEL = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n"}


def prom_label(text: Any) -> str:
    """Escape a label value for the Prometheus text exposition format."""
    return str(text).translate(_PROM_LABEL)


_PROM_FAMILIES: tuple[tuple[str, str], ...] = (
    (
        "daemonops_daemon_state",
        "1 for the daemon's current state, 0 for the others (one series per state); essential "
        "says whether the daemon is essential.",
    ),
    ("daemonops_daemon_up", "1 if the daemon is online, else 0."),
    ("daemonops_daemon_start_time_seconds", "Start of the daemon's oldest process, Unix time."),
    ("daemonops_daemon_clients", "Established client connections on the daemon's ports."),
    ("daemonops_daemon_silenced", "1 while the daemon is silenced by the maintenance list."),
    ("daemonops_host_state", "1 for the host's audit status, 0 for the others."),
    ("daemonops_host_healthy", "1 if every daemon expected on the host is online or unused."),
    ("daemonops_host_reachable", "0 if Ansible could not reach the host, else 1."),
    ("daemonops_host_check_failed", "1 if health_info failed on a reachable host."),
    ("daemonops_host_silenced", "1 while the host is silenced by the maintenance list."),
    ("daemonops_audit_hosts", "Hosts in the last audit by status."),
    ("daemonops_audit_duration_seconds", "How long the audit took."),
    ("daemonops_audit_timestamp_seconds", "Unix time the audit report was generated."),
)


def to_prometheus(report: Mapping[str, Any]) -> str:
    """Text exposition format for node_exporter's textfile collector (no sample timestamps)."""
    samples: dict[str, list[str]] = {name: [] for name, _help in _PROM_FAMILIES}
    states = (*DAEMON_STATES, UNKNOWN)
    for host, entry in report["hosts"].items():
        lhost = prom_label(host)
        status = entry["status"]
        for s in HOST_STATES:
            samples["daemonops_host_state"].append(
                f'daemonops_host_state{{host="{lhost}",state="{s}"}} {int(s == status)}\n'
            )
        samples["daemonops_host_healthy"].append(
            f'daemonops_host_healthy{{host="{lhost}"}} {int(status == HOST_HEALTHY)}\n'
        )
        samples["daemonops_host_reachable"].append(
            f'daemonops_host_reachable{{host="{lhost}"}} {int(status != HOST_UNREACHABLE)}\n'
        )
        samples["daemonops_host_check_failed"].append(
            f'daemonops_host_check_failed{{host="{lhost}"}} {int(status == HOST_FAILED)}\n'
        )
        samples["daemonops_host_silenced"].append(
            f'daemonops_host_silenced{{host="{lhost}"}} {int("silenced" in entry)}\n'
        )
        for name, d in entry["daemons"].items():
            labels = f'host="{lhost}",daemon="{prom_label(name)}"'
            state = d["state"]
            essential = "true" if d.get("essential") else "false"
            for s in states:
                samples["daemonops_daemon_state"].append(
                    f'daemonops_daemon_state{{{labels},state="{s}",essential="{essential}"}} '
                    f"{int(s == state)}\n"
                )
            samples["daemonops_daemon_up"].append(
                f"daemonops_daemon_up{{{labels}}} {int(state == ONLINE)}\n"
            )
            start = d.get("start_time")
            if isinstance(start, (int, float)) and not isinstance(start, bool):
                samples["daemonops_daemon_start_time_seconds"].append(
                    f"daemonops_daemon_start_time_seconds{{{labels}}} {_prom_float(start)}\n"
                )
            samples["daemonops_daemon_clients"].append(
                f"daemonops_daemon_clients{{{labels}}} {d['clients']}\n"
            )
            samples["daemonops_daemon_silenced"].append(
                f"daemonops_daemon_silenced{{{labels}}} "
                f"{int(bool(d.get('silenced') or entry.get('silenced')))}\n"
            )
    summary = report["summary"]
    samples["daemonops_audit_hosts"] = [
        f'daemonops_audit_hosts{{status="{s}"}} {summary[s]}\n' for s in HOST_STATES
    ]
    if report.get("duration_seconds") is not None:
        samples["daemonops_audit_duration_seconds"] = [
            f"daemonops_audit_duration_seconds {_prom_float(report['duration_seconds'])}\n"
        ]
    samples["daemonops_audit_timestamp_seconds"] = [
        f"daemonops_audit_timestamp_seconds {_prom_float(report['generated_at_epoch'])}\n"
    ]
    out: list[str] = []
    for name, help_text in _PROM_FAMILIES:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
        out.extend(samples[name])
    return "".join(out)


def _prom_float(value: float) -> str:
    return repr(float(value))


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "json": to_json,
    "markdown": to_markdown,
    "html": to_html,
    "junit": to_junit,
    "prometheus": to_prometheus,
}


def render(report: Mapping[str, Any], fmt: str) -> str:
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise AuditReportError(
            f"formats: unknown format {fmt!r}; choose from {', '.join(FORMATS)}"
        ) from None
    return renderer(report)
