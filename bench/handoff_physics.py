"""What one point select costs in scheduling, idle and beside busy processes (issue 16,
BENCHMARKS.md "Busy machines"): the Rust and Python point selects of bench/contended.py, each
side in a process of its own, plus, for litepool's Rust side, the scheduler's view of one
extra run under `perf sched record`: how often its threads were switched out and how long a
woken thread waited for a CPU.

    python3 bench/handoff_physics.py --rust BIN --floor BIN --python PY [--rounds 3]

With `--floor` (examples/handoff_floor.rs), each load also gets the bare round trip of two
threads without SQLite: spinning, parking on two CPUs, and parking in turn on one CPU.

Prints a Markdown table per load: wall and process CPU µs per query (median of the rounds,
min–max), context switches per query of all the side's threads (voluntary + involuntary),
and for Rust litepool the switches per query and mean wake-up delay (µs) of the caller and
of the connection thread as `perf sched latency` reports them (left out without perf).
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contended  # noqa: E402

LATENCY = re.compile(r"^\s*(\S+?):(?:\d+|\(\d+\))\s*\|\s*([\d.]+) ms\s*\|\s*(\d+)\s*\|\s*avg:\s*([\d.]+) ms")


def sched(binary, path, n):
    """{thread name: (switches per query, mean wake-up delay µs)} of one traced litepool run."""
    if not shutil.which("perf"):
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "sched.data")
        rec = subprocess.run(["perf", "sched", "record", "-o", data, "--", binary, "litepool", path, str(n)],
                             capture_output=True, text=True)
        if rec.returncode != 0:
            return {}
        out = subprocess.run(["perf", "sched", "latency", "-i", data], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        m = LATENCY.match(line)
        if m and (m.group(1).startswith("litepool-reader") or m.group(1) == os.path.basename(binary)):
            name = "connection thread" if m.group(1).startswith("litepool") else "caller"
            # n is the timed count; the run also warms up with n / 20.
            found[name] = (int(m.group(3)) / (n * 1.05), float(m.group(4)) * 1e3)
    return found


def main():
    rust, python = contended.arg("--rust"), contended.arg("--python")
    rounds = int(contended.arg("--rounds", "3"))
    ncpu = os.cpu_count() or 1
    loads = [("idle", 0, 0), ("1 busy process, nice 0", 1, 0),
             (f"{ncpu} busy processes, nice 0", ncpu, 0), (f"{ncpu} busy processes, nice 19", ncpu, 19)]
    n_rust, n_py = 40_000, 20_000
    sides = [("Rust", "rusqlite", contended.rust_side(rust, "rusqlite", n_rust)),
             ("Rust", "litepool", contended.rust_side(rust, "litepool", n_rust)),
             ("Python", "sqlite3", contended.python_side(python, "sqlite3", n_py)),
             ("Python", "litepool", contended.python_side(python, "litepool", n_py))]
    with tempfile.TemporaryDirectory() as tmp:
        template = os.path.join(tmp, "template.db")
        contended.python_setup(python, template)
        for label, count, nice in loads:
            procs = contended.busy(count, nice)
            try:
                time.sleep(0.3)
                samples = {(host, side): [] for host, side, _ in sides}
                for r in range(rounds):
                    for host, side, run in sides if r % 2 == 0 else reversed(sides):
                        path = os.path.join(tmp, f"{host}-{side}-{r}.db")
                        shutil.copyfile(template, path)
                        samples[(host, side)].append(run(path))
                path = os.path.join(tmp, "sched.db")
                shutil.copyfile(template, path)
                traced = sched(rust, path, n_rust)
                floor = contended.arg("--floor")
                if floor:
                    bare = contended.run_json([floor])[0]
                    packed = contended.run_json(["taskset", "-c", "0", floor])[0]
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait()
            print(f"\n**{label}**\n")
            print("| host | side | wall µs | CPU µs | context switches per query | switches per query, mean wake-up delay µs (perf sched) |")
            print("| :-- | :-- | --: | --: | --: | :-- |")
            for (host, side), got in samples.items():
                wall = contended.fmt([w for w, _, _ in got])
                cpu = contended.fmt([c for _, c, _ in got])
                csw = statistics.median(s for _, _, s in got)
                extra = ""
                if host == "Rust" and side == "litepool":
                    extra = "; ".join(f"{k}: {s:.2f}, {d:.1f}" for k, (s, d) in sorted(traced.items()))
                print(f"| {host} | {side} | {wall} | {cpu} | {csw:.2f} | {extra} |", flush=True)
            if contended.arg("--floor"):
                print(f"\nBare round trip, µs wall / CPU: spinning {bare['spin_wall_ns'] / 1e3:.2f} / "
                      f"{bare['spin_cpu_ns'] / 1e3:.2f}; parking, two CPUs {bare['park_wall_ns'] / 1e3:.2f} / "
                      f"{bare['park_cpu_ns'] / 1e3:.2f}; parking in turn on one CPU "
                      f"{packed['park_wall_ns'] / 1e3:.2f} / {packed['park_cpu_ns'] / 1e3:.2f}", flush=True)


if __name__ == "__main__":
    main()
