"""`make demo`: the ways SQLite services fail, and litepool ending them, side by side.

Runs each scenario twice — once with what services use today (the stdlib `sqlite3` module,
mattn/go-sqlite3), once with litepool — each side in its own process on its own temporary
database, samples that process's file descriptors (/proc/PID/fd) and its -wal file's size
(stat) five times a second, prints a progress line per second, then a summary table, and
writes the table, the raw samples and a chart (SVG) to one directory.

Environment:
    LITEPOOL_DEMO_SECS       length of the WAL scenario per side in seconds (default 20); the
                             others scale with it (FD leak 0.3x per run, Go 0.4x, reconnect 0.2x)
    LITEPOOL_DEMO_SCENARIOS  which to run, comma-separated (default "fd,wal,go,tick")
    LITEPOOL_DEMO_OUT        output directory (default target/demo)

The orchestrator itself imports neither sqlite3 nor litepool.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")
SAMPLE_PERIOD = 0.2
ALL_SCENARIOS = ("fd", "wal", "go", "tick")
# The FD-leak scenario with the GC off runs under this soft RLIMIT_NOFILE, the usual Linux
# default, so the stdlib side reaches EMFILE within seconds.
FD_LIMIT = 1024
MIB = 1024 * 1024


class DemoError(Exception):
    """A side could not run (crashed, missing binary): the demo itself failed."""


@dataclass
class Side:
    """One run of one side of a scenario, with what was measured."""

    scenario: str
    label: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, fds, wal bytes)
    summary: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @property
    def peak_fds(self) -> int:
        return max((f for _, f, _ in self.samples), default=0)

    @property
    def last_fds(self) -> int:
        """FDs at the last sample before the side's work ended."""
        return self.samples[-1][1] if self.samples else 0

    @property
    def peak_wal(self) -> int:
        return max((w for _, _, w in self.samples), default=0)


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # the process just exited
        return None


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def progress_text(scenario: str, label: str, t: float, fds: int, wal: int, last: dict[str, Any]) -> str:
    counters = "  ".join(f"{k}={v:,}" for k, v in last.items() if k != "kind" and isinstance(v, int))
    return (
        f"  {scenario:<5} {label:<28} {t:5.1f}s  fds={fds:>5,}  -wal={wal / MIB:7.1f} MiB  {counters}"
    )


def run_side(scenario: str, label: str, argv: list[str], db: str) -> Side:
    """Runs one side to completion, sampling it; prints one progress line per second."""
    side = Side(scenario, label)
    lines: list[dict[str, Any]] = []
    stderr: list[str] = []
    cpu0 = children_cpu()
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                stderr.append(raw)

    def read_stderr() -> None:
        assert proc.stderr is not None
        stderr.extend(proc.stderr)

    readers = [threading.Thread(target=read_stdout), threading.Thread(target=read_stderr)]
    for r in readers:
        r.start()
    next_print = start + 1.0
    while proc.poll() is None:
        now = time.monotonic()
        fds = fd_count(proc.pid)
        # Once the summary is out the scenario is over; the process closing is not measured.
        working = not any(line.get("kind") == "summary" for line in lines[-1:])
        if fds is not None and working:
            side.samples.append((now - start, fds, file_size(db + "-wal")))
        if now >= next_print and side.samples:
            _, f, w = side.samples[-1]
            last = [line for line in lines[-2:] if line.get("kind") == "sample"][-1:]
            print(progress_text(scenario, label, now - start, f, w, last[0] if last else {}),
                  flush=True)
            next_print += 1.0
        time.sleep(SAMPLE_PERIOD)
    proc.wait()
    for r in readers:
        r.join()
    side.wall_s = time.monotonic() - start
    side.cpu_s = children_cpu() - cpu0
    summaries = [line for line in lines if line.get("kind") == "summary"]
    if proc.returncode != 0 or not summaries:
        tail = "".join(stderr[-20:])
        raise DemoError(f"{label} ({' '.join(argv)}) exited with {proc.returncode}:\n{tail}")
    side.summary = summaries[-1]
    return side


class Demo:
    def __init__(self, python: str, go_bin: str, secs: float, scenarios: list[str]) -> None:
        self.python = python
        self.go_bin = go_bin
        self.secs = secs
        self.scenarios = scenarios
        self.sides: dict[str, Side] = {}

    def side(self, key: str, scenario: str, label: str, argv: list[str], db_name: str) -> None:
        tmp = tempfile.mkdtemp(prefix="litepool-demo-")
        try:
            db = os.path.join(tmp, db_name)
            self.sides[key] = run_side(scenario, label, [a.replace("{db}", db) for a in argv], db)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def worker(self, scenario: str, impl: str, secs: float, *extra: str) -> list[str]:
        return [self.python, WORKER, scenario, "--impl", impl, "--db", "{db}",
                "--secs", f"{secs:g}", *extra]

    def run(self) -> None:
        s = self.secs
        if "fd" in self.scenarios:
            t = max(2.0, 0.3 * s)
            print(f"\n[1/4] FD leak: a poller doing `with sqlite3.connect(p) as c:` every 2 ms, "
                  f"{t:g} s per run", flush=True)
            for gc_mode, extra in (("on", []), ("off", ["--nofile", str(FD_LIMIT)])):
                for impl in ("stdlib", "litepool"):
                    label = f"{impl} GC {'default' if gc_mode == 'on' else 'off'}"
                    self.side(f"fd-{gc_mode}-{impl}", "fd", label,
                              self.worker("fd", impl, t, "--gc", gc_mode, *extra), "poll.db")
        if "wal" in self.scenarios:
            print(f"\n[2/4] WAL growth: a writer (10 commits/s of 160 x 3 KB rows) with 4 overlapping "
                  f"readers (each a 4000-row query read over 0.2 s), {s:g} s per side", flush=True)
            for impl in ("stdlib", "litepool"):
                self.side(f"wal-{impl}", "wal", impl, self.worker("wal", impl, s), "wal.db")
        if "go" in self.scenarios:
            t = max(2.0, 0.4 * s)
            print(f"\n[3/4] Go: 500 goroutines through database/sql, no SetMaxOpenConns, "
                  f"90% reads / 10% updates, {t:g} s per side", flush=True)
            runs = (
                ("mattn", "mattn/go-sqlite3", "file:{db}?_journal_mode=WAL&_busy_timeout=5000"),
                ("litepool", "litepool", "{db}"),
            )
            for name, label, dsn in runs:
                binary = os.path.join(self.go_bin, f"go-{name}")
                if not os.access(binary, os.X_OK):
                    raise DemoError(f"{binary} is missing: run `make demo` (it builds it)")
                self.side(f"go-{name}", "go", label,
                          [binary, "-dsn", dsn, "-secs", f"{t:g}", "-goroutines", "500"], "go.db")
        if "tick" in self.scenarios:
            t = max(2.0, 0.2 * s)
            print(f"\n[4/4] Per-tick reconnect: connect, take 10 due jobs, reschedule, commit, "
                  f"close; back to back, {t:g} s per side", flush=True)
            for impl in ("stdlib", "litepool"):
                self.side(f"tick-{impl}", "tick", impl, self.worker("tick", impl, t), "jobs.db")


# --- the summary table ---------------------------------------------------------------------

def n(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def mib(v: float) -> str:
    return f"{v / MIB:,.1f} MiB"


def better(peer: float | None, lite: float | None, lower_is_better: bool, word: str) -> str:
    """litepool against the peer, in words: '37.5x fewer', '2.1x faster', 'same'."""
    if peer is None or lite is None:
        return "-"
    if peer == lite:
        return "same"
    if lower_is_better:
        if lite == 0:
            return f"{word}: none"
        if peer == 0:
            return "peer: none"
        ratio = peer / lite
    else:
        if peer == 0:
            return "peer did none"
        ratio = lite / peer
    if ratio >= 1:
        return f"{ratio:,.1f}x {word}"
    return f"{1 / ratio:,.1f}x worse"


def table_rows(sides: dict[str, Side]) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []

    def have(*keys: str) -> bool:
        return all(k in sides for k in keys)

    for gc_mode, title in (("on", "FD leak, default GC"), ("off", f"FD leak, GC off, ulimit -n {FD_LIMIT}")):
        p, lp = f"fd-{gc_mode}-stdlib", f"fd-{gc_mode}-litepool"
        if not have(p, lp):
            continue
        a, b = sides[p], sides[lp]
        rows.append((title, "peak FDs", n(a.peak_fds), n(b.peak_fds), better(a.peak_fds, b.peak_fds, True, "fewer")))
        rows.append(("", "FDs at end", n(a.last_fds), n(b.last_fds), better(a.last_fds, b.last_fds, True, "fewer")))
        rows.append(("", "ticks / failed ticks", f"{a.summary['ticks']:,} / {a.summary['errors']:,}",
                     f"{b.summary['ticks']:,} / {b.summary['errors']:,}",
                     better(a.summary["errors"], b.summary["errors"], True, "failures")))
    if have("wal-stdlib", "wal-litepool"):
        a, b = sides["wal-stdlib"], sides["wal-litepool"]
        rows.append(("WAL growth, overlapping readers", "peak -wal size", mib(a.peak_wal), mib(b.peak_wal),
                     better(a.peak_wal, b.peak_wal, True, "smaller")))
        end_a, end_b = a.summary["wal_bytes_before_close"], b.summary["wal_bytes_before_close"]
        rows.append(("", "-wal size at end", mib(end_a), mib(end_b), better(end_a, end_b, True, "smaller")))
        rows.append(("", "data written", mib(a.summary["written_bytes"]), mib(b.summary["written_bytes"]), ""))
        rows.append(("", "commits / reads", f"{a.summary['commits']:,} / {a.summary['reads']:,}",
                     f"{b.summary['commits']:,} / {b.summary['reads']:,}", ""))
        rows.append(("", "errors", n(a.summary["errors"]), n(b.summary["errors"]),
                     better(a.summary["errors"], b.summary["errors"], True, "errors")))
    if have("go-mattn", "go-litepool"):
        a, b = sides["go-mattn"], sides["go-litepool"]
        ops_a, ops_b = a.summary["ops"] / a.summary["t"], b.summary["ops"] / b.summary["t"]
        cpu_a = a.cpu_s * 1e6 / max(a.summary["ops"], 1)
        cpu_b = b.cpu_s * 1e6 / max(b.summary["ops"], 1)
        rows.append(("Go, 500 goroutines (mattn vs litepool)", "peak FDs", n(a.peak_fds), n(b.peak_fds),
                     better(a.peak_fds, b.peak_fds, True, "fewer")))
        rows.append(("", "peak -wal size", mib(a.peak_wal), mib(b.peak_wal), better(a.peak_wal, b.peak_wal, True, "smaller")))
        rows.append(("", "ops/s", n(ops_a), n(ops_b), better(ops_a, ops_b, False, "more")))
        rows.append(("", "CPU µs per op", n(cpu_a, 1), n(cpu_b, 1), better(cpu_a, cpu_b, True, "less")))
        rows.append(("", "errors", n(a.summary["errors"]), n(b.summary["errors"]),
                     better(a.summary["errors"], b.summary["errors"], True, "errors")))
    if have("tick-stdlib", "tick-litepool"):
        a, b = sides["tick-stdlib"], sides["tick-litepool"]
        sa, sb = a.summary, b.summary
        rows.append(("Per-tick reconnect", "median µs per tick", n(sa["median_us"]), n(sb["median_us"]),
                     better(sa["median_us"], sb["median_us"], True, "faster")))
        rows.append(("", "p99 µs per tick", n(sa["p99_us"]), n(sb["p99_us"]),
                     better(sa["p99_us"], sb["p99_us"], True, "faster")))
        rows.append(("", "CPU µs per tick (process)", n(sa["cpu_us_per_tick"]), n(sb["cpu_us_per_tick"]),
                     better(sa["cpu_us_per_tick"], sb["cpu_us_per_tick"], True, "less")))
        rows.append(("", "peak FDs", n(max(a.peak_fds, sa["peak_fds_in_tick"])),
                     n(max(b.peak_fds, sb["peak_fds_in_tick"])), ""))
        rows.append(("", "ticks / errors", f"{sa['ticks']:,} / {sa['errors']:,}",
                     f"{sb['ticks']:,} / {sb['errors']:,}", ""))
    return rows


def format_table(rows: list[tuple[str, str, str, str, str]]) -> str:
    header = ("scenario", "metric", "stdlib / mattn", "litepool", "litepool vs peer")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    aligns = ["<", "<", ">", ">", "<"]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, aligns, widths)).rstrip()

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    for r in rows:
        if r[0] and len(out) > 2:
            out.append("")
        out.append(fmt(r))
    return "\n".join(out)


def first_errors(sides: dict[str, Side]) -> list[str]:
    return [f"  {s.scenario} {s.label}: {s.summary['first_error']} (x{s.summary['errors']:,})"
            for s in sides.values() if s.summary.get("first_error")]


# --- the chart -----------------------------------------------------------------------------

def build_chart(sides: dict[str, Side]) -> str:
    panels: list[chart.LinePanel | chart.BarPanel] = []

    def fd_series(key: str, label: str, color: str, dashed: bool = False) -> chart.Series:
        s = sides[key]
        return chart.Series(f"{label} (peak {s.peak_fds:,})", color,
                            [(t, f) for t, f, _ in s.samples], dashed)

    if all(f"fd-{g}-{i}" in sides for g in ("on", "off") for i in ("stdlib", "litepool")):
        panels.append(chart.LinePanel(
            "1. FD leak: `with sqlite3.connect(p)` every 2 ms", "time since the process started (s)", "open file descriptors",
            [fd_series("fd-on-stdlib", "stdlib, default GC", chart.PEER),
             fd_series("fd-off-stdlib", "stdlib, GC off", chart.PEER, True),
             fd_series("fd-on-litepool", "litepool, default GC", chart.LITEPOOL),
             fd_series("fd-off-litepool", "litepool, GC off", chart.LITEPOOL, True)],
            [(FD_LIMIT, f"ulimit -n {FD_LIMIT} (GC-off runs)")]))
    if "wal-stdlib" in sides and "wal-litepool" in sides:
        series = []
        for key, label, color in (("wal-stdlib", "stdlib sqlite3", chart.PEER),
                                  ("wal-litepool", "litepool", chart.LITEPOOL)):
            s = sides[key]
            series.append(chart.Series(f"{label} (peak {mib(s.peak_wal)})", color,
                                       [(t, w / MIB) for t, _, w in s.samples]))
        panels.append(chart.LinePanel("2. WAL growth: writer + overlapping readers", "time since the process started (s)",
                                      "-wal file size (MiB)", series))
    if "go-mattn" in sides and "go-litepool" in sides:
        ops = {k: sides[k].summary["ops"] / sides[k].summary["t"] for k in ("go-mattn", "go-litepool")}
        panels.append(chart.LinePanel(
            "3. Go: 500 goroutines via database/sql", "time since the process started (s)", "open file descriptors",
            [fd_series("go-mattn", f"mattn/go-sqlite3, {ops['go-mattn']:,.0f} ops/s", chart.PEER),
             fd_series("go-litepool", f"litepool, {ops['go-litepool']:,.0f} ops/s", chart.LITEPOOL)]))
    if "tick-stdlib" in sides and "tick-litepool" in sides:
        a, b = sides["tick-stdlib"].summary, sides["tick-litepool"].summary
        groups = []
        # The p99 (in the table) is left out: one disk stall would flatten the other bars.
        for metric, name in (("median_us", "median wall time"), ("cpu_us_per_tick", "CPU time (process)")):
            groups.append((name, [chart.Bar("stdlib sqlite3", chart.PEER, a[metric], f"{a[metric]:,.0f}"),
                                  chart.Bar("litepool", chart.LITEPOOL, b[metric], f"{b[metric]:,.0f}")]))
        panels.append(chart.BarPanel("4. Per-tick reconnect: cost of one tick", "µs per tick", groups))
    return chart.render(
        "litepool vs what services use today (red: stdlib sqlite3 / mattn, blue: litepool)",
        "each side in its own process on its own temporary database; time from process start to "
        "the end of its work; FDs from /proc/PID/fd, -wal size by stat, every 0.2 s",
        panels)


def save_samples(path: str, sides: dict[str, Side]) -> None:
    with open(path, "w") as f:
        json.dump({k: {"scenario": s.scenario, "label": s.label, "summary": s.summary,
                       "cpu_s": s.cpu_s, "wall_s": s.wall_s, "samples": s.samples}
                   for k, s in sides.items()}, f)


def load_samples(path: str) -> dict[str, Side]:
    with open(path) as f:
        raw = json.load(f)
    return {k: Side(v["scenario"], v["label"], [tuple(x) for x in v["samples"]], v["summary"],
                    v["cpu_s"], v["wall_s"]) for k, v in raw.items()}


def main() -> int:
    p = argparse.ArgumentParser(description="litepool's side-by-side demo")
    p.add_argument("--python", default=sys.executable, help="Python with litepool installed")
    p.add_argument("--go-bin", default="target/demo/bin", help="directory of go-mattn, go-litepool")
    p.add_argument("--from-samples", metavar="JSON",
                   help="no run: rebuild the table and chart from a run's samples.json")
    args = p.parse_args()
    secs = float(os.environ.get("LITEPOOL_DEMO_SECS", "20"))
    scenarios = [s.strip() for s in os.environ.get("LITEPOOL_DEMO_SCENARIOS", ",".join(ALL_SCENARIOS)).split(",")
                 if s.strip()]
    unknown = sorted(set(scenarios) - set(ALL_SCENARIOS))
    if unknown or secs <= 0:
        print(f"LITEPOOL_DEMO_SCENARIOS may name {', '.join(ALL_SCENARIOS)} (got {unknown}); "
              f"LITEPOOL_DEMO_SECS must be > 0 (got {secs:g})", file=sys.stderr)
        return 2
    out = os.path.abspath(os.environ.get("LITEPOOL_DEMO_OUT", "target/demo"))
    os.makedirs(out, exist_ok=True)

    if args.from_samples:
        sides = load_samples(args.from_samples)
        header = f"litepool demo (from {args.from_samples})"
    else:
        demo = Demo(args.python, os.path.abspath(args.go_bin), secs, scenarios)
        started = time.monotonic()
        try:
            demo.run()
        except DemoError as e:
            print(f"\ndemo failed: {e}", file=sys.stderr)
            return 1
        sides = demo.sides
        save_samples(os.path.join(out, "samples.json"), sides)
        header = (f"litepool demo: {time.monotonic() - started:.0f} s of scenarios on "
                  f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")
    errors = first_errors(sides)
    text = (header + "\n\n" + format_table(table_rows(sides))
            + ("\n\nfirst error of each side that had errors:\n" + "\n".join(errors) if errors else ""))
    chart_path = os.path.join(out, "chart.svg")
    table_path = os.path.join(out, "summary.txt")
    with open(chart_path, "w") as f:
        f.write(build_chart(sides))
    with open(table_path, "w") as f:
        f.write(text + "\n")
    print("\n" + text)
    print(f"\ntable: {table_path}\nchart: {chart_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
