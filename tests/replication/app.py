"""The Python application of the replication test: writes numbered rows through litepool, one
autocommit INSERT per commit, and appends "seq time_ns" to the ack log after each commit
returned (an acknowledged commit). Runs until killed.

    python app.py DB ACKS CHECKPOINT_MODE PAYLOAD_BYTES PAUSE_SECONDS
"""

import hashlib
import os
import sys
import time

import litepool


def payload_of(seq, size):
    """The row's payload, a function of its number, so a restored copy checks itself: the
    SHA-256 of the decimal number, repeated to size bytes (run.py computes the same)."""
    digest = hashlib.sha256(str(seq).encode()).digest()
    return (digest * (size // len(digest) + 1))[:size]


def main():
    db, acks, mode, size, pause = sys.argv[1:6]
    size, pause = int(size), float(pause)
    pool = litepool.open(db, checkpoint=mode)
    conn = pool.connect(isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS acked(seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    seq = conn.execute("SELECT coalesce(max(seq), 0) FROM acked").fetchone()[0]
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print(f"app: writing from seq {seq + 1}", flush=True)
    while True:
        seq += 1
        payload = payload_of(seq, size)
        while True:
            try:
                conn.execute("INSERT INTO acked VALUES (?, ?)", (seq, payload))
                break
            except litepool.OperationalError as e:
                # "database is locked" while Litestream checkpoints: not committed, retried.
                print(f"app: seq {seq}: {e}; retrying", flush=True)
                time.sleep(0.01)
        os.write(fd, f"{seq} {time.time_ns()}\n".encode())
        time.sleep(pause)


if __name__ == "__main__":
    main()
