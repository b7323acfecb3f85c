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

DAEMON_STATES = ("online", "degraded", "offline", "unused")
HEALTHY_DAEMON_STATES = frozenset(("online", "unused"))
HOST_STATES = ("healthy", "unhealthy", "unreachable", "failed")
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
        entry["state"] = "unknown"
    problems = entry.get("problems")
    if not isinstance(problems, list):
        problems = [] if problems is None else [problems]
    problems = [str(p) for p in problems]
    if not problems and entry["state"] not in HEALTHY_DAEMON_STATES:
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
            "status": "failed",
            "msg": f"no health_info result for host {host} (got {type(result).__name__})",
            "daemons": {},
            "problems": [],
        }
    if result.get("unreachable"):
        return {
            "status": "unreachable",
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
        return {"status": "failed", "msg": msg, "daemons": {}, "problems": []}

    daemons: dict[str, dict[str, Any]] = {}
    counts = dict.fromkeys((*DAEMON_STATES, "unknown"), 0)
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
        if state not in HEALTHY_DAEMON_STATES:
            problems.extend(
                {"daemon": name, "state": state, "problem": p} for p in entry["problems"]
            )
    status_text = result.get("status")
    unhealthy = bool(problems) or status_text == "FAILURE" or bool(result.get("failed"))
    msg = str(result.get("msg") or "")
    if unhealthy and not problems:
        problems.append({"daemon": "", "state": "failed", "problem": msg or "health check failed"})
    return {
        "status": "unhealthy" if unhealthy else "healthy",
        "msg": msg,
        "roles": list(result.get("roles") or []),
        "profile": result.get("profile"),
        "hostname": result.get("host"),
        "summary": {"total": len(daemons), **counts, "clients": clients},
        "status_lines": list(result.get("status_lines") or []),
        "daemons": daemons,
        "problems": problems,
    }


def build_report(host_results: Mapping[str, Any], generated_at: Any) -> dict[str, Any]:
    """Aggregate ``{host: health_info result}`` into one report dict (JSON-serialisable).

    ``generated_at`` is epoch seconds or a datetime. Hosts are sorted by name; daemon columns
    keep the order in which daemons first appear (the profile's order).
    """
    if not isinstance(host_results, Mapping):
        raise AuditReportError(
            "results must be a mapping of inventory host name to its health_info result, "
            f"got {type(host_results).__name__}"
        )
    epoch = _epoch(generated_at)
    daemon_names = _Columns()
    hosts: dict[str, dict[str, Any]] = {}
    host_counts = dict.fromkeys(HOST_STATES, 0)
    daemon_counts = dict.fromkeys((*DAEMON_STATES, "unknown"), 0)
    clients = 0
    problems: list[dict[str, str]] = []
    for raw_host in sorted(host_results, key=str):
        host = str(raw_host)
        entry = _host_entry(host, host_results[raw_host], daemon_names)
        hosts[host] = entry
        host_counts[entry["status"]] += 1
        if entry["status"] in ("unreachable", "failed"):
            problems.append(
                {"host": host, "daemon": "", "state": entry["status"], "problem": entry["msg"]}
            )
            continue
        summary = entry["summary"]
        for state in daemon_counts:
            daemon_counts[state] += summary[state]
        clients += summary["clients"]
        problems.extend({"host": host, **p} for p in entry["problems"])
    unhealthy_hosts = [h for h, e in hosts.items() if e["status"] != "healthy"]
    timestamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return {
        "generated_at": timestamp.isoformat().replace("+00:00", "Z"),
        "generated_at_epoch": epoch,
        "summary": {
            "hosts": len(hosts),
            **host_counts,
            "daemons": {"total": sum(daemon_counts.values()), **daemon_counts},
            "clients": clients,
        },
        "healthy": not unhealthy_hosts,
        "unhealthy_hosts": unhealthy_hosts,
        "unreachable_hosts": [h for h, e in hosts.items() if e["status"] == "unreachable"],
        "daemon_names": daemon_names.names,
        "hosts": hosts,
        "problems": problems,
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
    if state == "online" and entry["clients"]:
        text = f"online ({_clients(entry['clients'])})"
    return text if state in HEALTHY_DAEMON_STATES else f"**{md_escape(text)}**"


def to_markdown(report: Mapping[str, Any]) -> str:
    """Summary line, a hosts x daemons table, then the list of problems."""
    names = report["daemon_names"]
    out = [
        "# Daemon health audit",
        "",
        f"Generated {report['generated_at']}. {summary_line(report)}.",
        "",
    ]
    if not report["hosts"]:
        out += ["No hosts in this audit.", ""]
    else:
        out.append("| Host | Status |" + "".join(f" {md_escape(n)} |" for n in names))
        out.append("|---|---|" + "---|" * len(names))
        dash = " · |" * len(names)
        for host, entry in report["hosts"].items():
            status = entry["status"]
            status_cell = status if status == "healthy" else f"**{status}**"
            row = f"| {md_escape(host)} | {status_cell} |"
            if status in ("unreachable", "failed"):
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
        out.append(f"- **{where}** ({md_escape(p['state'])}): {md_escape(p['problem'])}")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _port_text(port: Any) -> str:
    if not _is_mapping(port):
        return str(port)
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
    text = f"port {port.get('port')}: {', '.join(flags)}; {_port_clients(port)} clients"
    peers = port.get("peers")
    if peers:
        text += " (" + ", ".join(str(p) for p in peers) + ")"
    return text


def _cell_details(entry: Mapping[str, Any]) -> list[str]:
    lines = ["pids: " + (", ".join(str(p) for p in entry["pids"]) or "none")]
    lines.extend(_port_text(p) for p in entry["ports"])
    ancestry = entry.get("ancestry")
    if _is_mapping(ancestry):
        chain = " <- ".join(str(p) for p in ancestry.get("chain") or [])
        ok = "ok" if ancestry.get("ok") else "WRONG"
        lines.append(f"ancestor {ancestry.get('expected')}: {ok} ({chain})")
    record = entry.get("pid_record")
    if _is_mapping(record) and record.get("status") not in (None, "not_applicable"):
        lines.append(f"pid record: {record.get('status')}")
    if isinstance(entry.get("uptime"), (int, float)):
        lines.append(f"uptime: {entry['uptime']:.0f} s")
    lines.extend(f"problem: {p}" for p in entry["problems"])
    return lines


def _html_cell(name: str, entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return '<td class="na" title="not expected on this host">&middot;</td>'
    state = entry["state"]
    css = state
    # escaping is per character, so each line is escaped once for both the title and the list
    details = [_h(line) for line in _cell_details(entry)]
    label = _h(state) + (f" ({_clients(entry['clients'])})" if entry["clients"] else "")
    items = "".join(f"<li>{line}</li>" for line in details)
    return (
        f'<td class="{css}" title="{_h(name)}: {"; ".join(details)}">'
        f"<details><summary>{label}</summary><ul>{items}</ul></details></td>"
    )


_HTML_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#eee;position:sticky;top:0}
td details summary{cursor:pointer}
td ul{margin:.3em 0;padding-left:1.2em;font-size:.85em}
.online{background:#c8efc8}
.degraded{background:#ffd27a}
.offline{background:#f49a9a}
.unused{background:#ddd;color:#555}
.unknown{background:#e3c6f0}
.unreachable{background:#333;color:#fff}
.failed{background:#7a2b2b;color:#fff}
.na{color:#999;text-align:center}
th.host{white-space:nowrap}
tr.host-healthy th.host{border-left:6px solid #3a3}
tr.host-unhealthy th.host{border-left:6px solid #d33}
tr.host-unreachable th.host,tr.host-failed th.host{border-left:6px solid #333}
.status-unhealthy{color:#b00;font-weight:bold}
#controls{margin:1em 0}
#problems li{margin:.2em 0}
.legend span{padding:0 .5em;margin-right:.3em;border:1px solid #bbb}
"""

_HTML_SCRIPT = """
(function(){
  var box=document.getElementById('only-unhealthy');
  var rows=document.querySelectorAll('#audit tbody tr');
  var shown=document.getElementById('shown-count');
  function apply(){
    var n=0;
    for(var i=0;i<rows.length;i++){
      var hide=box.checked&&rows[i].getAttribute('data-healthy')==='1';
      rows[i].hidden=hide;
      if(!hide){n++;}
    }
    shown.textContent=String(n);
    document.getElementById('audit').setAttribute('data-filter',box.checked?'unhealthy':'all');
  }
  box.addEventListener('change',apply);
  if(location.hash==='#only-unhealthy'){box.checked=true;}
  apply();
  document.body.setAttribute('data-audit-ready','1');
})();
"""


def to_html(report: Mapping[str, Any]) -> str:
    """A self-contained page (inline CSS and JS, no external resource)."""
    names = report["daemon_names"]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        "<title>Daemon health audit ",
        _h(report["generated_at"]),
        "</title><style>",
        _HTML_STYLE,
        "</style></head><body>",
        "<h1>Daemon health audit</h1><p>Generated ",
        _h(report["generated_at"]),
        '.</p><p id="summary">',
        _h(summary_line(report)),
        '.</p><p class="legend">',
        "".join(f'<span class="{s}">{s}</span>' for s in (*DAEMON_STATES, "unreachable", "failed")),
        '</p><div id="controls"><label><input type="checkbox" id="only-unhealthy"> '
        'Show only unhealthy rows</label> (<span id="shown-count">',
        str(len(report["hosts"])),
        "</span> of ",
        str(len(report["hosts"])),
        " hosts shown)</div>",
        '<table id="audit"><thead><tr><th>Host</th><th>Status</th>',
        "".join(f'<th class="daemon">{_h(n)}</th>' for n in names),
        "</tr></thead><tbody>",
    ]
    width = len(names)
    for host, entry in report["hosts"].items():
        status = entry["status"]
        healthy = "1" if status == "healthy" else "0"
        hhost = _h(host)
        row = (
            f'<tr class="host-{status}" data-host="{hhost}" data-healthy="{healthy}">'
            f'<th class="host">{hhost}</th>'
        )
        if status in ("unreachable", "failed"):
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
    parts.append('</tbody></table><h2>Problems</h2><ul id="problems">')
    if not report["problems"]:
        parts.append("<li>None: every host is healthy.</li>")
    for p in report["problems"]:
        where = _h(p["host"]) + (f" / {_h(p['daemon'])}" if p["daemon"] else "")
        parts.append(
            f'<li><strong>{where}</strong> (<span class="{_h(p["state"])}">'
            f"{_h(p['state'])}</span>): {_h(p['problem'])}</li>"
        )
    parts.extend(("</ul><script>", _HTML_SCRIPT, "</script></body></html>\n"))
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
    """One testsuite; a testcase per host and daemon (classname = host, name = daemon).

    offline/degraded daemons get a <failure>, unused ones are <skipped>, an unreachable or
    failed host is a single testcase with an <error>.
    """
    cases: list[str] = []
    failures = errors = skipped = 0
    for host, entry in report["hosts"].items():
        chost = xml_attr(host)
        status = entry["status"]
        if status in ("unreachable", "failed"):
            errors += 1
            cases.append(
                f'  <testcase classname="{chost}" name="{status}" time="0">\n'
                f'    <error type="{status}" message="{xml_attr(entry["msg"])}">'
                f"{xml_text(entry['msg'])}</error>\n  </testcase>\n"
            )
            continue
        if not entry["daemons"] and status != "healthy":
            errors += 1
            msg = "; ".join(p["problem"] for p in entry["problems"])
            cases.append(
                f'  <testcase classname="{chost}" name="health_info" time="0">\n'
                f'    <error type="failed" message="{xml_attr(msg)}">{xml_text(msg)}</error>\n'
                "  </testcase>\n"
            )
            continue
        for name, d in entry["daemons"].items():
            state = d["state"]
            head = f'  <testcase classname="{chost}" name="{xml_attr(name)}" time="0">'
            if state == "online":
                cases.append(head[:-1] + "/>\n")
            elif state == "unused":
                skipped += 1
                cases.append(f'{head}\n    <skipped message="unused"/>\n  </testcase>\n')
            else:
                failures += 1
                msg = "; ".join(d["problems"])
                cases.append(
                    f'{head}\n    <failure type="{xml_attr(state)}" message="{xml_attr(msg)}">'
                    f"{xml_text(chr(10).join(d['problems']))}</failure>\n  </testcase>\n"
                )
    stamp = report["generated_at"].rstrip("Z")
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="daemonops health audit" tests="{len(cases)}" '
        f'failures="{failures}" errors="{errors}" skipped="{skipped}" time="0">\n'
        f'<testsuite name="daemonops.health_audit" tests="{len(cases)}" failures="{failures}" '
        f'errors="{errors}" skipped="{skipped}" time="0" timestamp="{xml_attr(stamp)}">\n'
    )
    return header + "".join(cases) + "</testsuite>\n</testsuites>\n"


# --------------------------------------------------------------------------- Prometheus

_PROM_LABEL = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n"}


def prom_label(text: Any) -> str:
    """Escape a label value for the Prometheus text exposition format."""
    return str(text).translate(_PROM_LABEL)


_PROM_FAMILIES: tuple[tuple[str, str], ...] = (
    (
        "daemonops_daemon_up",
        "1 if the daemon is online, else 0; the state label says online, degraded, offline "
        "or unused.",
    ),
    ("daemonops_daemon_clients", "Established client connections on the daemon's ports."),
    ("daemonops_host_healthy", "1 if every daemon expected on the host is online or unused."),
    ("daemonops_host_reachable", "1 if health_info ran on the host, 0 if unreachable or failed."),
    ("daemonops_audit_hosts", "Hosts in the last audit by status."),
    ("daemonops_audit_timestamp_seconds", "Unix time the audit report was generated."),
)


def to_prometheus(report: Mapping[str, Any]) -> str:
    """Text exposition format for node_exporter's textfile collector (no sample timestamps)."""
    up: list[str] = []
    clients: list[str] = []
    healthy: list[str] = []
    reachable: list[str] = []
    for host, entry in report["hosts"].items():
        lhost = prom_label(host)
        status = entry["status"]
        healthy.append(
            f'daemonops_host_healthy{{host="{lhost}"}} {1 if status == "healthy" else 0}\n'
        )
        is_reachable = status in ("healthy", "unhealthy")
        reachable.append(f'daemonops_host_reachable{{host="{lhost}"}} {int(is_reachable)}\n')
        for name, d in entry["daemons"].items():
            labels = f'host="{lhost}",daemon="{prom_label(name)}"'
            state = d["state"]
            up.append(
                f'daemonops_daemon_up{{{labels},state="{prom_label(state)}"}} '
                f"{1 if state == 'online' else 0}\n"
            )
            clients.append(f"daemonops_daemon_clients{{{labels}}} {d['clients']}\n")
    summary = report["summary"]
    samples: dict[str, list[str]] = {
        "daemonops_daemon_up": up,
        "daemonops_daemon_clients": clients,
        "daemonops_host_healthy": healthy,
        "daemonops_host_reachable": reachable,
        "daemonops_audit_hosts": [
            f'daemonops_audit_hosts{{status="{s}"}} {summary[s]}\n' for s in HOST_STATES
        ],
        "daemonops_audit_timestamp_seconds": [
            f"daemonops_audit_timestamp_seconds {_prom_float(report['generated_at_epoch'])}\n"
        ],
    }
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
