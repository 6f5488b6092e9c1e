"""Pool.stats() / Pool.metrics() / Pool.checkpoint() and litepool.prometheus, checked
against the core's metric list (Pool.metrics()) and the stats the core records."""

import os

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import litepool
from litepool.prometheus import LitepoolCollector

CHECKPOINT_OK = 'checkpoints_total{mode="truncate",result="ok"}'


def key(name, labels):
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def scrape(collector):
    """generate_latest of a registry holding only the collector, parsed back:
    {family name: (type, help, {(path, labels...): value})}."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        samples = {}
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        out[family.name] = (family.type, family.documentation, samples)
    return text, out


def write_rows(pool, n):
    c = pool.connect()
    c.execute("CREATE TABLE IF NOT EXISTS t(x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(n)])
    c.commit()
    c.close()


def test_stats_has_every_core_metric_and_the_old_keys(db):
    with litepool.open(db, max_readers=3) as pool:
        write_rows(pool, 10)
        metrics = pool.metrics()
        stats = pool.stats()
        names = {name for name, *_ in metrics}
        # The metrics the hand-copied dict lacked.
        for name in ("checkpoints_total", "wal_bytes", "wal_bytes_high_water",
                     "group_commit_retries_total", "reader_holdbacks_total",
                     "seconds_since_wal_reset", "checkpoint_consecutive_failures"):
            assert name in names
        for name, kind, help_text, labels, value in metrics:
            assert kind in ("counter", "gauge") and help_text
            assert key(name, labels) in stats, key(name, labels)
        assert len({key(n, lab) for n, _, _, lab, _ in metrics}) == len(metrics)
        # The earlier short names keep their meaning and type.
        assert stats["path"] == os.path.realpath(db)
        assert stats["max_readers"] == 3
        assert stats["acquires"] == stats["acquires_total"] > 0
        assert stats["writer_open"] is True and stats["closed"] is False
        assert stats["connections_open"] == sum(
            stats[key("connections_open", {"role": r})] for r in ("writer", "reader", "private"))
        for old in ("readers_open", "readers_in_use", "private_open", "waiters", "waits",
                    "total_wait", "max_wait", "timeouts", "statements_reset_on_return",
                    "rollbacks_on_return", "group_commits", "group_commit_writes", "fds",
                    "writer_in_use"):
            assert old in stats


def test_checkpoint_runs_through_the_core(db):
    """The core's checkpoint counts the run and holds new reads back for TRUNCATE; the raw
    PRAGMA it replaces did neither."""
    with litepool.open(db, checkpoint="external") as pool:
        write_rows(pool, 500)
        before = pool.stats()
        assert before["wal_bytes"] > 0
        busy, log, done = pool.checkpoint("truncate")
        assert busy == 0 and log == done
        after = pool.stats()
        assert after[CHECKPOINT_OK] == before[CHECKPOINT_OK] + 1
        assert after["reader_holdbacks_total"] == before["reader_holdbacks_total"] + 1
        assert after["last_checkpoint_log_frames"] == log
        assert os.path.getsize(db + "-wal") == 0
        with pytest.raises(ValueError):
            pool.checkpoint("SOMETIMES")


def test_checkpoint_of_a_memory_pool_is_not_supported():
    with litepool.open(":memory:") as pool:
        with pytest.raises(litepool.NotSupportedError):
            pool.checkpoint("PASSIVE")


def test_scrape_matches_the_core_list(tmp_path):
    a = litepool.open(str(tmp_path / "a.db"))
    b = litepool.open(str(tmp_path / "b.db"))
    try:
        write_rows(a, 100)
        write_rows(b, 5)
        a.checkpoint("TRUNCATE")
        text, families = scrape(LitepoolCollector())
        # The text format names the core's counters as the core's own rendering does.
        assert "# TYPE litepool_checkpoints_total counter" in text
        assert "# TYPE litepool_wal_bytes gauge" in text
        for pool in (a, b):
            for name, kind, help_text, labels, value in pool.metrics():
                # prometheus_client's parser names a counter's family without _total.
                family = "litepool_" + (name.removesuffix("_total") if kind == "counter" else name)
                ftype, fhelp, samples = families[family]
                assert (ftype, fhelp) == (kind, help_text)
                sample = "litepool_" + name if kind == "gauge" else family + "_total"
                labelset = tuple(sorted({"path": pool.path, **labels}.items()))
                assert (sample, labelset) in samples, (sample, labelset)
        # Other tests' pools may still be open in this process: count those of a and b.
        ours = [labels for _, _, s in families.values() for _, labels in s
                if dict(labels)["path"] in (a.path, b.path)]
        assert len(ours) == 2 * len(a.metrics())
        # Values are the pool's: the checkpoint counters do not move between two reads.
        ok = (("mode", "truncate"), ("path", a.path), ("result", "ok"))
        assert families["litepool_checkpoints"][2][("litepool_checkpoints_total", ok)] == \
            a.stats()[CHECKPOINT_OK] == 1
        b.close()
        _, families = scrape(LitepoolCollector())
        paths = {dict(labels)["path"] for _, _, s in families.values() for _, labels in s}
        assert a.path in paths and b.path not in paths
    finally:
        a.close()
        b.close()


def test_collector_of_given_pools_covers_memory_pools(db):
    with litepool.open(":memory:") as mem, litepool.open(db) as pool:
        _, families = scrape(LitepoolCollector([mem]))
        paths = {dict(labels)["path"] for _, _, s in families.values() for _, labels in s}
        assert paths == {mem.path}
        assert pool.path not in paths
    _, families = scrape(LitepoolCollector([mem]))
    assert families == {}


def test_connect_pools_are_collected(db):
    c = litepool.connect(db)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    _, families = scrape(LitepoolCollector())
    paths = {dict(labels)["path"] for _, _, s in families.values() for _, labels in s}
    assert os.path.realpath(db) in paths
    c.close()
