"""Per-operation instruction counts from pairs of callgrind runs (see bench/profile.sh).

    python3 bench/callgrind_diff.py DIR SMALL BIG

For every DIR/NAME.SMALL + DIR/NAME.BIG pair: (BIG run - SMALL run) / (BIG - SMALL) for the
program total and for each function's inclusive count; prints a Markdown table per workload
with the top functions, and the total without the hand-off's spinning (an artefact of
callgrind running one thread at a time).
"""

import os
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([\s\d.]+%\)\s+)?(.+?)\s*$")
# Frames that only wrap the workload (entry points, thread start, closure shims).
WRAPPER = re.compile(
    r"below main|__libc_start|lang_start|__rust_begin_short_backtrace|thread_start|"
    r"start_thread|call_once|^main$|^0x[0-9a-f]+$|::main$|^profile::run$|_PyEval_EvalFrame|"
    r"_PyEval_Vector|PyEval_EvalCode|run_mod|run_eval_code_obj|pyrun_file|_PyRun_|Py_RunMain|"
    r"Py_BytesMain|pymain_"
)


def inclusive(path):
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    funcs, total = {}, 0
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        n, name = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in name:
            total = n
        elif ":" in name:
            name = re.sub(r" \[.*\]$", "", name.split(":", 1)[1])
            funcs[name] = max(funcs.get(name, 0), n)
    return total, funcs


def main():
    d, small, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    names = sorted({f.rsplit(".", 1)[0] for f in os.listdir(d)})
    for name in names:
        a, b = os.path.join(d, f"{name}.{small}"), os.path.join(d, f"{name}.{big}")
        if not (os.path.exists(a) and os.path.exists(b)):
            continue
        try:
            (ta, fa), (tb, fb) = inclusive(a), inclusive(b)
        except subprocess.CalledProcessError:
            print(f"#### {name}: no usable profile (callgrind output incomplete)\n")
            continue
        ops = big - small
        per = {f: (fb[f] - fa.get(f, 0)) / ops for f in fb}
        total = (tb - ta) / ops
        spin = max((v for f, v in per.items() if "spin_until" in f), default=0.0)
        spin += max((v for f, v in per.items() if "sched_yield" in f), default=0.0) if spin == 0 else 0
        print(f"#### {name}: {total:,.0f} instructions per operation"
              + (f" ({total - spin:,.0f} without the hand-off's spinning, {spin:,.0f} spinning)" if spin else ""))
        print()
        print("| function (inclusive) | instructions / op |")
        print("| :-- | --: |")
        top = sorted(per.items(), key=lambda kv: -kv[1])
        shown = 0
        for f, v in top:
            if v < total * 0.03 or shown >= 30:
                break
            if WRAPPER.search(f):
                continue
            print(f"| `{f[:110]}` | {v:,.0f} |")
            shown += 1
        print()


if __name__ == "__main__":
    main()
