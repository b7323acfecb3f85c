# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke run of the benchmark harness (not a timing test): B1 and B5 at tiny sizes must produce
numeric figures and ratios, the load generator must really create what it is asked for, the
baselines of B2/B3 must really check (fail on a killed daemon, a wrong port or count, a missing
client), and the goal table must list every goal of issue #17.

Run: ``. scripts/env.sh && python -m pytest tests/bench/test_bench_smoke.py -q`` (about 35 s).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
import floor
import run


@pytest.fixture(scope="module")
def opts(tmp_path_factory: pytest.TempPathFactory) -> run.Options:
    bl.setup_env()
    return run.Options(quick=True, repeat=2, repeat_slow=1, workdir=tmp_path_factory.mktemp("b"))


def assert_numeric(rows: list[run.Row], bench: str, count: int) -> None:
    assert len(rows) == count, rows
    for row in rows:
        assert row.bench == bench
        assert row.ours is not None and math.isfinite(row.ours) and row.ours > 0, row
        assert row.baseline is not None and math.isfinite(row.baseline) and row.baseline > 0, row
        assert row.ratio is not None and math.isfinite(row.ratio) and row.ratio > 0, row
        assert row.met in (True, False), row
        assert len(row.cells()) == len(run.HEADER)


def test_loadgen_creates_processes_and_connections() -> None:
    with bl.LoadGen(procs=3, conns=5) as load:
        helper = psutil.Process(load.report["pid"])
        assert len(helper.children()) == 3
        established = [c for c in helper.net_connections("tcp") if c.status == "ESTABLISHED"]
        assert len(established) == 10  # both ends of 5 loopback connections
        assert all(c.laddr.ip == "127.0.0.1" for c in established)
    assert not psutil.pid_exists(helper.pid) or helper.status() == psutil.STATUS_ZOMBIE


def test_floor_sees_the_load() -> None:
    with bl.LoadGen(procs=2, conns=4) as load:
        procs = floor.read_processes()
        assert load.report["pid"] in procs and set(load.report["children"]) <= set(procs)
        mine = [s for s in floor.read_sockets() if s[4] == load.report["pid"]]
        assert len([s for s in mine if s[0] == "ESTABLISHED"]) == 8
        assert any(s[0] == "LISTEN" and s[1][1] == load.report["listen_port"] for s in mine)


def test_b1_tiny_produces_figures(opts: run.Options) -> None:
    rows = run.bench_b1(opts, procs_target=0, conns=20)
    assert_numeric(rows, "B1", 2)


def test_b5_produces_figures(opts: run.Options) -> None:
    rows = run.bench_b5(opts, conns=0)
    cpu_vs_ping, cpu_vs_lpf, rss = rows
    assert_numeric([cpu_vs_ping, rss], "B5", 2)
    assert cpu_vs_ping.goal_id == "G5" and cpu_vs_ping.rule == ("minus<=", 20.0)
    assert cpu_vs_ping.unit == "ms" and rss.unit == "MB"
    assert cpu_vs_lpf.ours == cpu_vs_ping.ours and cpu_vs_lpf.baseline is not None
    assert cpu_vs_lpf.baseline > 0


def test_compact_shell_check_really_checks(tmp_path: Path) -> None:
    """The B2 baseline passes on the healthy sesam host and fails, naming the daemon, when a
    port is wrong, a count is wrong or a daemon is killed."""
    bl.setup_env()
    with bl.SesamHost(tmp_path / "host", marker="smoke") as host:
        plays = run.HostPlays(host, tmp_path / "plays")
        run.check_compact(host, plays)  # healthy passes; wrong port and wrong count fail
        assert plays.run("compact").rc == 0
        assert host.tree is not None
        host.tree.kill("sm_passd")
        killed = plays.run("compact", check_rc=False)
        assert killed.rc != 0
        assert "passd: 0 processes, want 1..1" in killed.output


def test_ss_count_really_counts(tmp_path: Path) -> None:
    bl.setup_env()
    with bl.SesamHost(tmp_path / "host", marker="smoke-ss") as host:
        plays = run.HostPlays(host, tmp_path / "plays")
        with bl.LoadGen(conns=7, connect=host.ports["rmi"][0]):
            assert run.established_to(host.ports["rmi"][0]) == 7
            run.check_ss_count(plays, host, 7)  # passes at 7, fails when asked for 8
        with pytest.raises(RuntimeError, match="fewer than the 7 clients"):
            run.check_ss_count(plays, host, 7)  # the clients are gone


def test_goal_table_prints_every_goal(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        run.Row("B2", "a", 900.0, 1000.0, "ms", "<= 1.0x", ("ratio<=", 1.0), goal_id="G1"),
        run.Row("B5", "b", 260.0, 230.0, "ms", "<= +20", ("minus<=", 20.0), goal_id="G5"),
        run.Row("B3", "c", 9.5, None, "us", "<= 8 us", ("ours<=", 8.0), goal_id="G6"),
    ]
    run.print_goals(rows)
    lines = capsys.readouterr().out.splitlines()
    for goal_id, what, bench in run.GOALS:
        line = next((x for x in lines if x.startswith(goal_id + " ")), None)
        assert line is not None, (goal_id, lines)
        assert what in line
        if goal_id not in ("G1", "G5", "G6"):
            assert f"not measured (run {bench})" in line
    by_id = {x.split()[0]: x for x in lines if x[:1] == "G" and x[1:2].isdigit()}
    assert "0.900x (900 vs 1000 ms)" in by_id["G1"] and by_id["G1"].endswith("met")
    assert "+30.0 ms (260 vs 230)" in by_id["G5"] and by_id["G5"].endswith("MISSED")
    assert "9.5 us" in by_id["G6"] and by_id["G6"].endswith("MISSED")
    assert {g[0] for g in run.GOALS} == {f"G{i}" for i in range(1, 8)}


def test_table_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        run.Row("B9", "case a", 1.0, 4.0, "ms", "<= 2x", ("ratio<=", 2.0)),
        run.Row("B9", "case b", 3.0, None, "ms", "<= 1 ms", ("ours<=", 1.0)),
    ]
    run.print_table(rows)
    out = capsys.readouterr().out
    assert "case a" in out and "0.250 (4.0x faster)" in out and "yes" in out
    assert "case b" in out and "NO" in out
