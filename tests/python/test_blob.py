"""``Connection.blobopen`` and ``Blob``, compared against the stdlib on the same sequence of
operations (the stdlib on ``:memory:``, litepool on a pooled file), plus ownership: an open
blob keeps its pooled connection, and closing, the GC and closing the connection give it
back."""

import gc
import sqlite3

import pytest

import litepool


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the class is what we compare
        return (type(e), str(e))


def setup(c):
    c.execute("CREATE TABLE b(x BLOB)")
    c.execute("INSERT INTO b VALUES (zeroblob(10))")
    c.execute("INSERT INTO b VALUES (x'000102030405060708090a0b')")
    c.commit()


def scenario(c):
    results = []
    r = results.append
    blob = c.blobopen("b", "x", 1)
    r(outcome(lambda: len(blob)))
    r(outcome(lambda: blob.write(b"abc")))
    r(outcome(lambda: blob.tell()))
    r(outcome(lambda: blob.write(b"x" * 8)))  # past the end: nothing written
    r(outcome(lambda: blob.seek(0)))
    r(outcome(lambda: blob.read()))
    r(outcome(lambda: blob.tell()))
    r(outcome(lambda: blob.seek(-2, 2)))
    r(outcome(lambda: blob.read(5)))
    r(outcome(lambda: blob.seek(-3, 1)))
    r(outcome(lambda: blob.read(1)))
    r(outcome(lambda: blob.seek(11)))
    r(outcome(lambda: blob.seek(-1)))
    r(outcome(lambda: blob.seek(0, 5)))
    r(outcome(lambda: blob[0]))
    r(outcome(lambda: blob[-1]))
    r(outcome(lambda: blob[10]))
    r(outcome(lambda: blob[-11]))
    r(outcome(lambda: blob[1:3]))
    r(outcome(lambda: blob[::3]))
    r(outcome(lambda: blob[5:2]))
    r(outcome(lambda: blob["a"]))
    r(outcome(lambda: blob.__setitem__(0, 65)))
    r(outcome(lambda: blob.__setitem__(0, 256)))
    r(outcome(lambda: blob.__setitem__(0, b"a")))
    r(outcome(lambda: blob.__setitem__(slice(0, 2), b"a")))
    r(outcome(lambda: blob.__setitem__(slice(0, 2), b"zz")))
    r(outcome(lambda: blob.__setitem__(slice(1, 10, 4), b"QRS")))
    r(outcome(lambda: blob.__delitem__(0)))
    r(outcome(lambda: blob.write("text")))
    r(outcome(lambda: blob.write(bytearray(b"12"))))
    r(outcome(lambda: blob[:]))
    r(outcome(lambda: blob.close()))
    r(outcome(lambda: blob.close()))
    r(outcome(lambda: blob.read()))
    r(outcome(lambda: len(blob)))
    r(outcome(lambda: blob[0]))
    r(outcome(lambda: c.execute("SELECT x FROM b WHERE rowid = 1").fetchone()))
    with c.blobopen("b", "x", 2, readonly=True) as ro:
        r(outcome(lambda: ro.read(4)))
        r(outcome(lambda: ro.write(b"a")))
    r(outcome(lambda: ro.read()))
    r(outcome(lambda: c.blobopen("b", "x", 99)))
    r(outcome(lambda: c.blobopen("nope", "x", 1)))
    r(outcome(lambda: c.blobopen("b", "nope", 1)))
    return results


def test_blob_behaves_as_the_stdlib(db):
    std = sqlite3.connect(":memory:")
    lp = litepool.connect(db)
    setup(std)
    setup(lp)
    expected = scenario(std)
    got = scenario(lp)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g == e, f"step {i}: stdlib {e!r}, litepool {g!r}"
    assert len(got) == len(expected)
    std.close()
    lp.close()


def test_blob_negative_step_slices(db):
    # The stdlib 3.11 fails these with SystemError; litepool returns the bytes.
    c = litepool.connect(db)
    setup(c)
    with c.blobopen("b", "x", 2) as blob:
        assert blob[::-4] == bytes([11, 7, 3])
        blob[::-5] = b"xyz"
        assert blob[:] == b"\x00z\x02\x03\x04\x05y\x07\x08\x09\x0ax"
    c.close()


def test_blob_is_exported():
    assert litepool.Blob is type(_open_mem_blob())


def _open_mem_blob():
    c = litepool.connect(":memory:")
    setup(c)
    return c.blobopen("b", "x", 1)


def test_an_open_blob_keeps_the_writer_until_closed(db):
    c = litepool.connect(db)
    setup(c)
    pool = c.pool
    blob = c.blobopen("b", "x", 1)
    assert pool.stats()["writer_in_use"]
    other = litepool.connect(db, timeout=0.2)
    with pytest.raises(litepool.OperationalError, match="writer busy"):
        other.execute("INSERT INTO b VALUES (1)")
    blob.close()
    assert not pool.stats()["writer_in_use"]
    other.execute("INSERT INTO b VALUES (1)")
    other.commit()
    other.close()
    c.close()


def test_a_collected_blob_gives_its_connection_back(db):
    c = litepool.connect(db)
    setup(c)
    pool = c.pool
    blob = c.blobopen("b", "x", 1)
    assert pool.stats()["writer_in_use"]
    del blob
    gc.collect()
    assert not pool.stats()["writer_in_use"]
    c.close()


def test_closing_the_connection_closes_its_blobs(db):
    c = litepool.connect(db)
    setup(c)
    pool = c.pool
    blob = c.blobopen("b", "x", 1, readonly=True)
    c.close()
    assert not pool.stats()["writer_in_use"]
    assert pool.stats()["readers_in_use"] == 0
    with pytest.raises(litepool.ProgrammingError,
                       match="Cannot operate on a closed database."):
        blob.read()


def test_blob_writes_are_seen_after_commit(db):
    c = litepool.connect(db)
    setup(c)
    with c.blobopen("b", "x", 1) as blob:
        blob.write(b"hello")
    c.commit()
    other = litepool.connect(db)
    assert other.execute("SELECT x FROM b WHERE rowid = 1").fetchone()[0][:5] == b"hello"
    other.close()
    c.close()
