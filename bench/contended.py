"""The point select of every host, idle and beside busy processes (issue 16).

    python3 bench/contended.py --rust BIN --python PY --go-dir DIR [--out DIR] [--rounds 3]

For each load — idle; one busy process at nice 0; one per CPU at nice 0; one per CPU at
nice 19 — runs the same point select (`SELECT v FROM kv WHERE id = ?` over 10,000 rows, one
reused connection) on each side in a process of its own, alternating the sides round by
round: Rust (rusqlite on the caller's thread / litepool, `examples/point_select.rs`), Python
(stdlib sqlite3 / apsw / litepool, `bench/python/bench.py --worker`), Go (mattn / modernc /
litepool through database/sql and its native API, `bench/go`). A busy process is a Python
`while True: pass`, so the machine's other work competes for the CPUs at the same priority
as the program (nice 0) or below it (nice 19).

Prints, per load, the median wall and process CPU µs per query with the spread (min–max) of
the rounds, the context switches per query of all the side's threads (the Rust and Python
sides report them), and speed = peer wall / litepool wall (above 1.0: litepool faster);
writes the tables to DIR/contended.md (DIR defaults to target/bench). LITEPOOL_BENCH_SCALE
multiplies the query counts.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_PY = os.path.join(HERE, "python", "bench.py")
PY_CASE = "point select, reused connection"


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else default


def busy(count, nice):
    """`count` busy processes at `nice`; the caller terminates them."""
    code = "import os, sys, time\nos.nice(int(sys.argv[1]))\nend = time.time() + 900\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code, str(nice)]) for _ in range(count)]


def run_json(argv, env=None):
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def switches(line):
    """Context switches per query of all the side's threads, when it reports them."""
    return line["vcsw"] + line["ivcsw"] if "vcsw" in line else None


def rust_side(binary, side, n):
    def run(path):
        (line,) = run_json([binary, side, path, str(n)])
        return line["wall_ns"] / 1e3, line["cpu_ns"] / 1e3, switches(line)
    return run


def python_side(python, module, n):
    def run(path):
        line = run_json([python, BENCH_PY, "--worker", module, PY_CASE, path, str(n)])[-1]
        return line["wall"] * 1e6, line["cpu"] * 1e6, switches(line)
    return run


def go_side(binary, impl, n):
    def run(_path):
        env = dict(os.environ, LITEPOOL_BENCH_CASE="point select", LITEPOOL_BENCH_OPS=str(n))
        for line in run_json([binary], env):
            if line.get("impl") == impl and line.get("case") == "point select":
                if "error" in line:
                    raise SystemExit(f"{impl}: {line['error']}")
                return line["wall_ns"] / 1e3, line["cpu_ns"] / 1e3, None
        raise SystemExit(f"{binary} printed no point select for {impl}")
    return run


def python_setup(python, path):
    subprocess.run(
        [python, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(BENCH_PY)!r}); "
         f"import bench; bench.setup({path!r})"],
        check=True,
    )


def hosts(scale):
    """(host, peer names, litepool names, {name: runner}, setup) for each host present."""
    found = []
    rust = arg("--rust")
    if rust and os.path.exists(rust):
        n = max(1000, int(40_000 * scale))
        found.append(("Rust", ["rusqlite"], ["litepool"],
                      {s: rust_side(rust, s, n) for s in ("rusqlite", "litepool")}, None))
    python = arg("--python")
    if python:
        n = max(1000, int(20_000 * scale))
        has_apsw = subprocess.run([python, "-c", "import apsw"], capture_output=True).returncode == 0
        peers = ["sqlite3"] + (["apsw"] if has_apsw else [])
        found.append(("Python", peers, ["litepool"],
                      {m: python_side(python, m, n) for m in peers + ["litepool"]},
                      lambda path: python_setup(python, path)))
    go_dir = arg("--go-dir")
    if go_dir and os.path.isdir(go_dir):
        n = max(1000, int(20_000 * scale))
        runners = {impl: go_side(os.path.join(go_dir, impl), impl, n) for impl in ("mattn", "modernc")}
        for impl in ("litepool", "litepool-native"):
            runners[impl] = go_side(os.path.join(go_dir, "litepool"), impl, n)
        found.append(("Go", ["mattn", "modernc"], ["litepool", "litepool-native"], runners, None))
    return found


def measure(host, rounds, tmp):
    """Each side's samples; every run gets a fresh copy of the host's database."""
    name_of_host, _, _, runners, setup = host
    template = os.path.join(tmp, f"{name_of_host}.db")
    if setup and not os.path.exists(template):
        setup(template)
    samples = {name: [] for name in runners}
    for r in range(rounds):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for name in order:
            path = os.path.join(tmp, f"{name_of_host}-{name}-{r}.db")
            if setup:
                shutil.copyfile(template, path)
            samples[name].append(runners[name](path))
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
    return samples


def fmt(values):
    med = statistics.median(values)
    return f"{med:.2f} ({min(values):.2f}–{max(values):.2f})"


def table(found, results):
    lines = ["| host | side | wall µs per query, median (range) | CPU µs per query | context switches per query | speed vs peer | CPU vs peer |",
             "| :-- | :-- | --: | --: | --: | --: | --: |"]
    for host, peers, ours, _, _ in found:
        samples = results[host]
        walls = {k: [w for w, _, _ in v] for k, v in samples.items()}
        cpus = {k: [c for _, c, _ in v] for k, v in samples.items()}
        csws = {k: [s for _, _, s in v if s is not None] for k, v in samples.items()}
        for name in peers + ours:
            if name in ours:
                speed = " / ".join(f"{statistics.median(walls[p]) / statistics.median(walls[name]):.2f}× {p}" for p in peers)
                cpu = " / ".join(f"{statistics.median(cpus[name]) / statistics.median(cpus[p]):.2f}× {p}" for p in peers)
            else:
                speed = cpu = ""
            csw = f"{statistics.median(csws[name]):.2f}" if csws[name] else ""
            lines.append(f"| {host} | {name} | {fmt(walls[name])} | {fmt(cpus[name])} | {csw} | {speed} | {cpu} |")
    return "\n".join(lines)


def main():
    scale = float(os.environ.get("LITEPOOL_BENCH_SCALE", "1"))
    rounds = int(arg("--rounds", "3"))
    ncpu = os.cpu_count() or 1
    loads = [("idle", 0, 0), ("1 busy process, nice 0", 1, 0),
             (f"{ncpu} busy processes, nice 0 (every CPU busy)", ncpu, 0),
             (f"{ncpu} busy processes, nice 19", ncpu, 19)]
    found = hosts(scale)
    if not found:
        raise SystemExit("no host to measure: pass --rust, --python and/or --go-dir")
    out_md = [f"Point select, one reused connection; {rounds} alternating rounds per side, "
              "median (min–max). Speed = peer wall / litepool wall (above 1.0: litepool "
              "faster); CPU = litepool CPU / peer CPU (below 1.0: litepool uses less). "
              f"{ncpu} CPUs."]
    with tempfile.TemporaryDirectory() as tmp:
        for label, count, nice in loads:
            procs = busy(count, nice)
            try:
                time.sleep(0.3)
                results = {host[0]: measure(host, rounds, tmp) for host in found}
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait()
            section = f"\n**{label}**\n\n" + table(found, results)
            print(section, flush=True)
            out_md.append(section)
    out = arg("--out", os.path.join(HERE, "..", "target", "bench"))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "contended.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(out_md) + "\n")


if __name__ == "__main__":
    main()
