"""Rewrites BENCHMARKS.md's generated sections from the raw outputs of `make bench`.

    python3 bench/report.py OUT_DIR BENCHMARKS.md

OUT_DIR holds what the bench targets wrote (machine.md, rust.jsonl + rust.txt, writers.txt, wal.txt,
python.json + python.md, go.md + *.jsonl, aio.txt, contended.md). A section lives between
`<!-- BEGIN generated: NAME -->` and `<!-- END generated: NAME -->`; a section whose inputs are
missing keeps its previous text, so one bench can be re-run and reported on its own. The
targets section quotes every issue-8 target against the figures present.
"""

import json
import os
import re
import sys


def read(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def table_lines(text):
    """The Markdown table lines (and the lines right after them) of a bench's stdout."""
    return "\n".join(line for line in text.splitlines() if line.startswith("|"))


def rust_section(out):
    txt = read(out, "rust.txt")
    if txt is None:
        return None
    head = [line for line in txt.splitlines() if re.match(r"^(SQLite|method|setup):", line)]
    notes = [line for line in txt.splitlines() if line.startswith(("  ", "WARNING"))]
    return "\n".join(
        ["Command: `make bench-rust` (`cargo bench --bench handoff`). Ratio = litepool / rusqlite "
         "(below 1.0: litepool faster).", "", "```", *head, "```", "", table_lines(txt), "",
         "```", *notes, "```"]
    )


def writers_section(out):
    txt = read(out, "writers.txt")
    if txt is None:
        return None
    lines = [line for line in txt.splitlines() if line.strip()]
    head = [line for line in lines if line.startswith("8 threads")]
    return "\n".join(
        ["Command: `make bench-writers` (`cargo bench --bench writers`): group commit against "
         "rusqlite with a connection per thread.", "", *head, "", table_lines(txt)]
    )


def wal_section(out):
    txt = read(out, "wal.txt")
    if txt is None:
        return None
    lines = txt.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    pre = [line for line in lines[:first] if line.strip()]
    post = [line for line in lines[first:] if line.strip() and not line.startswith("|")]
    return "\n".join(
        ["Command: `make bench-wal` (`BENCH_WAL_SCALE=1 make bench-wal` for the full 60 s per "
         "side; `make bench` runs 0.25 of it).", "", "```", *pre, "```", "", table_lines(txt),
         "", "```", *post, "```"]
    )


def simple_section(out, name, command):
    txt = read(out, name)
    if txt is None:
        return None
    return f"Command: `{command}`.\n\n{txt.strip()}"


def aio_section(out):
    txt = read(out, "aio.txt")
    if txt is None:
        return None
    lines = txt.strip().splitlines()
    # Drop make's and maturin's lines before the table.
    start = next((i for i, line in enumerate(lines) if line.startswith(("case", "|"))), 0)
    body = "\n".join(lines[start:])
    if not body.startswith("|"):
        body = f"```\n{body}\n```"
    return f"Command: `make bench-aio`.\n\n{body}"


def jsonl(out, name):
    txt = read(out, name)
    if txt is None:
        return []
    rows = []
    for line in txt.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


def targets_section(out):
    """Each issue-8 target: the figure, the goal, met or not."""
    rows = []

    def add(target, value, goal, met, source):
        rows.append(f"| {target} | {value} | {goal} | {'met' if met else '**not met**'} | {source} |")

    cpu_worse = []
    py = read(out, "python.json")
    if py:
        results = dict((case, row) for case, row in json.loads(py)["results"])

        def py_ratio(case, key="wall"):
            row = results.get(case, {})
            if "sqlite3" in row and "litepool" in row:
                return row["sqlite3"][key] / row["litepool"][key]
            return None

        for case, target, goal in [
            ("point select, reused connection", "Python point select vs stdlib", 2.0),
            ("fetchall 100k rows", "Python fetchall 100k vs stdlib", 1.5),
            ("connect + query + close", "Python connect+query+close vs stdlib", 50.0),
            ("8 threads, each insert + commit",
             "Python 8 concurrent single-row writers, insert + commit() (never merged) vs stdlib", 5.0),
            ("8 threads, autocommit inserts",
             "Python 8 concurrent single-row writers, autocommit (group commit) vs stdlib", 5.0),
        ]:
            r = py_ratio(case)
            if r is not None:
                add(target, f"{r:.2f}×", f"≥ {goal:g}×", r >= goal, "make bench-python")
        for case, row in results.items():
            for peer in ("sqlite3", "apsw"):
                if peer in row and "litepool" in row and row["litepool"]["cpu"] > row[peer]["cpu"]:
                    cpu_worse.append(f"Python {case} vs {peer} ({row[peer]['cpu'] / row['litepool']['cpu']:.2f}×)")
    go = {(r["impl"], r["case"]): r for name in ("mattn.jsonl", "modernc.jsonl", "litepool.jsonl")
          for r in jsonl(out, name) if "wall_ns" in r}
    if go:
        m = go.get(("mattn", "point select"))
        for impl, target, goal in [
            ("litepool", "Go point select, database/sql vs mattn", 1.0),
            ("litepool-native", "Go point select, native API vs mattn", 2.0),
        ]:
            lp = go.get((impl, "point select"))
            if m and lp:
                r = m["wall_ns"] / lp["wall_ns"]
                add(target, f"{r:.2f}×", f"≥ {goal:g}×", r >= goal, "make bench-go")
        for (impl, case), r in go.items():
            if not impl.startswith("litepool"):
                continue
            for peer in ("mattn", "modernc"):
                p = go.get((peer, case))
                if p and r["cpu_ns"] > p["cpu_ns"]:
                    cpu_worse.append(f"Go {case} {impl} vs {peer} ({p['cpu_ns'] / r['cpu_ns']:.2f}×)")
    rust = jsonl(out, "rust.jsonl")
    for r in rust:
        if r["case"].startswith("point query"):
            ratio = r["litepool_wall_ns"] / r["rusqlite_wall_ns"]
            add("Rust pool point query vs rusqlite direct (litepool / rusqlite)", f"{ratio:.2f}×",
                "≤ 1.2×", ratio <= 1.2, "make bench-rust")
        if r["litepool_cpu_ns"] > r["rusqlite_cpu_ns"]:
            cpu_worse.append(f"Rust {r['case']} ({r['rusqlite_cpu_ns'] / r['litepool_cpu_ns']:.2f}×)")
    if not rows:
        return None
    if py or go or rust:
        add("CPU per op never above the peer's", f"{len(cpu_worse)} rows above",
            "0 rows", not cpu_worse, "all")
    lines = ["Ratios are peer / litepool (above 1.0: litepool faster) except the Rust row.", "",
             "| target | measured | goal | | from |", "| :-- | --: | --: | :-- | :-- |", *rows]
    if cpu_worse:
        lines += ["", "Rows where litepool used more CPU per operation than the peer (peer/litepool CPU):", ""]
        lines += [f"- {w}" for w in cpu_worse]
    return "\n".join(lines)


def main():
    out, md = sys.argv[1], sys.argv[2]
    sections = {
        "machine": (lambda: read(out, "machine.md")),
        "targets": (lambda: targets_section(out)),
        "rust": (lambda: rust_section(out)),
        "python": (lambda: simple_section(out, "python.md", "make bench-python")),
        "go": (lambda: simple_section(out, "go.md", "make bench-go")),
        "writers": (lambda: writers_section(out)),
        "wal": (lambda: wal_section(out)),
        "aio": (lambda: aio_section(out)),
        "contended": (lambda: simple_section(out, "contended.md", "make bench-contended")),
        "profile": (lambda: simple_section(out, "profile.md", "make bench-profile")),
    }
    with open(md, encoding="utf-8") as f:
        doc = f.read()
    for name, make in sections.items():
        body = make()
        if body is None:
            print(f"report: no figures for section {name}: left as it was", file=sys.stderr)
            continue
        pattern = re.compile(
            rf"(<!-- BEGIN generated: {name} -->\n).*?(<!-- END generated: {name} -->)", re.S
        )
        if not pattern.search(doc):
            raise SystemExit(f"{md} has no generated section {name}")
        doc = pattern.sub(lambda m: m.group(1) + body.strip() + "\n" + m.group(2), doc)
    with open(md, "w", encoding="utf-8") as f:
        f.write(doc)
    print(f"report: wrote {md}")


if __name__ == "__main__":
    main()
