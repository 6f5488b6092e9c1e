"""`make demo-replication`: write through litepool while Litestream replicates, SIGKILL both,
restore on "another machine" (a new directory), count the rows. Uses run.py's pieces."""

import argparse
import os
import sqlite3
import time

import run


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--litestream", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    args.goapp = None
    scene = run.Scenario(args, "python", "external", name="demo")
    sampler = run.WalSampler(scene.db + "-wal")
    sampler.start()
    print(f"1. A Python process writes rows through litepool (checkpoint=external) into\n"
          f"   {scene.db}; `litestream replicate` streams it to {scene.replica}.")
    scene.start_app()
    scene.wait_for_db()
    scene.start_litestream()
    time.sleep(args.seconds)
    print(f"2. After {args.seconds:.0f} s: SIGKILL the application, then Litestream.")
    scene.kill("app")
    time.sleep(0.3)
    scene.kill("litestream")
    sampler.stop.set()
    sampler.join()
    result = scene.check(1)
    restored = os.path.join(scene.dir, "restore-1", "restored.db")
    print(f"3. `litestream restore -o {restored} file://{scene.replica}` (the second machine).")
    rows = 0
    if os.path.exists(restored):
        con = sqlite3.connect(f"file:{restored}?mode=ro", uri=True)
        rows = con.execute("SELECT count(*) FROM acked").fetchone()[0]
        con.close()
    print(f"4. Rows acknowledged by the application:          {result['acked']:>7}")
    print(f"   Owed by Litestream's last reported position:    {result['required']:>7}"
          f"  (TXID {result['reported_txid']})")
    print(f"   Rows in the restored copy:                      {rows:>7}")
    print(f"   integrity_check, rows 1..k, payloads, owed rows: "
          f"{'ok' if result['ok'] else 'FAILED: ' + '; '.join(result['problems'])}")
    print(f"   Primary -wal: high water {run.mib(sampler.high)}, now "
          f"{run.mib(os.path.getsize(scene.db + '-wal'))} (Litestream checkpoints it)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
