package litepool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openPool(t *testing.T, opts string) (*Pool, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "native.db")
	dsn := path
	if opts != "" {
		dsn = "file:" + path + "?" + opts
	}
	p, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, path
}

func TestNativeReadWrite(t *testing.T) {
	p, _ := openPool(t, "")
	ctx := context.Background()
	err := p.Write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, team TEXT, seen DATETIME)"); err != nil {
			return err
		}
		for i := 0; i < 1000; i++ {
			res, err := tx.Exec("INSERT INTO users(name, team, seen) VALUES (?, ?, ?)", fmt.Sprint("u", i), "red", time.Unix(int64(i), 0).UTC())
			if err != nil {
				return err
			}
			if res.LastInsertID != int64(i+1) || res.RowsAffected != 1 {
				return fmt.Errorf("result %+v", res)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = p.Read(ctx, func(c *Conn) error {
		for row, err := range c.Query("SELECT id, name, seen FROM users WHERE team = ? ORDER BY id", "red") {
			if err != nil {
				return err
			}
			var id int64
			var name string
			var seen time.Time
			if err := row.Scan(&id, &name, &seen); err != nil {
				return err
			}
			if name != fmt.Sprint("u", id-1) || !seen.Equal(time.Unix(id-1, 0)) {
				return fmt.Errorf("row %d: %s %v", id, name, seen)
			}
			n++
		}
		var count int
		return c.QueryRow("SELECT count(*) FROM users", nil, &count)
	})
	if err != nil || n != 1000 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// A callback error rolls back.
	boom := errors.New("boom")
	if err := p.Write(ctx, func(tx *Tx) error {
		tx.Exec("DELETE FROM users")
		return boom
	}); err != boom {
		t.Fatal(err)
	}
	var count int
	if err := p.Read(ctx, func(c *Conn) error { return c.QueryRow("SELECT count(*) FROM users", nil, &count) }); err != nil || count != 1000 {
		t.Fatal(count, err)
	}
	// No rows, NULL into a plain target, a nullable target.
	err = p.Read(ctx, func(c *Conn) error {
		var s string
		if err := c.QueryRow("SELECT name FROM users WHERE id = -1", nil, &s); err != sql.ErrNoRows {
			return fmt.Errorf("no rows: %v", err)
		}
		if err := c.QueryRow("SELECT NULL", nil, &s); err == nil || !strings.Contains(err.Error(), "NULL") {
			return fmt.Errorf("NULL into string: %v", err)
		}
		var ps *string
		var ns sql.NullString
		if err := c.QueryRow("SELECT NULL, NULL", nil, &ps, &ns); err != nil || ps != nil || ns.Valid {
			return fmt.Errorf("NULL into *string: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Conn used after its callback.
	var leaked *Conn
	p.Read(ctx, func(c *Conn) error { leaked = c; return nil })
	if _, err := leaked.Exec("SELECT 1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("leaked conn: %v", err)
	}
}

// The iteration error reaches the loop body: a statement failing mid-way yields (nil, err).
func TestNativeIteratorError(t *testing.T) {
	p, _ := openPool(t, "")
	rows := 0
	var iterErr error
	err := p.Read(context.Background(), func(c *Conn) error {
		for _, err := range c.Query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000) " +
			"SELECT CASE WHEN x < 1500 THEN x ELSE abs(-9223372036854775807 - 1) END FROM c") {
			if err != nil {
				iterErr = err
				return err
			}
			rows++
		}
		return nil
	})
	if iterErr == nil || err != iterErr || rows != 1499 || !strings.Contains(err.Error(), "integer overflow") {
		t.Fatalf("rows=%d iterErr=%v err=%v", rows, iterErr, err)
	}
	// Cancelled during the iteration.
	ctx, cancel := context.WithCancel(context.Background())
	rows = 0
	err = p.Read(ctx, func(c *Conn) error {
		for _, err := range c.Query(infiniteRows) {
			if err != nil {
				return err
			}
			if rows++; rows == 3000 {
				cancel()
			}
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled iteration: %v after %d rows", err, rows)
	}
	// Breaking out early closes the statement; the pool is fine.
	err = p.Read(context.Background(), func(c *Conn) error {
		for range 3 {
			for _, err := range c.Query(infiniteRows) {
				if err != nil {
					return err
				}
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A panic inside a callback rolls back, returns the connection, and propagates.
func TestNativePanic(t *testing.T) {
	p, _ := openPool(t, "max_readers=1")
	ctx := context.Background()
	if err := p.Write(ctx, func(tx *Tx) error { _, err := tx.Exec("CREATE TABLE t(x)"); return err }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		func() {
			defer func() {
				if r := recover(); r != "kaboom" {
					t.Fatalf("recovered %v", r)
				}
			}()
			p.Write(ctx, func(tx *Tx) error {
				tx.Exec("INSERT INTO t VALUES (1)")
				panic("kaboom")
			})
		}()
		func() {
			defer func() { recover() }()
			p.Read(ctx, func(c *Conn) error {
				for range c.Query(infiniteRows) {
					panic("kaboom")
				}
				return nil
			})
		}()
	}
	// Writer and the only reader are free again; nothing was committed.
	var n int
	ctx2, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.Write(ctx2, func(tx *Tx) error { return tx.QueryRow("SELECT count(*) FROM t", nil, &n) }); err != nil || n != 0 {
		t.Fatal(n, err)
	}
	if err := p.Read(ctx2, func(c *Conn) error { return c.QueryRow("SELECT count(*) FROM t", nil, &n) }); err != nil {
		t.Fatal(err)
	}
}

func TestNativeStatsCheckpointClose(t *testing.T) {
	p, _ := openPool(t, "")
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if err := p.Write(ctx, func(tx *Tx) error {
			_, err := tx.Exec("CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := p.Stats()
	if err != nil || len(st.Metrics) == 0 || !strings.Contains(st.Prometheus, "litepool_") {
		t.Fatalf("stats: %v %d", err, len(st.Metrics))
	}
	res, err := p.Checkpoint(CheckpointTruncate)
	if err != nil || !res.Complete || res.Busy {
		t.Fatalf("checkpoint: %+v %v", res, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if err := p.Read(ctx, func(*Conn) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := p.Stats(); !errors.Is(err, ErrClosed) {
		t.Fatalf("stats after close: %v", err)
	}
}

func TestDSN(t *testing.T) {
	dir := t.TempDir()
	good := []string{
		filepath.Join(dir, "a.db"),
		filepath.Join(dir, "b.db") + "?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=1",
		"file:" + filepath.Join(dir, "c.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)&_pragma=foreign_keys(1)&_pragma=cache_size(-4000)&_time_format=sqlite",
		"file:" + filepath.Join(dir, "d.db") + "?max_readers=2&acquire_timeout=1s&_sync=NORMAL",
		":memory:",
		"file:" + filepath.Join(dir, "f.db") + "?_pragma=mmap_size(268435456)&_pragma=auto_vacuum(2)&_pragma=wal_autocheckpoint(1000)",
		"file:" + filepath.Join(dir, "f.db") + "?cache=shared&_locking_mode=NORMAL",
		"file:shared_mem?mode=memory&cache=shared",
	}
	for _, dsn := range good {
		db, err := sql.Open("litepool", dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if err := db.Ping(); err != nil {
			t.Fatalf("%s: ping: %v", dsn, err)
		}
		db.Close()
	}
	// mode=ro on an existing file: writes fail with ErrReadOnly.
	db, _ := sql.Open("litepool", filepath.Join(dir, "a.db"))
	mustExec(t, db, "CREATE TABLE t(x)")
	db.Close()
	ro, _ := sql.Open("litepool", "file:"+filepath.Join(dir, "a.db")+"?mode=ro")
	if _, err := ro.Exec("INSERT INTO t VALUES (1)"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("mode=ro write: %v", err)
	}
	ro.Close()
	// A connection pragma from the DSN is set on every session.
	db, _ = sql.Open("litepool", "file:"+filepath.Join(dir, "e.db")+"?_pragma=cache_size(-1234)&_recursive_triggers=1")
	var cs, rt int
	if err := db.QueryRow("PRAGMA cache_size").Scan(&cs); err != nil || cs != -1234 {
		t.Fatalf("cache_size %d %v", cs, err)
	}
	if err := db.QueryRow("PRAGMA recursive_triggers").Scan(&rt); err != nil || rt != 1 {
		t.Fatalf("recursive_triggers %d %v", rt, err)
	}
	db.Close()

	bad := map[string]string{
		"":                                 "empty DSN",
		"file:x.db?bogus=1":                `unknown option "bogus"`,
		"file:x.db?Max_Readers=1":          "lower case",
		"file:x.db?max_readers":            "has no value",
		"file:x.db?max_readers=0":          "max_readers",
		"file:x.db?max_readers=abc":        "max_readers",
		"file://host/x.db":                 "authority",
		"file:x.db?_txlock=sloppy":         "_txlock",
		"file:x.db?_pragma=nonsense(1)":    "does not set from a DSN",
		"file:x.db?_locking=exclusive":     "share the file",
		"file:x.db?_pragma=garbage":        "pragma assignment",
		"file:x.db?acquire_timeout=-1":     "negative",
		"file:x.db?_busy_timeout=soon":     "milliseconds",
		"file:x.db?%zz=1":                  "percent",
		"file:x.db?_journal_mode=sideways": "journal mode",
	}
	for dsn, want := range bad {
		db, err := sql.Open("litepool", dsn)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrConfig) {
			t.Errorf("%q: got %v, want ErrConfig mentioning %q", dsn, err, want)
		}
	}
}
