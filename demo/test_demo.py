"""Smoke tests of the demo's own logic (`make test-demo`): the FD-leak scenario really leaks
with the stdlib and not with litepool, the orchestrator samples a child from outside, and the
table and chart come out whole. Counts, never timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart  # noqa: E402
import run  # noqa: E402

TICKS = 150


def fd_leak_summary(impl: str, db: str) -> dict:
    out = subprocess.run(
        [sys.executable, run.WORKER, "fd", "--impl", impl, "--db", db, "--secs", "600",
         "--ticks", str(TICKS), "--interval", "0", "--gc", "off"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]


def test_fd_leak_scenario_leaks_with_the_stdlib_only(tmp_path):
    stdlib = fd_leak_summary("stdlib", str(tmp_path / "stdlib.db"))
    lite = fd_leak_summary("litepool", str(tmp_path / "litepool.db"))
    assert stdlib["ticks"] == lite["ticks"] == TICKS
    assert stdlib["errors"] == lite["errors"] == 0
    # Each unclosed stdlib connection keeps the database and its -wal open: 2 FDs per tick.
    assert stdlib["fds_at_end"] >= 2 * TICKS
    # litepool: the pool's writer and readers, whatever the number of ticks.
    assert lite["fds_at_end"] < 30


def test_run_side_samples_the_child_from_outside(tmp_path):
    db = str(tmp_path / "poll.db")
    argv = [sys.executable, run.WORKER, "fd", "--impl", "stdlib", "--db", db, "--secs", "1.5",
            "--gc", "off"]
    side = run.run_side("fd", "stdlib GC off", argv, db)
    assert side.summary["kind"] == "summary" and side.summary["ticks"] > 0
    assert side.samples, "no sample of /proc/PID/fd was taken"
    assert side.peak_fds >= side.samples[0][1]
    assert side.cpu_s > 0


def test_run_side_reports_a_crashed_side():
    with pytest.raises(run.DemoError, match="exited with 2"):
        run.run_side("fd", "bad", [sys.executable, run.WORKER, "no-such-scenario"], "/nonexistent")


def test_better_says_which_way_and_how_much():
    assert run.better(100, 10, True, "fewer") == "10.0x fewer"
    assert run.better(10, 100, True, "fewer") == "10.0x worse"
    assert run.better(1000, 4000, False, "more") == "4.0x more"
    assert run.better(5, 0, True, "failures") == "failures: none"
    assert run.better(0, 0, True, "failures") == "same"
    assert run.better(0, 7, True, "errors") == "peer: none"


def fake_side(scenario: str, label: str, summary: dict, fds: int = 10, wal: int = 0) -> run.Side:
    return run.Side(scenario, label, [(0.5, fds // 2, wal // 2), (1.0, fds, wal)], summary, 0.5, 1.0)


def test_table_and_chart_cover_every_scenario(tmp_path):
    sides = {}
    for gc_mode in ("on", "off"):
        for impl, fds in (("stdlib", 900), ("litepool", 8)):
            sides[f"fd-{gc_mode}-{impl}"] = fake_side(
                "fd", impl, {"ticks": 100, "errors": 3 if impl == "stdlib" else 0,
                             "first_error": "OperationalError: unable to open database file"
                             if impl == "stdlib" else None}, fds)
    for impl, wal in (("stdlib", 300 * run.MIB), ("litepool", 60 * run.MIB)):
        sides[f"wal-{impl}"] = fake_side("wal", impl, {"commits": 10, "reads": 5, "errors": 0, "written_bytes": 5 * run.MIB,
                                                       "wal_bytes_before_close": wal}, wal=wal)
    for name, fds in (("mattn", 1500), ("litepool", 15)):
        sides[f"go-{name}"] = fake_side("go", name, {"t": 2.0, "ops": 1000, "errors": 0,
                                                     "open_conns": 2}, fds)
    for impl in ("stdlib", "litepool"):
        sides[f"tick-{impl}"] = fake_side("tick", impl, {
            "ticks": 10, "errors": 0, "median_us": 100.0, "p99_us": 200.0,
            "cpu_us_per_tick": 50.0, "peak_fds_in_tick": 9})

    table = run.format_table(run.table_rows(sides))
    for needle in ("FD leak, default GC", "FD leak, GC off", "WAL growth", "Go, 500 goroutines",
                   "Per-tick reconnect", "112.5x fewer", "5.0x smaller", "failures: none"):
        assert needle in table
    assert run.first_errors(sides)[0].endswith("unable to open database file (x3)")

    svg = run.build_chart(sides)
    root = ET.fromstring(svg)  # well-formed XML
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for title in ("1. FD leak", "2. WAL growth", "3. Go: 500 goroutines", "4. Per-tick reconnect"):
        assert any(t.startswith(title) for t in texts), title
    for label in ("open file descriptors", "-wal file size (MiB)", "µs per tick",
                  "time since the process started (s)"):
        assert label in texts
    assert any("peak 1,500" in t for t in texts)  # legends carry the peaks

    # --from-samples rebuilds the same table from a run's samples.json.
    run.save_samples(str(tmp_path / "samples.json"), sides)
    assert run.format_table(run.table_rows(run.load_samples(str(tmp_path / "samples.json")))) == table


def test_nice_ticks_cover_the_data():
    for top in (0.3, 7, 99, 1024, 123456):
        ticks = chart.nice_ticks(top)
        assert ticks[0] == 0 and ticks[-1] >= top and len(ticks) <= 12
