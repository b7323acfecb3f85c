# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke run of the benchmark harness (not a timing test): B1 and B5 at tiny sizes must produce
numeric figures and ratios, and the load generator must really create what it is asked for.

Run: ``. scripts/env.sh && python -m pytest tests/bench/test_bench_smoke.py -q`` (about 30 s).
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
    assert_numeric(rows[:2], "B5", 2)
    cpu, rss, fixed = rows
    assert fixed.ours is not None and fixed.ours > 0
    assert cpu.unit == "ms" and rss.unit == "MB"


def test_table_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        run.Row("B9", "case a", 1.0, 4.0, "ms", "<= 2x", ("ratio<=", 2.0)),
        run.Row("B9", "case b", 3.0, None, "ms", "<= 1 ms", ("ours<=", 1.0)),
    ]
    run.print_table(rows)
    out = capsys.readouterr().out
    assert "case a" in out and "0.250 (4.0x faster)" in out and "yes" in out
    assert "case b" in out and "NO" in out
