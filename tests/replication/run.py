"""Litestream replicating a database that litepool writes, with SIGKILLs (README.md here).

For each host (Python: app.py, Go: goapp) and each checkpoint mode (litepool's `external`,
where Litestream alone checkpoints, and litepool's own `timed` policy), for several rounds:
start the application and `litestream replicate` (file replica), SIGKILL Litestream and/or
the application at random moments (restarting them), then SIGKILL both; `litestream restore`
the replica into a new directory and check the copy:

- `PRAGMA integrity_check` is ok;
- its rows are 1..k with the payload each row number implies (no hole, no torn row);
- k covers every commit the application acknowledged before the sync that produced the
  last LTX file Litestream reported uploaded (its "sync" log line for that TXID, the
  earliest one: a sync reads the WAL after logging it).

The primary's -wal size is sampled every 50 ms. Prints a table and writes the figures as JSON
(--json). Exits 1 when a check of a --must-pass mode (default: external) failed; the other
modes are run to show what happens (RELIABILITY.md).
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from calendar import timegm

HERE = os.path.dirname(os.path.abspath(__file__))
PAYLOAD = 1024
PAUSE = 0.004

CONFIG = """logging:
  level: debug
  type: json
dbs:
  - path: {db}
    replicas:
      - type: file
        path: {replica}
"""


def payload_of(seq):
    digest = hashlib.sha256(str(seq).encode()).digest()
    return (digest * (PAYLOAD // len(digest) + 1))[:PAYLOAD]


TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def time_ns(text):
    """RFC 3339 with up to nanoseconds (slog's JSON time) to Unix nanoseconds."""
    m = TIME.match(text)
    if not m:
        raise ValueError(f"bad time {text!r}")
    secs = timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = int((m.group(2) or "0").ljust(9, "0")[:9])
    zone = m.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return secs * 1_000_000_000 + frac


class Litestream:
    """Reads Litestream's JSON log: when each TXID's sync started, which TXIDs were uploaded,
    its own checkpoints and snapshots."""

    def __init__(self, log_path):
        self.sync_start = {}
        self.uploaded = 0
        self.snapshots = 0
        self.checkpoints = {}
        self.limited = 0
        # Starts of Litestream whose first look at the WAL found it restarted (new salt):
        # someone else checkpointed and reset it while Litestream was down.
        self.starts = 0
        self.restarted_while_down = 0
        first_verify = False
        with open(log_path, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                msg = rec.get("msg")
                if msg == "initialized db":
                    self.starts += 1
                    first_verify = True
                elif msg == "verify" and first_verify and "saltMatch" in rec:
                    first_verify = False
                    self.restarted_while_down += rec["saltMatch"] is False
                elif msg == "sync" and "txid" in rec:
                    txid = int(rec["txid"], 16)
                    when = time_ns(rec["time"])
                    self.sync_start[txid] = min(when, self.sync_start.get(txid, when))
                    if rec.get("snap") == "true":
                        self.snapshots += 1
                elif msg == "ltx file uploaded":
                    self.uploaded = max(self.uploaded, int(rec["maxTXID"], 16)
                                        if isinstance(rec["maxTXID"], str) else rec["maxTXID"])
                elif msg == "checkpoint":
                    self.checkpoints[rec["mode"]] = self.checkpoints.get(rec["mode"], 0) + 1
                elif msg == "replica sync limited":
                    self.limited += 1


def read_acks(path):
    acks = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:  # a line cut by the kill is not an acknowledgement
                    acks.append((int(parts[0]), int(parts[1])))
    return acks


class WalSampler(threading.Thread):
    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.high = 0
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                size = os.path.getsize(self.path)
            except OSError:
                size = 0
            self.high = max(self.high, size)
            self.samples.append(size)
            self.stop.wait(0.05)


class Scenario:
    def __init__(self, args, host, mode, name=None):
        self.args = args
        self.host = host
        self.mode = mode
        self.dir = os.path.join(args.out, name or f"{host}-{mode}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.db = os.path.join(self.dir, "primary.db")
        self.acks = os.path.join(self.dir, "acks.log")
        self.replica = os.path.join(self.dir, "replica")
        self.config = os.path.join(self.dir, "litestream.yml")
        self.ls_log = os.path.join(self.dir, "litestream.log")
        self.app_log = os.path.join(self.dir, "app.log")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(db=self.db, replica=self.replica))
        self.app = None
        self.ls = None
        self.kills = {"app": 0, "litestream": 0}
        self.died = []

    def spawn(self, argv, log):
        out = open(log, "ab")
        try:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        finally:
            out.close()

    def start_app(self):
        if self.host == "python":
            argv = [self.args.python, os.path.join(HERE, "app.py")]
        else:
            argv = [self.args.goapp]
        argv += [self.db, self.acks, self.mode, str(PAYLOAD), str(PAUSE)]
        self.app = self.spawn(argv, self.app_log)

    def start_litestream(self):
        self.ls = self.spawn([self.args.litestream, "replicate", "-config", self.config],
                             self.ls_log)

    def kill(self, which):
        proc = getattr(self, which if which == "app" else "ls")
        if proc is not None and proc.poll() is not None:
            self.died.append(f"{which} exited by itself with status {proc.returncode}")
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.kills[which] += 1
        if which == "app":
            self.app = None
        else:
            self.ls = None

    def wait_for_db(self):
        deadline = time.monotonic() + 30
        while not os.path.exists(self.acks):
            if self.app.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.host} app did not start: see {self.app_log}")
            time.sleep(0.05)

    def round(self, n, rng):
        """One round: both run, random kills mid-round, both killed at the end."""
        self.start_app()
        self.wait_for_db()
        self.start_litestream()
        length = rng.uniform(self.args.min_round, self.args.max_round)
        start = time.monotonic()
        events = []
        if rng.random() < 0.6:
            events.append((rng.uniform(0.8, length - 0.8), "litestream"))
        if rng.random() < 0.4:
            events.append((rng.uniform(0.8, length - 0.8), "app"))
        for at, which in sorted(events):
            time.sleep(max(0.0, start + at - time.monotonic()))
            self.kill(which)
            time.sleep(rng.uniform(0.2, 1.0))
            if which == "app":
                self.start_app()
            else:
                self.start_litestream()
        time.sleep(max(0.0, start + length - time.monotonic()))
        last = ["app", "litestream"]
        rng.shuffle(last)
        self.kill(last[0])
        time.sleep(rng.uniform(0.0, 0.5))
        self.kill(last[1])
        return self.check(n)

    def check(self, n):
        ls = Litestream(self.ls_log)
        acks = read_acks(self.acks)
        result = {
            "round": n, "acked": len(acks), "acked_max": acks[-1][0] if acks else 0,
            "reported_txid": ls.uploaded, "required": 0, "restored": None, "ok": True,
            "problems": [],
        }
        if self.died:
            result["problems"].append(f"{', '.join(self.died)} (see {self.dir})")
            result["ok"] = False
            self.died = []
            return result
        if ls.uploaded == 0:
            result["problems"].append("Litestream reported no upload")
            result["ok"] = False
            return result
        since = ls.sync_start.get(ls.uploaded)
        if since is None:
            result["problems"].append(f"no sync line for TXID {ls.uploaded}")
            result["ok"] = False
            return result
        result["required"] = max((seq for seq, at in acks if at < since), default=0)
        out_dir = os.path.join(self.dir, f"restore-{n}")
        os.makedirs(out_dir)
        restored = os.path.join(out_dir, "restored.db")
        proc = subprocess.run(
            [self.args.litestream, "restore", "-o", restored, "file://" + self.replica],
            capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            result["problems"].append(f"restore failed: {proc.stderr.strip()[-500:]}")
            result["ok"] = False
            return result
        con = sqlite3.connect(f"file:{restored}?mode=ro", uri=True)
        try:
            integrity = con.execute("PRAGMA integrity_check").fetchall()
            count, low, high = con.execute(
                "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM acked"
            ).fetchone()
            bad = sum(1 for seq, payload in con.execute("SELECT seq, payload FROM acked")
                      if payload != payload_of(seq))
        finally:
            con.close()
        result["restored"] = high
        if integrity != [("ok",)]:
            lines = [line for row in integrity for line in str(row[0]).splitlines()]
            result["problems"].append(
                f"integrity_check: {len(lines)} lines, first: {' / '.join(lines[:3])[:300]}")
        if count != high or (count and low != 1):
            result["problems"].append(f"rows are not 1..k: {count} rows, {low}..{high}")
        if bad:
            result["problems"].append(f"{bad} rows with a wrong payload")
        if high < result["required"]:
            result["problems"].append(
                f"acknowledged commits up to {result['required']} were replicated "
                f"(TXID {ls.uploaded}), the restored copy ends at {high}")
        result["ok"] = not result["problems"]
        return result

    def run(self, rng):
        sampler = WalSampler(self.db + "-wal")
        sampler.start()
        began = time.monotonic()
        rounds = []
        try:
            for n in range(1, self.args.rounds + 1):
                rounds.append(self.round(n, rng))
        finally:
            for which in ("app", "litestream"):
                if getattr(self, "app" if which == "app" else "ls") is not None:
                    self.kill(which)
            sampler.stop.set()
            sampler.join()
        ls = Litestream(self.ls_log)
        samples = sorted(sampler.samples) or [0]
        return {
            "host": self.host, "mode": self.mode, "seconds": round(time.monotonic() - began, 1),
            "rounds": rounds, "kills": self.kills,
            "wal_high_water": sampler.high,
            "wal_median": samples[len(samples) // 2],
            "wal_final": os.path.getsize(self.db + "-wal") if os.path.exists(self.db + "-wal") else 0,
            "litestream_checkpoints": ls.checkpoints, "litestream_snapshots": ls.snapshots,
            "sync_limited": ls.limited, "litestream_starts": ls.starts,
            "wal_restarted_while_litestream_down": ls.restarted_while_down,
        }


def unchecked_growth(args, host, seconds):
    """The control: checkpoint=external with no Litestream, so nobody checkpoints."""
    scenario = Scenario(args, host, "external", name=f"{host}-control")
    scenario.start_app()
    scenario.wait_for_db()
    time.sleep(seconds)
    scenario.kill("app")
    acks = read_acks(scenario.acks)
    return {"host": host, "seconds": seconds, "acked": len(acks),
            "wal": os.path.getsize(scenario.db + "-wal")}


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--litestream", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--goapp")
    ap.add_argument("--hosts", default="python,go")
    ap.add_argument("--modes", default="external,timed")
    ap.add_argument("--must-pass", default="external",
                    help="modes whose checks decide the exit status; the others are shown")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--min-round", type=float, default=3.0)
    ap.add_argument("--max-round", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--control-seconds", type=float, default=8.0,
                    help="run the first host this long with nobody checkpointing (0: skip)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"replication test: seed {seed}, {args.rounds} rounds per scenario, "
          f"litestream {subprocess.run([args.litestream, 'version'], capture_output=True, text=True).stdout.strip()}")
    results = []
    for host in args.hosts.split(","):
        if host == "go" and not args.goapp:
            ap.error("--goapp is needed for the go host")
        for mode in args.modes.split(","):
            scenario = Scenario(args, host, mode)
            res = scenario.run(rng)
            results.append(res)
            for r in res["rounds"]:
                status = "ok" if r["ok"] else "FAIL: " + "; ".join(r["problems"])
                print(f"  {host:6} {mode:8} round {r['round']}: acked {r['acked']:6} "
                      f"(last {r['acked_max']}), replicated TXID {r['reported_txid']}, "
                      f"required {r['required']}, restored {r['restored']}: {status}")
            print(f"  {host:6} {mode:8} -wal: high water {mib(res['wal_high_water'])}, "
                  f"median {mib(res['wal_median'])}, at the end {mib(res['wal_final'])}; "
                  f"kills {res['kills']}; litestream checkpoints {res['litestream_checkpoints']}, "
                  f"snapshots {res['litestream_snapshots']}; WAL restarted by another "
                  f"checkpointer while Litestream was down: {res['wal_restarted_while_litestream_down']}"
                  f" of {res['litestream_starts']} starts; {res['seconds']} s", flush=True)
    control = None
    if args.control_seconds > 0:
        host = args.hosts.split(",")[0]
        control = unchecked_growth(args, host, args.control_seconds)
        print(f"  control: {host} with checkpoint=external and no Litestream: -wal "
              f"{mib(control['wal'])} after {control['acked']} commits in "
              f"{control['seconds']:.0f} s (nobody checkpoints: it grows with every commit)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": seed, "results": results, "control": control}, f, indent=1)
    must = args.must_pass.split(",")
    for mode in args.modes.split(","):
        if mode not in must:
            shown = [r for res in results if res["mode"] == mode for r in res["rounds"]]
            lost = sum(not r["ok"] for r in shown)
            print(f"checkpoint={mode} (shown, not required): {lost} of {len(shown)} restored "
                  f"copies failed a check")
    checks = [r for res in results if res["mode"] in must for r in res["rounds"]]
    failed = [r for r in checks if not r["ok"]]
    print(f"checkpoint={','.join(must)}: {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
