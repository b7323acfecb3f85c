# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmarks of daemonops.suite: ``python tests/bench/run.py [--only B1,B3] [--quick]
[--repeat N] [--json FILE]`` (``make bench``).

For each benchmark it prints our figure, the baseline's figure measured in the same run, their
ratio (always ours / baseline), the goal and whether it is met. Figures are medians of several
runs. All load goes to 127.0.0.1 and is bounded in count and time; every process started here
is killed at the end. docs/performance.md describes the method and records results.

B1 scan alone (process + socket tables, no Ansible) vs a minimal /proc reader (the floor); the
   health check's added cost per process (+2,000 idle processes)
B2 one sesam host end to end, wall time of whole runs: a health_info play vs the compact shell
   check (one shell task: ps and ss once, grep per daemon), vs `ansible -m ping`, vs stock
   modules with default flags; old baselines (the vendor procedure as 18 shell tasks that check
   nothing, listen_ports_facts with include_non_listening) as labelled extra rows (not --quick)
B3 B2 with 10 / 1,000 / 10,000 client connections: health_info vs one shell task counting
   clients with ss, vs listen_ports_facts (default flags); the health check's added cost per
   connection at 5,000
B4 fleet of 50 / 200 / 1,000 local hosts, forks 50: the audit playbook vs an ansible.builtin.ping play
B5 footprint of one health_info run on the target (CPU ms, peak RSS) vs the ping payload
B6 re-run of site.yml on a deployed host vs --check of the same

After the table, every goal of issue #17 is printed with its measured value and met / missed
(``not measured`` when its benchmark did not run). Timing never fails the run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
from loadgen import raise_nofile

# ------------------------------------------------------------------------------ results


@dataclass
class Row:
    bench: str
    case: str
    ours: Optional[float]
    baseline: Optional[float]
    unit: str
    goal: str = ""  # text shown
    # how the goal is judged: ("ratio<=", k) ours/baseline <= k; ("ours<=", v) absolute;
    # ("minus<=", d) ours - baseline <= d (same unit)
    rule: Optional[tuple[str, float]] = None
    note: str = ""
    baseline_is_lower_bound: bool = False  # the baseline timed out: its figure is a minimum
    goal_id: str = ""  # the entry of GOALS this row measures
    ours_min: Optional[float] = None  # the fastest run (ours is the median)
    baseline_min: Optional[float] = None

    @property
    def ratio(self) -> Optional[float]:
        if self.ours is None or not self.baseline:
            return None
        return self.ours / self.baseline

    @property
    def met(self) -> Optional[bool]:
        if self.rule is None or self.ours is None:
            return None
        kind, limit = self.rule
        if kind == "ours<=":
            return self.ours <= limit
        if kind == "minus<=":
            return None if self.baseline is None else self.ours - self.baseline <= limit
        if self.ratio is None:
            return None
        return self.ratio <= limit

    def cells(self) -> list[str]:
        def fmt(value: Optional[float], lower: bool = False) -> str:
            if value is None:
                return "-"
            text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
            return (">" if lower else "") + text

        ratio = self.ratio
        ratio_text = "-" if ratio is None else f"{ratio:.3f}"
        if ratio is not None and ratio < 1:
            ratio_text += f" ({1 / ratio:.1f}x faster)"
        if ratio is not None and self.baseline_is_lower_bound:
            ratio_text = "<" + ratio_text
        met = {True: "yes", False: "NO", None: "-"}[self.met]

        def with_min(value: Optional[float], least: Optional[float], lower: bool = False) -> str:
            text = f"{fmt(value, lower)} {self.unit}"
            return text if least is None else f"{text} (min {fmt(least)})"

        return [
            self.bench,
            self.case,
            with_min(self.ours, self.ours_min),
            with_min(self.baseline, self.baseline_min, self.baseline_is_lower_bound)
            if self.baseline is not None
            else "-",
            ratio_text,
            self.goal or "-",
            met,
        ]


HEADER = [
    "benchmark",
    "case",
    "ours (median)",
    "baseline (median)",
    "ratio ours/base",
    "goal",
    "met?",
]


def print_table(rows: list[Row]) -> None:
    table = [HEADER, *[r.cells() for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    notes = [f"  {r.bench} {r.case}: {r.note}" for r in rows if r.note]
    if notes:
        print("notes:")
        print("\n".join(notes))


#: The goals of issue #17: (id, what, the benchmark that measures it). Each is printed after
#: the table with its measured value, met or missed.
GOALS: list[tuple[str, str, str]] = [
    ("G1", "one-host health_info play <= 1.0x the compact shell check play (wall)", "B2"),
    ("G2", "one-host `ansible -m health_info` <= 1.1x `ansible -m ping` (wall)", "B2"),
    ("G3", "fleet audit <= 1.15x an ansible.builtin.ping play, 50 hosts (wall)", "B4"),
    ("G4", "fleet audit <= 1.15x an ansible.builtin.ping play, 200 hosts (wall)", "B4"),
    ("G5", "target CPU of health_info <= the ping payload's + 20 ms", "B5"),
    ("G6", "health check: <= 8 us per ESTABLISHED connection, at 5,000", "B3"),
    ("G7", "health check: <= 12 us per process, at +2,000 processes", "B1"),
]
GOAL_HEADER = ["goal", "what", "measured", "met?"]


def goal_measure(row: Row) -> str:
    """The figure a goal is judged on, as text."""
    assert row.rule is not None and row.ours is not None
    kind = row.rule[0]
    if kind == "ratio<=" and row.ratio is not None:
        return (
            f"{'<' if row.baseline_is_lower_bound else ''}{row.ratio:.3f}x "
            f"({row.ours:.4g} vs {row.baseline:.4g} {row.unit})"
        )
    if kind == "minus<=" and row.baseline is not None:
        return f"{row.ours - row.baseline:+.1f} {row.unit} ({row.ours:.4g} vs {row.baseline:.4g})"
    return f"{row.ours:.3g} {row.unit}"


def print_goals(rows: list[Row]) -> None:
    """One line per entry of GOALS: the measured figure and met / missed, or not measured."""
    table = [GOAL_HEADER]
    for goal_id, what, bench in GOALS:
        row = next((r for r in rows if r.goal_id == goal_id and r.ours is not None), None)
        if row is None:
            table.append([goal_id, what, f"not measured (run {bench})", "-"])
            continue
        met = {True: "met", False: "MISSED", None: "-"}[row.met]
        table.append([goal_id, what, goal_measure(row), met])
    widths = [max(len(line[i]) for line in table) for i in range(len(GOAL_HEADER))]
    print("goals (issue #17):")
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


@dataclass
class Options:
    quick: bool
    repeat: int  # runs of cheap measurements
    repeat_slow: int  # runs of expensive ones (playbooks)
    workdir: Path
    repeat_pairs: int = 3  # interleaved runs of the one-host plays of B2/B3 (a few seconds each)
    fleet: tuple[int, ...] = (50,)  # B4 fleet sizes


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return seconds * 1000.0


# --------------------------------------------------------------------------- B1 scan alone

OURS_SCAN = """
import time
t0 = time.perf_counter()
from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import ProcessTable
from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import SocketTable
ProcessTable.scan(); SocketTable.scan()
print(time.perf_counter() - t0)
"""

FLOOR_SCAN = """
import time
t0 = time.perf_counter()
import sys; sys.path.insert(0, {bench!r})
import floor
floor.scan()
print(time.perf_counter() - t0)
"""


def ours_scan() -> None:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.proctable import (
        ProcessTable,
    )
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
        SocketTable,
    )

    ProcessTable.scan()
    SocketTable.scan()


def time_call(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def cold_run(code: str) -> float:
    out = subprocess.run(
        [bl.PYTHON, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def bench_b1(opts: Options, procs_target: int = 400, conns: int = 1000) -> list[Row]:
    import floor

    extra = max(0, procs_target - bl.count_processes())
    with bl.LoadGen(procs=extra, conns=conns):
        nprocs = bl.count_processes()
        case = f"{nprocs} procs, {conns} conns"
        log(f"B1: {case}")
        ours_scan()
        floor.scan()  # warm-up: imports, caches
        warm_ours, warm_floor, cold_ours, cold_floor = [], [], [], []
        for _unused in range(opts.repeat):
            warm_ours.append(time_call(ours_scan))
            warm_floor.append(time_call(floor.scan))
            cold_ours.append(cold_run(OURS_SCAN))
            cold_floor.append(cold_run(FLOOR_SCAN.format(bench=str(bl.BENCH))))
    goal = "<= 2x floor"
    return [
        Row(
            "B1",
            f"warm, {case}",
            ms(bl.median(warm_ours)),
            ms(bl.median(warm_floor)),
            "ms",
            goal,
            ("ratio<=", 2.0),
            ours_min=ms(min(warm_ours)),
            baseline_min=ms(min(warm_floor)),
        ),
        Row(
            "B1",
            f"cold, {case}",
            ms(bl.median(cold_ours)),
            ms(bl.median(cold_floor)),
            "ms",
            goal,
            ("ratio<=", 2.0),
            ours_min=ms(min(cold_ours)),
            baseline_min=ms(min(cold_floor)),
            note="cold = a fresh interpreter: imports + first scan (interpreter start excluded)",
        ),
    ]


def health_check_slope(
    host: bl.SesamHost, load: Callable[[], bl.LoadGen], count: Callable[[], int], repeat: int
) -> tuple[float, int, float, float]:
    """Added seconds per unit of load of the in-process health check on ``host``: medians of
    ``repeat`` runs without the load (before and after it, pooled) and with it; ``count()``
    measures the load's size (processes or connections) without and with it.

    Returns (seconds per unit from the medians, units added, median without, median with,
    seconds per unit from the fastest runs)."""
    health_check(host)  # warm-up: imports, caches
    base_count = count()
    without = [time_call(lambda: health_check(host)) for _unused in range(repeat)]
    with load():
        added = count() - base_count
        health_check(host)
        loaded = [time_call(lambda: health_check(host)) for _unused in range(repeat)]
    without += [time_call(lambda: health_check(host)) for _unused in range(repeat)]
    if added <= 0:
        raise RuntimeError(f"the load added {added} units; nothing to measure a slope on")
    low, high = bl.median(without), bl.median(loaded)
    return (high - low) / added, added, low, high, (min(loaded) - min(without)) / added


def own_processes(extra: int) -> int:
    """The processes loadgen added: ``extra`` children and itself when they exist (counting
    /proc would also count other work starting and ending on a shared machine)."""
    import psutil

    helpers = [
        p
        for p in psutil.Process().children()
        if "loadgen.py" in " ".join(p.cmdline()) and p.is_running()
    ]
    return sum(1 + len(helper.children()) for helper in helpers)


def bench_b1_processes(opts: Options, extra: int = 2000) -> list[Row]:
    """The health check's added cost per process: the sesam host alone, then with ``extra``
    idle processes (loadgen children)."""
    work = opts.workdir / "b1p"
    with bl.SesamHost(work / "host", marker="b1p") as host:
        log(f"B1: health check with +{extra} processes")
        per, added, low, high, per_min = health_check_slope(
            host, lambda: bl.LoadGen(procs=extra), lambda: own_processes(extra), opts.repeat
        )
    return [
        Row(
            "B1",
            f"health check, added cost per process (+{added} idle processes)",
            per * 1e6,
            None,
            "us",
            "<= 12 us",
            ("ours<=", 12.0),
            goal_id="G7",
            ours_min=per_min * 1e6,
            note=f"in-process HealthChecker.run() on the sesam host, medians of {opts.repeat} "
            f"runs: {ms(low):.1f} ms without the processes, {ms(high):.1f} ms with them",
        )
    ]


# ------------------------------------------------------------------- B2/B3 one sesam host

VENDOR_NAMES = {  # what an operator greps for in `ps -ef` (the sesam process names)
    "qm": "sm_qm_main",
    "db": "postmaster",
    "rmi": "GUIServer",
    "passd": "sm_passd",
    "sms": "sm_sms_main",
    "sms_watch": "sm_sms_watch",
    "data_server": "sm_data_server",
    "stpd": "sm_stpd_main",
    "sshd": "sm_sshd",
    "sepuler": "sm_sepuler",
}


def vendor_tasks(host: bl.SesamHost) -> list[dict[str, Any]]:
    """The vendor procedure as shell tasks, per daemon: ``ps -ef | grep NAME``; for a daemon
    with ports ``lsof -p PID | grep LISTEN`` and, per port, ``netstat -a | grep PORT``."""
    tasks: list[dict[str, Any]] = []
    quiet = {"changed_when": False, "failed_when": False}
    for daemon in host.expected_daemons():
        name = VENDOR_NAMES[daemon]
        reg = f"ps_{daemon}"
        tasks.append(
            {
                "name": f"ps -ef | grep {name}",
                "ansible.builtin.shell": f"ps -ef | grep {name} | grep -v grep",
                "register": reg,
                **quiet,
            }
        )
        for index, port in enumerate(host.ports.get(daemon, [])):
            if index == 0:
                tasks.append(
                    {
                        "name": f"lsof -p PID | grep LISTEN ({daemon})",
                        "ansible.builtin.shell": f"lsof -p {{{{ {reg}.stdout_lines[0].split()[1] }}}} | grep LISTEN",
                        "when": f"{reg}.stdout_lines | length > 0",
                        **quiet,
                    }
                )
            tasks.append(
                {
                    "name": f"netstat -a | grep {port}",
                    "ansible.builtin.shell": f"netstat -a | grep {port}",
                    **quiet,
                }
            )
    return tasks


def stock_tasks(host: bl.SesamHost, include_non_listening: bool = False) -> list[dict[str, Any]]:
    """Stock modules: community.general.pids per daemon (its regex on the command line) and one
    community.general.listen_ports_facts (default flags unless ``include_non_listening``, the
    old baseline's setting that runs ps twice per socket)."""
    data = host.profile_data()
    tasks: list[dict[str, Any]] = []
    for daemon in data["daemons"]:
        if daemon["name"] in host.expected_daemons():
            tasks.append(
                {
                    "name": f"pids {daemon['name']}",
                    "community.general.pids": {"pattern": daemon["match"]["cmdline"]},
                }
            )
    tasks.append(lpf_task(include_non_listening))
    return tasks


def lpf_task(include_non_listening: bool = False) -> dict[str, Any]:
    args = {"include_non_listening": True} if include_non_listening else {}
    return {"name": "listen_ports_facts", "community.general.listen_ports_facts": args}


COMPACT_FUNCTIONS = r"""set -u
procs=$(ps -eo pid=,ppid=,args=)
listen=$(ss -Htlnp)
fail=0
check() {  # daemon, min count, max count (-1: none), ERE on the command line, its ports...
  name=$1 min=$2 max=$3 re=$4
  shift 4
  pids=$(printf '%s\n' "$procs" | grep -E -- "^ *[0-9]+ +[0-9]+ $re" | grep -F -- "$INSTANCE" |
    awk '{print $1}')
  n=$(printf '%s' "$pids" | grep -c .)
  if [ "$n" -lt "$min" ] || { [ "$max" -ge 0 ] && [ "$n" -gt "$max" ]; }; then
    echo "$name: $n processes, want $min..$max"
    fail=1
  fi
  for port in "$@"; do
    owners=$(printf '%s\n' "$listen" | grep -E -- ":$port[[:space:]]" | grep -oE 'pid=[0-9]+' |
      cut -d= -f2)
    held=0
    for pid in $owners; do
      if printf '%s\n' "$pids" | grep -qx -- "$pid"; then held=1; fi
    done
    if [ "$held" != 1 ]; then
      echo "$name: port $port is not listened on by it"
      fail=1
    fi
  done
}
"""


def compact_script(
    host: bl.SesamHost,
    ports: Optional[dict[str, list[int]]] = None,
    counts: Optional[dict[str, tuple[int, int]]] = None,
) -> str:
    """The compact shell check a skeptic writes: ``ps`` and ``ss`` once, then per daemon of the
    server role a grep of the command line (the profile's pattern and the instance), its count
    against the profile's min..max, and each of its ports held by one of its processes. Exits 1
    naming each daemon that is wrong. ``ports`` / ``counts`` override the expectations (the
    self-check uses them to prove the script fails)."""
    import shlex

    lines = [COMPACT_FUNCTIONS, f"INSTANCE={shlex.quote(host.module_args()['instance'])}"]
    expected = set(host.expected_daemons())
    for daemon in host.profile_data()["daemons"]:
        name = daemon["name"]
        if name not in expected:
            continue
        count = daemon.get("count") or {}
        low, high = (counts or {}).get(name, (count.get("min", 1), count.get("max", -1)))
        pattern = daemon["match"]["cmdline"].removeprefix("^")
        numbers = (ports or {}).get(name, [p["port"] for p in daemon.get("ports", [])])
        words = [name, str(low), str(high), shlex.quote(pattern), *map(str, numbers)]
        lines.append("check " + " ".join(words))
    lines.append("exit $fail")
    return "\n".join(lines) + "\n"


def compact_task(host: bl.SesamHost, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "compact shell check (ps and ss once, grep per daemon)",
        "ansible.builtin.shell": compact_script(host, **overrides),
        "changed_when": False,
    }


def ss_count_script(host: bl.SesamHost, min_clients: dict[int, int]) -> str:
    """Client counting as a skeptic writes it: per port of the server role's daemons, the
    ESTABLISHED connections whose local end is that port (``ss`` with a state and port filter);
    exits 1 when a port has fewer than ``min_clients[port]``."""
    lines = ["fail=0"]
    for port in [p for numbers in host.ports.values() for p in numbers]:
        want = min_clients.get(port, 0)
        lines.append(
            f"n=$(ss -Htn state established '( sport = :{port} )' | wc -l); "
            f'echo "{port} $n"; '
            f'if [ "$n" -lt {want} ]; then echo "port {port}: $n clients, want {want}"; '
            "fail=1; fi"
        )
    lines.append("exit $fail")
    return "\n".join(lines) + "\n"


def ss_count_task(host: bl.SesamHost, min_clients: dict[int, int]) -> dict[str, Any]:
    return {
        "name": "client count with ss, per port",
        "ansible.builtin.shell": ss_count_script(host, min_clients),
        "changed_when": False,
    }


def ours_task(host: bl.SesamHost) -> dict[str, Any]:
    return {"name": "health_info", "daemonops.suite.health_info": host.module_args()}


def check_healthy(host: bl.SesamHost, workdir: Path, clients: int) -> None:
    """Before timing: health_info must see the impersonated host as healthy, with the clients."""
    result = bl.run_module_json("daemonops.suite.health_info", host.module_args(), workdir)
    if result.get("status") != "SUCCESS":
        raise RuntimeError(f"health_info on the bench host: {result.get('msg')}")
    seen = result["summary"]["clients"]
    if seen < clients:
        raise RuntimeError(f"health_info saw {seen} clients, the bench opened {clients}")


class HostPlays:
    """The playbooks of B2/B3 for one sesam host, written once, and two ad-hoc commands
    (``adhoc_ours``: ``ansible -m daemonops.suite.health_info``, ``adhoc_ping``: ``ansible -m
    ansible.builtin.ping``)."""

    def __init__(self, host: bl.SesamHost, workdir: Path) -> None:
        self.host = host
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = bl.write_inventory(workdir / "inventory.yml", ["localhost"])
        self.plays = {
            "ours": bl.write_play(workdir / "ours.yml", [ours_task(host)]),
            "compact": bl.write_play(workdir / "compact.yml", [compact_task(host)]),
            "ping": bl.write_play(
                workdir / "ping.yml", [{"name": "ping", "ansible.builtin.ping": {}}]
            ),
            "vendor": bl.write_play(workdir / "vendor.yml", vendor_tasks(host)),
            "stock": bl.write_play(workdir / "stock.yml", stock_tasks(host)),
            "stock_old": bl.write_play(workdir / "stock_old.yml", stock_tasks(host, True)),
            "lpf": bl.write_play(workdir / "lpf.yml", [lpf_task()]),
            "lpf_old": bl.write_play(workdir / "lpf_old.yml", [lpf_task(True)]),
            "empty": bl.write_play(workdir / "empty.yml", []),
        }
        self.task_counts = {name: len(self._tasks(path)) for name, path in self.plays.items()}

    @staticmethod
    def _tasks(path: Path) -> list[Any]:
        import yaml

        return yaml.safe_load(path.read_text())[0]["tasks"]

    def add(self, name: str, tasks: list[dict[str, Any]]) -> None:
        self.plays[name] = bl.write_play(self.workdir / f"{name}.yml", tasks)

    def run(self, name: str, timeout: float = 300, check_rc: bool = True) -> bl.PlayRun:
        if name in ("adhoc_ours", "adhoc_ping"):
            module, args = (
                ("daemonops.suite.health_info", self.host.module_args())
                if name == "adhoc_ours"
                else ("ansible.builtin.ping", {})
            )
            wall = bl.run_adhoc(module, args, self.inventory, self.workdir, timeout=timeout)
            return bl.PlayRun(wall=wall, tasks=float("nan"), rc=0, timer={}, output="")
        return bl.run_playbook(
            self.plays[name], self.inventory, self.workdir, timeout=timeout, check_rc=check_rc
        )


def check_compact(host: bl.SesamHost, plays: HostPlays) -> None:
    """Before timing: the compact shell check passes on the healthy host and fails when a
    port or a count is wrong (so it really checks; test_bench_smoke also kills a daemon)."""
    unused = bl.free_ports(1)[0]
    cases = {
        "compact": True,
        "compact_wrong_port": ({"ports": {"sshd": [unused]}}, "sshd: port"),
        "compact_wrong_count": ({"counts": {"qm": (2, 2)}}, "qm: 1 processes"),
    }
    for name, case in cases.items():
        if case is not True:
            overrides, _unused = case
            plays.add(name, [compact_task(host, **overrides)])
        run = plays.run(name, check_rc=False)
        if case is True and run.rc != 0:
            raise RuntimeError(f"the compact shell check fails on the healthy host:\n{run.output}")
        if case is not True and (run.rc == 0 or case[1] not in run.output):
            raise RuntimeError(f"{name}: the compact shell check did not fail:\n{run.output}")


def measure(plays: HostPlays, names: list[str], runs: int, timeouts: dict[str, float]) -> dict:
    """Median wall and task seconds per play, runs interleaved. A play that times out is run no
    more and reported as (its timeout, lower bound)."""
    walls: dict[str, list[float]] = {n: [] for n in names}
    tasks: dict[str, list[float]] = {n: [] for n in names}
    timed_out: set[str] = set()
    for _unused in range(runs):
        for name in names:
            if name in timed_out:
                continue
            try:
                run = plays.run(name, timeout=timeouts.get(name, 300))
            except TimeoutError:
                timed_out.add(name)
                walls[name].append(timeouts.get(name, 300))
                tasks[name].append(timeouts.get(name, 300))
                continue
            walls[name].append(run.wall)
            tasks[name].append(run.tasks)
    return {
        n: {
            "wall": bl.median(walls[n]),
            "wall_min": min(walls[n]),
            "tasks_min": min(tasks[n]),
            "tasks": bl.median(tasks[n]),
            "runs": len(walls[n]),
            "timeout": n in timed_out,
        }
        for n in names
    }


def bench_b2(opts: Options) -> list[Row]:
    work = opts.workdir / "b2"
    with bl.SesamHost(work / "host", marker="b2") as host:
        check_healthy(host, work, 0)
        plays = HostPlays(host, work / "plays")
        check_compact(host, plays)
        log(f"B2: tasks per play {plays.task_counts}")
        names = ["ours", "compact", "adhoc_ours", "adhoc_ping", "ping", "stock", "empty"]
        res = measure(plays, names, opts.repeat_pairs, {})
        old = {} if opts.quick else measure(plays, ["vendor", "stock_old"], opts.repeat_slow, {})
    counts = plays.task_counts
    pairs = f"{opts.repeat_pairs} interleaved runs each"
    rows = [
        Row(
            "B2",
            "health_info play vs compact shell check play (1 task each), wall",
            ms(res["ours"]["wall"]),
            ms(res["compact"]["wall"]),
            "ms",
            "<= 1.0x",
            ("ratio<=", 1.0),
            goal_id="G1",
            note=f"{pairs}; the shell check greps ps/ss per daemon (counts, ports held by the "
            "daemon); health_info also checks ancestry and probes the ports",
            ours_min=ms(res["ours"]["wall_min"]),
            baseline_min=ms(res["compact"]["wall_min"]),
        ),
        Row(
            "B2",
            "health_info play vs compact shell check play, task time",
            ms(res["ours"]["tasks"]),
            ms(res["compact"]["tasks"]),
            "ms",
            "(info)",
            ours_min=ms(res["ours"]["tasks_min"]),
            baseline_min=ms(res["compact"]["tasks_min"]),
        ),
        Row(
            "B2",
            "ansible -m health_info vs ansible -m ping, one host, wall",
            ms(res["adhoc_ours"]["wall"]),
            ms(res["adhoc_ping"]["wall"]),
            "ms",
            "<= 1.1x",
            ("ratio<=", 1.1),
            goal_id="G2",
            note=f"{pairs}; whole `ansible localhost -m ...` commands",
            ours_min=ms(res["adhoc_ours"]["wall_min"]),
            baseline_min=ms(res["adhoc_ping"]["wall_min"]),
        ),
        Row(
            "B2",
            "health_info play vs ansible.builtin.ping play, wall",
            ms(res["ours"]["wall"]),
            ms(res["ping"]["wall"]),
            "ms",
            "(info)",
            ours_min=ms(res["ours"]["wall_min"]),
            baseline_min=ms(res["ping"]["wall_min"]),
        ),
        Row(
            "B2",
            f"vs stock modules, default flags ({counts['stock']} tasks: pids x "
            f"{counts['stock'] - 1} + listen_ports_facts), wall",
            ms(res["ours"]["wall"]),
            ms(res["stock"]["wall"]),
            "ms",
            "(info)",
            ours_min=ms(res["ours"]["wall_min"]),
            baseline_min=ms(res["stock"]["wall_min"]),
        ),
    ]
    if old:
        rows += [
            Row(
                "B2",
                f"old baseline, checks nothing: vendor procedure ({counts['vendor']} shell "
                "tasks, failed_when: false), task time",
                ms(res["ours"]["tasks"]),
                ms(old["vendor"]["tasks"]),
                "ms",
                "(old, info)",
                note=f"runs: {old['vendor']['runs']}",
            ),
            Row(
                "B2",
                "old baseline: stock modules with listen_ports_facts include_non_listening: "
                "true, task time",
                ms(res["ours"]["tasks"]),
                ms(old["stock_old"]["tasks"]),
                "ms",
                "(old, info)",
            ),
        ]
    rows.append(
        Row(
            "B2",
            "empty playbook (fixed cost in every wall figure)",
            ms(res["empty"]["wall"]),
            None,
            "ms",
            note="ansible-playbook start-up, inventory and play set-up; the same for all plays",
        )
    )
    return rows


def check_ss_count(plays: HostPlays, host: bl.SesamHost, size: int) -> None:
    """Before timing: the ss count passes with the clients the bench opened and fails when it
    is asked for one more (so it really counts)."""
    rmi = host.ports["rmi"][0]
    plays.add("ss", [ss_count_task(host, {rmi: size})])
    plays.add("ss_one_more", [ss_count_task(host, {rmi: size + 1})])
    if plays.run("ss", check_rc=False).rc != 0:
        raise RuntimeError(f"the ss count saw fewer than the {size} clients the bench opened")
    run = plays.run("ss_one_more", check_rc=False)
    if run.rc == 0 or f"port {rmi}: {size} clients" not in run.output:
        raise RuntimeError(f"the ss count did not fail when asked for {size + 1} clients")


def bench_b3(opts: Options) -> list[Row]:
    sizes = [10, 1000] if opts.quick else [10, 1000, 10000]
    work = opts.workdir / "b3"
    rows: list[Row] = []
    ours_by_size: dict[int, float] = {}
    scan_ours: dict[int, float] = {}
    scan_floor: dict[int, float] = {}
    import floor

    with bl.SesamHost(work / "host", marker="b3") as host:
        plays = HostPlays(host, work / "plays")
        for size in sizes:
            with bl.LoadGen(conns=size, connect=host.ports["rmi"][0]):
                check_healthy(host, work, size)
                check_ss_count(plays, host, size)
                log(f"B3: {size} connections to rmi")
                scan_ours[size] = bl.median(
                    time_call(socket_scan) for _unused in range(opts.repeat)
                )
                scan_floor[size] = bl.median(
                    time_call(floor.read_sockets) for _unused in range(opts.repeat)
                )
                res = measure(plays, ["ours", "ss", "lpf"], opts.repeat_pairs, {"lpf": 180.0})
                if not opts.quick:
                    # the old baselines: listen_ports_facts with include_non_listening grows
                    # steeply with sockets (bounded, and run once where one run takes long)
                    slow = size >= 1000
                    res.update(
                        measure(
                            plays,
                            ["lpf_old", "vendor"],
                            1 if slow else opts.repeat_slow,
                            {"lpf_old": 60.0 if size > 1000 else 180.0, "vendor": 180.0},
                        )
                    )
            ours_by_size[size] = res["ours"]["tasks"]
            rows.append(
                Row(
                    "B3",
                    f"{size} conns: health_info vs ss client count (1 shell task), wall",
                    ms(res["ours"]["wall"]),
                    ms(res["ss"]["wall"]),
                    "ms",
                    "(info)",
                    note=f"{opts.repeat_pairs} interleaved runs each; task time "
                    f"{ms(res['ours']['tasks']):.0f} vs {ms(res['ss']['tasks']):.0f} ms",
                    ours_min=ms(res["ours"]["wall_min"]),
                    baseline_min=ms(res["ss"]["wall_min"]),
                )
            )
            lpf = res["lpf"]
            rows.append(
                Row(
                    "B3",
                    f"{size} conns: health_info vs listen_ports_facts (default flags), wall",
                    ms(res["ours"]["wall"]),
                    ms(lpf["wall"]),
                    "ms",
                    "(info)",
                    baseline_is_lower_bound=lpf["timeout"],
                    ours_min=ms(res["ours"]["wall_min"]),
                    baseline_min=ms(lpf["wall_min"]),
                )
            )
            for name, label in (
                ("lpf_old", "listen_ports_facts(include_non_listening: true)"),
                ("vendor", "vendor shell procedure (checks nothing)"),
            ):
                if name in res:
                    rows.append(
                        Row(
                            "B3",
                            f"{size} conns: old baseline {label}, task time",
                            ms(res["ours"]["tasks"]),
                            ms(res[name]["tasks"]),
                            "ms",
                            "(old, info)",
                            note=f"baseline timed out after {res[name]['wall']:.0f} s"
                            if res[name]["timeout"]
                            else f"baseline runs: {res[name]['runs']}",
                            baseline_is_lower_bound=res[name]["timeout"],
                        )
                    )
        conns = 5000
        log(f"B3: health check with {conns} connections")
        per, added, low, high, per_min = health_check_slope(
            host,
            lambda: bl.LoadGen(conns=conns, connect=host.ports["rmi"][0]),
            lambda: established_to(host.ports["rmi"][0]),
            opts.repeat,
        )
    rows.append(
        Row(
            "B3",
            f"health check, added cost per connection (0 -> {added} to rmi)",
            per * 1e6,
            None,
            "us",
            "<= 8 us",
            ("ours<=", 8.0),
            goal_id="G6",
            ours_min=per_min * 1e6,
            note=f"in-process HealthChecker.run(), medians of {opts.repeat} runs: "
            f"{ms(low):.1f} ms without the connections, {ms(high):.1f} ms with them; each "
            "loopback connection is 2 TCP sockets in the table (client and server end)",
        )
    )
    low, high = min(ours_by_size), max(ours_by_size)
    rows.append(
        Row(
            "B3",
            f"added cost per connection, health_info task time ({low} -> {high})",
            ms(ours_by_size[high] - ours_by_size[low]) / (high - low) * 1000,
            None,
            "us",
            "(info)",
            note="task times differ by less than their run-to-run noise on a busy machine",
        )
    )
    rows.append(
        Row(
            "B3",
            f"socket scan alone, added cost per connection ({low} -> {high})",
            ms(scan_ours[high] - scan_ours[low]) / (high - low) * 1000,
            ms(scan_floor[high] - scan_floor[low]) / (high - low) * 1000,
            "us",
            "(info)",
            note="in-process SocketTable.scan() vs the /proc floor of B1 (tests/bench/floor.py)",
        )
    )
    return rows


def established_to(port: int) -> int:
    """ESTABLISHED TCP connections whose local port is ``port`` (server ends), from /proc."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        count += 1
        except OSError:
            continue
    return count


def health_check(host: bl.SesamHost) -> None:
    """What health_info does on the target, in-process (profile loaded outside the timing)."""
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.health import (
        HealthChecker,
    )

    args = host.module_args()
    result = HealthChecker(host.profile(), args["roles"], instance=args["instance"]).run()
    if result["status"] != "SUCCESS":
        raise RuntimeError(f"health check: {result['msg']}")


def socket_scan() -> None:
    from ansible_collections.daemonops.suite.plugins.module_utils._suite.sockets import (
        SocketTable,
    )

    SocketTable.scan()


# ------------------------------------------------------------------------------- B4 fleet


def bench_b4(opts: Options) -> list[Row]:
    sizes = list(opts.fleet)
    work = opts.workdir / "b4"
    rows: list[Row] = []
    trees = 4
    hosts_ctx = [bl.SesamHost(work / f"tree{k}", marker=f"b4-{k}") for k in range(trees)]
    try:
        for host in hosts_ctx:
            host.__enter__()
        sample = bl.run_module_json(
            "daemonops.suite.health_info", hosts_ctx[0].module_args(), work / "sample"
        )
        ping = bl.write_play(work / "ping.yml", [{"name": "ping", "ansible.builtin.ping": {}}])
        audit = bl.TOP / "playbooks" / "health_audit.yml"
        for size in sizes:
            names = [f"h{index:04d}" for index in range(size)]
            host_vars = {}
            for index, name in enumerate(names):
                tree = hosts_ctx[index % trees]
                host_vars[name] = {
                    "health_audit_profile": str(tree.profile_path),
                    "health_audit_instance": tree.module_args()["instance"],
                    "health_audit_roles": ["server"],
                }
            inventory = bl.write_inventory(work / f"fleet-{size}.yml", names, "server", host_vars)
            reports = work / f"reports-{size}"
            args = ["-e", f"health_audit_report_dir={reports}"]
            runs = opts.repeat_slow if size <= 50 else 1  # bounded: a 1,000-host run takes minutes
            log(f"B4: {size} hosts, {runs} run(s)")
            walls: dict[str, list[float]] = {"audit": [], "ping": []}
            aggregation: list[float] = []
            tasks: dict[str, list[float]] = {"check": [], "ping": [], "config": []}
            for _unused in range(runs):
                run = bl.run_playbook(audit, inventory, work, args, timeout=900, forks=50)
                walls["audit"].append(run.wall)
                aggregation.append(run.task_seconds("Write the fleet report") / size)
                tasks["check"].append(run.task_seconds("Check the suite's daemons on the host"))
                tasks["config"].append(
                    sum(
                        t["end"] - t["start"]
                        for t in run.timer.get("tasks", [])
                        if "audit's configuration" in t["name"] and t["end"] is not None
                    )
                )
                check_report(reports, size)
                run = bl.run_playbook(ping, inventory, work, timeout=900, forks=50)
                walls["ping"].append(run.wall)
                tasks["ping"].append(run.task_seconds("ping"))
            rows.append(
                Row(
                    "B4",
                    f"{size} hosts, forks 50: audit playbook vs ping play, wall",
                    bl.median(walls["audit"]),
                    bl.median(walls["ping"]),
                    "s",
                    "<= 1.15x ping",
                    ("ratio<=", 1.15),
                    note=f"runs: {runs}, interleaved",
                    goal_id={50: "G3", 200: "G4"}.get(size, ""),
                    ours_min=min(walls["audit"]),
                    baseline_min=min(walls["ping"]),
                )
            )
            rows.append(
                Row(
                    "B4",
                    f"{size} hosts: the health_info task vs the ping task, task time",
                    bl.median(tasks["check"]),
                    bl.median(tasks["ping"]),
                    "s",
                    "(info)",
                    note="first host start to last host result of the one task",
                )
            )
            rows.append(
                Row(
                    "B4",
                    f"{size} hosts: controller configuration checks (audit_config), per host",
                    ms(bl.median(tasks["config"])) / size,
                    None,
                    "ms",
                    "(info)",
                    note="both audit_config tasks (the playbook's first play and the role's)",
                )
            )
            rows.append(
                Row(
                    "B4",
                    f"{size} hosts: report build + render (5 formats) alone, per host",
                    ms(bl.median(render_alone(sample, size) for _unused in range(opts.repeat))),
                    None,
                    "ms",
                    "(info)",
                    note="the audit_report plugin's functions in-process, no Ansible templating",
                )
            )
            rows.append(
                Row(
                    "B4",
                    f"{size} hosts: report aggregation per host",
                    ms(bl.median(aggregation)),
                    None,
                    "ms",
                    "<= 1 ms/host",
                    ("ours<=", 1.0),
                )
            )
    finally:
        for host in hosts_ctx:
            host.__exit__()
    return rows


def render_alone(sample: dict[str, Any], size: int) -> float:
    """Seconds per host to aggregate ``size`` copies of one real health_info result and render
    every report format (what the audit_report action does, without Ansible around it)."""
    from ansible_collections.daemonops.suite.plugins.plugin_utils.audit_report import (
        FORMATS,
        build_report,
        render,
    )

    results = {f"h{index:04d}": sample for index in range(size)}
    started = time.perf_counter()
    report = build_report(results, time.time())
    for fmt in FORMATS:
        render(report, fmt)
    return (time.perf_counter() - started) / size


def check_report(reports: Path, size: int) -> None:
    path = reports / "health_audit.json"
    if not path.is_file():
        raise RuntimeError(f"the audit wrote no {path}")
    text = path.read_text()
    data = json.loads(text)
    hosts = data.get("hosts", data)
    if isinstance(hosts, (dict, list)) and len(hosts) < size:
        raise RuntimeError(f"the audit report lists {len(hosts)} hosts, the inventory {size}")


# --------------------------------------------------------------------------- B5 footprint


USAGE_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
out = child.stdout.read()
_, _, usage = os.wait4(child.pid, 0)
sys.stdout.write(json.dumps([usage.ru_utime + usage.ru_stime, usage.ru_maxrss]) + "\\n")
sys.stdout.flush()
sys.stdout.buffer.write(out)
"""


def run_with_usage(cmd: list[str], timeout: float = 120) -> tuple[float, float, str]:
    """Run ``cmd``; (CPU ms, peak RSS MB, output) from wait4 in a small launcher process.

    The launcher is needed for the RSS: Linux keeps a process's peak RSS across exec, so a
    command forked straight from this (large) process would report this process's size."""
    proc = subprocess.run(
        [bl.PYTHON, "-c", USAGE_LAUNCHER, *cmd],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    first, _unused, out = proc.stdout.partition(b"\n")
    cpu, maxrss_kb = json.loads(first)
    return ms(cpu), maxrss_kb / 1024.0, out.decode(errors="replace")


def ansiballz(module: str, args: dict[str, Any], workdir: Path) -> Path:
    """The AnsiballZ payload Ansible sends to a target for ``module`` with ``args`` (kept with
    ANSIBLE_KEEP_REMOTE_FILES from one real ``ansible`` run): what the target executes."""
    remote = workdir / f"remote-{module.rsplit('.', 1)[1]}"
    old = {k: os.environ.get(k) for k in ("ANSIBLE_KEEP_REMOTE_FILES", "ANSIBLE_REMOTE_TMP")}
    os.environ.update(ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=str(remote))
    try:
        result = bl.run_module_json(module, args, workdir)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if result.get("failed"):
        raise RuntimeError(f"{module}: {result.get('msg')}")
    found = sorted(remote.rglob("AnsiballZ_*.py"))
    if not found:
        raise RuntimeError(f"{module}: no AnsiballZ payload kept under {remote}")
    return found[-1]


def bench_b5(opts: Options, conns: int = 0) -> list[Row]:
    work = opts.workdir / "b5"
    rows = []
    with bl.SesamHost(work / "host", marker="b5") as host:
        cases = [(0, "sesam host")] + ([(conns, f"sesam host, {conns} conns")] if conns else [])
        for size, label in cases:
            with bl.LoadGen(conns=size, connect=host.ports["rmi"][0] if size else None):
                ours_cmd = [
                    bl.PYTHON,
                    str(
                        ansiballz(
                            "daemonops.suite.health_info", host.module_args(), work / f"z{size}"
                        )
                    ),
                ]
                base_cmd = [
                    bl.PYTHON,
                    str(
                        ansiballz(
                            "community.general.listen_ports_facts",
                            {"include_non_listening": False},
                            work / f"z{size}",
                        )
                    ),
                ]
                ping_cmd = [
                    bl.PYTHON,
                    str(ansiballz("ansible.builtin.ping", {"data": "pong"}, work / f"z{size}")),
                ]
                cpu: dict[str, list[float]] = {"ours": [], "base": [], "ping": []}
                rss: dict[str, list[float]] = {"ours": [], "base": [], "ping": []}
                for _unused in range(opts.repeat):
                    for key, cmd in (("ours", ours_cmd), ("base", base_cmd), ("ping", ping_cmd)):
                        c, r, out = run_with_usage(cmd)
                        if '"failed": true' in out or "Traceback" in out:
                            raise RuntimeError(f"{' '.join(cmd)}: {out[-2000:]}")
                        if key == "ours" and '"status": "SUCCESS"' not in out:
                            raise RuntimeError(f"health_info not SUCCESS: {out[-2000:]}")
                        cpu[key].append(c)
                        rss[key].append(r)
            rows.append(
                Row(
                    "B5",
                    f"{label}: CPU time vs the ansible.builtin.ping payload",
                    bl.median(cpu["ours"]),
                    bl.median(cpu["ping"]),
                    "ms",
                    "<= ping + 20 ms",
                    ("minus<=", 20.0),
                    goal_id="G5" if size == 0 else "",
                    ours_min=min(cpu["ours"]),
                    baseline_min=min(cpu["ping"]),
                    note="the AnsiballZ payloads as a target runs them, interleaved; ping: "
                    "interpreter + AnsiballZ + ansible.module_utils.basic, paid by every module",
                )
            )
            rows.append(
                Row(
                    "B5",
                    f"{label}: CPU time vs listen_ports_facts (default flags)",
                    bl.median(cpu["ours"]),
                    bl.median(cpu["base"]),
                    "ms",
                    "(info)",
                )
            )
            rows.append(
                Row(
                    "B5",
                    f"{label}: peak RSS",
                    bl.median(rss["ours"]),
                    bl.median(rss["base"]),
                    "MB",
                    "<= 40 MB",
                    ("ours<=", 40.0),
                    ours_min=min(rss["ours"]),
                    baseline_min=min(rss["base"]),
                )
            )
    return rows


# ---------------------------------------------------------------------------- B6 re-run


def bench_b6(opts: Options) -> list[Row]:
    import psutil

    work = opts.workdir / "b6"
    root = work / "deploy"
    root.mkdir(parents=True)
    ui, stpd1, stpd2, stpd3, ctrl, sshd = bl.free_ports(6)
    config = root / "etc" / "refsuite.ini"
    host_vars = {
        "common_prefix": str(root / "opt"),
        "common_config_file": str(config),
        "common_state_dir": str(root / "state"),
        "common_log_dir": str(root / "log"),
        "common_systemd_unit_dir": str(root / "systemd"),
        "common_service_backend": "direct",
        "common_retry_interval": 0,
        "common_ports": {"ui": [ui], "stpd": [stpd1, stpd2, stpd3], "ctrl": [ctrl], "sshd": [sshd]},
    }
    inventory = bl.write_inventory(
        work / "inventory.yml", ["localhost"], "server", {"localhost": host_vars}
    )
    site = bl.TOP / "playbooks" / "site.yml"
    try:
        log("B6: first deployment")
        bl.run_playbook(site, inventory, work, timeout=600)
        reruns, checks, counts = [], [], {}
        for _unused in range(opts.repeat_slow):
            run = bl.run_playbook(site, inventory, work, timeout=600)
            changed = sum(s.get("changed", 0) for s in run.timer["stats"].values())
            if changed:
                raise RuntimeError(f"site.yml re-run is not a no-op: {changed} changed")
            reruns.append(run.wall)
            counts["rerun"] = run.tasks_per_host()
            run = bl.run_playbook(site, inventory, work, ["--check"], timeout=600)
            checks.append(run.wall)
            counts["check"] = run.tasks_per_host()
    finally:
        subprocess.run(
            [bl.PYTHON, str(bl.REFSUITE), "--config", str(config), "stop", "--force"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        for proc in psutil.process_iter(["cmdline"]):
            if str(config) in " ".join(proc.info["cmdline"] or []):
                try:
                    proc.kill()
                except psutil.Error:
                    pass
    return [
        Row(
            "B6",
            "no-op site.yml re-run vs --check of it",
            bl.median(reruns),
            bl.median(checks),
            "s",
            "<= 1.5x",
            ("ratio<=", 1.5),
            note=f"tasks per host: re-run {counts['rerun']:.0f}, --check {counts['check']:.0f}",
        ),
    ]


# ------------------------------------------------------------------------------- main

BENCHES: dict[str, Callable[[Options], list[Row]]] = {
    "B1": lambda opts: bench_b1(opts) + bench_b1_processes(opts),
    "B2": bench_b2,
    "B3": bench_b3,
    "B4": bench_b4,
    "B5": lambda opts: bench_b5(opts, 0 if opts.quick else 1000),
    "B6": bench_b6,
}


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover
        pass
    import psutil

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "psutil": psutil.__version__,
        "load_before": os.getloadavg(),
    }


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmarks of daemonops.suite (see docs/performance.md)."
    )
    parser.add_argument("--only", default="", help="comma list of benchmarks, e.g. B1,B3")
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer runs (< 5 min)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="runs per figure (median); default 5 cheap / 3 playbooks, quick 3/1",
    )
    parser.add_argument(
        "--fleet",
        default="",
        help="B4 fleet sizes, comma list (default 50,200,1000; quick 50), e.g. 50,200",
    )
    parser.add_argument("--json", default="", help="also write the rows and machine to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    only = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in only if b not in BENCHES]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    if args.repeat < 0 or args.repeat > 50:
        parser.error("--repeat: give 1..50")
    args.only = only or list(BENCHES)
    try:
        fleet = tuple(int(size) for size in args.fleet.split(",") if size.strip())
    except ValueError:
        parser.error(
            f"--fleet: give host counts separated by commas, e.g. 50,200, not {args.fleet!r}"
        )
    if any(not 1 <= size <= 2000 for size in fleet):
        parser.error("--fleet: each size must be 1..2000")
    args.fleet = fleet or ((50,) if args.quick else (50, 200, 1000))
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    bl.setup_env()
    raise_nofile(20000)
    workdir = Path(tempfile.mkdtemp(prefix="daemonops-bench-"))
    if args.repeat:
        repeat, repeat_slow = args.repeat, args.repeat
    elif args.quick:
        repeat, repeat_slow = 3, 1
    else:
        repeat, repeat_slow = 5, 3
    opts = Options(
        quick=args.quick,
        repeat=repeat,
        repeat_slow=repeat_slow,
        workdir=workdir,
        repeat_pairs=args.repeat or (3 if args.quick else 9),
        fleet=args.fleet,
    )
    info = machine()
    log(f"machine: {info}; work directory {workdir}")
    rows: list[Row] = []
    failures: list[str] = []
    started = time.monotonic()
    try:
        for name in args.only:
            t0 = time.monotonic()
            try:
                rows.extend(BENCHES[name](opts))
            except Exception as exc:  # a broken benchmark must not hide the others' figures
                failures.append(f"{name}: {exc.__class__.__name__}: {exc}")
                log(f"{name} FAILED: {exc}")
            log(f"{name} took {time.monotonic() - t0:.0f} s")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\ndaemonops.suite benchmarks, {info['date']}, {info['nproc']} x {info['cpu']}, "
        f"kernel {info['kernel']}, runs per figure {repeat} (playbooks {repeat_slow}, "
        f"one-host plays {opts.repeat_pairs}), load average before {info['load_before'][0]:.1f}, "
        f"{time.monotonic() - started:.0f} s"
    )
    print_table(rows)
    print()
    print_goals(rows)
    if failures:
        print("benchmarks that could not run:")
        for failure in failures:
            print(f"  {failure}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "rows": [{**asdict(r), "ratio": r.ratio, "met": r.met} for r in rows],
                    "failures": failures,
                },
                indent=2,
            )
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
