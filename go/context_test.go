package litepool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const infiniteCount = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
const infiniteRows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"

func TestCancelBeforeQuery(t *testing.T) {
	db, _ := tempDB(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.QueryContext(ctx, "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("query: %v", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(x)"); !errors.Is(err, context.Canceled) {
		t.Fatalf("exec: %v", err)
	}
	// The connection is fine afterwards.
	if _, err := db.Exec("CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	// A connection pinned by the caller, cancelled between calls.
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "INSERT INTO t VALUES (1)"); !errors.Is(err, context.Canceled) {
		t.Fatalf("conn exec: %v", err)
	}
	if _, err := conn.ExecContext(context.Background(), "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDuringQuery(t *testing.T) {
	db, _ := tempDB(t, "")
	for _, q := range []string{infiniteCount, "CREATE TABLE big AS " + infiniteRows} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		var err error
		if strings.HasPrefix(q, "CREATE") {
			_, err = db.ExecContext(ctx, q)
		} else {
			var n int
			err = db.QueryRowContext(ctx, q).Scan(&n)
		}
		cancel()
		if !errors.Is(err, ErrInterrupted) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v", q, err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("interrupt took %v", el)
		}
		t.Logf("%v after %v", err, time.Since(start))
	}
	// The pool is healthy afterwards: the next statements on the same connections work.
	for i := 0; i < 10; i++ {
		var n int
		if err := db.QueryRow("SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
			t.Fatal(n, err)
		}
	}
}

func TestCancelDuringIteration(t *testing.T) {
	db, _ := tempDB(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows, err := db.QueryContext(ctx, infiniteRows)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		if n == 5000 {
			cancel()
		}
		if n > 10_000_000 {
			t.Fatal("not interrupted")
		}
	}
	if err := rows.Err(); err == nil {
		t.Fatalf("rows.Err() is nil after an interrupted iteration (%d rows)", n)
	} else if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrInterrupted) {
		t.Fatalf("rows.Err() = %v", err)
	}
	rows.Close()
}

// A step error in the middle of the rows ends the iteration with that error: it never reads
// as a short result.
func TestErrorMidIteration(t *testing.T) {
	db, _ := tempDB(t, "")
	rows, err := db.Query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000) " +
		"SELECT CASE WHEN x < 1500 THEN x ELSE abs(-9223372036854775807 - 1) END FROM c")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err == nil || !strings.Contains(err.Error(), "integer overflow") {
		t.Fatalf("after %d rows: rows.Err() = %v", n, err)
	}
	if n != 1499 {
		t.Fatalf("%d rows before the error, want 1499", n)
	}
}

// dbFDs counts this process's file descriptors open on path, path-wal and path-shm.
func dbFDs(t *testing.T, paths ...string) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue
		}
		for _, p := range paths {
			if target == p || target == p+"-wal" || target == p+"-shm" || target == p+"-journal" {
				n++
			}
		}
	}
	return n
}

// 500 goroutines through one *sql.DB without SetMaxOpenConns: database/sql opens hundreds
// of sessions, but SQLite connections stay at 1 + max_readers and so do the FDs.
func TestBoundedWithoutSettings(t *testing.T) {
	// 450 readers queue FIFO for 4 connections: under -race on a loaded 2-core machine the
	// last ones wait longer than the default 5 s acquire timeout, which is not what this
	// test is about.
	db, path := tempDB(t, "acquire_timeout=120s")
	mustExec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	for i := 0; i < 100; i++ {
		mustExec(t, db, "INSERT INTO t(v) VALUES (?)", fmt.Sprint("v", i))
	}
	const maxReaders = 4 // the default
	limit := 3 * (1 + maxReaders)
	var maxFDs, maxSessions atomic.Int64
	t.Logf("before: %d FDs on %s", dbFDs(t, path), path)
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if o := int64(db.Stats().OpenConnections); o > maxSessions.Load() {
				maxSessions.Store(o)
			}
			n := int64(dbFDs(t, path))
			if n > maxFDs.Load() {
				maxFDs.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	start := make(chan struct{})
	for g := 0; g < 500; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			if g%10 == 0 {
				if _, err := db.Exec("INSERT INTO t(v) VALUES (?)", fmt.Sprint("g", g)); err != nil {
					errs <- err
				}
				return
			}
			rows, err := db.QueryContext(context.Background(),
				"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?) SELECT x, v FROM c LEFT JOIN t ON id = x", 1500)
			if err != nil {
				errs <- err
				return
			}
			n := 0
			for rows.Next() {
				n++
				if n == 1 {
					time.Sleep(time.Millisecond) // hold the reader a while
				}
			}
			if err := rows.Err(); err != nil {
				errs <- err
			}
			rows.Close()
			if n != 1500 {
				errs <- fmt.Errorf("goroutine %d read %d rows", g, n)
			}
		}(g)
	}
	close(start)
	wg.Wait()
	close(stop)
	sampler.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := db.Stats()
	t.Logf("database/sql: peak %d open conns (sessions), %d waits; peak FDs on the db files %d (limit %d)", maxSessions.Load(), st.WaitCount, maxFDs.Load(), limit)
	if maxFDs.Load() > int64(limit) || maxFDs.Load() == 0 {
		t.Fatalf("FDs on the database files peaked at %d, limit %d", maxFDs.Load(), limit)
	}
	var count int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&count); err != nil || count != 150 {
		t.Fatalf("count %d %v (lost writes?)", count, err)
	}
}

// A pool wait honours the context: with every reader pinned, a query waits in the core and
// gives up with the context (or with acquire_timeout, as ErrPoolTimeout).
func TestPoolWaitHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := openDB("file:" + path + "?max_readers=1&acquire_timeout=300ms")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(x)")
	mustExec(t, db, "INSERT INTO t VALUES (1), (2)")
	tx, err := db.BeginTx(context.Background(), &sqlTxReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	var x int
	if err := tx.QueryRow("SELECT x FROM t LIMIT 1").Scan(&x); err != nil {
		t.Fatal(err)
	}
	// The only reader is pinned by tx.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err = db.QueryContext(ctx, "SELECT x FROM t")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with deadline: %v", err)
	}
	if el := time.Since(start); el > 250*time.Millisecond {
		t.Fatalf("waited %v past a 50ms deadline", el)
	}
	start = time.Now()
	_, err = db.Query("SELECT x FROM t")
	if !errors.Is(err, ErrPoolTimeout) || !errors.Is(err, ErrBusy) {
		t.Fatalf("acquire_timeout: %v", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("acquire_timeout 300ms took %v", el)
	}
	t.Log(err)
	if n := queuedWaiters(poolOf(t, db)); n != 0 {
		t.Fatalf("%d waiters still queued after giving up", n)
	}
	// Released: a waiter gets the reader as soon as the transaction ends.
	done := make(chan error, 1)
	go func() {
		var n int
		done <- db.QueryRow("SELECT count(*) FROM t").Scan(&n)
	}()
	time.Sleep(20 * time.Millisecond)
	tx.Rollback()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A wait for the writer honours the context too, for a transaction (BeginTx) and for an
// autocommit write (which leads a group commit while it waits): the core wakes the wait on
// the one interrupt the context's end sends, long before acquire_timeout, and nothing runs.
func TestWriterWaitHonoursContext(t *testing.T) {
	db, _ := tempDB(t, "acquire_timeout=60s")
	mustExec(t, db, "CREATE TABLE t(x)")
	tx := writerHeld(t, db, "INSERT INTO t VALUES (0)")
	waits := map[string]func(ctx context.Context) error{
		"begin": func(ctx context.Context) error {
			other, err := db.BeginTx(ctx, nil)
			if err == nil {
				other.Rollback()
			}
			return err
		},
		"insert": func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (1)")
			return err
		},
	}
	for name, wait := range waits {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		err := wait(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: wait with deadline: %v", name, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("%s: waited %v past a 50ms deadline", name, el)
		}
		if n := queuedWaiters(poolOf(t, db)); n != 0 {
			t.Fatalf("%s: %d waiters still queued after giving up", name, n)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE x = 1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the cancelled insert ran: %d %v", n, err)
	}
}

// A write that joined another's group commit (the group waits for the writer) gives up with
// its context at once, leaving the group; the group's own write still commits.
func TestGroupedWriteHonoursContext(t *testing.T) {
	db, _ := tempDB(t, "acquire_timeout=60s")
	mustExec(t, db, "CREATE TABLE t(x)")
	tx := writerHeld(t, db, "INSERT INTO t VALUES (0)")
	pool := poolOf(t, db)
	leader := make(chan error, 1)
	go func() {
		_, err := db.Exec("INSERT INTO t VALUES (1)")
		leader <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for queuedWaiters(pool) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the leading write never queued")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("grouped write with deadline: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("waited %v past a 50ms deadline", el)
	}
	if n := queuedWaiters(pool); n != 1 {
		t.Fatalf("%d waiting, want the leader alone", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	var got []int
	rows, err := db.Query("SELECT x FROM t ORDER BY x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var x int
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		got = append(got, x)
	}
	if fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("rows %v, want [0 1] (the cancelled write must not run)", got)
	}
}

// A write leading a group commit that another write joined gives up with its context at once
// too: the group waits on for the writer without it, and commits the other write.
func TestGroupLeaderHonoursContext(t *testing.T) {
	db, _ := tempDB(t, "acquire_timeout=60s")
	mustExec(t, db, "CREATE TABLE t(x)")
	tx := writerHeld(t, db, "INSERT INTO t VALUES (0)")
	pool := poolOf(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leader := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (1)")
		leader <- err
	}()
	waitQueued := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for queuedWaiters(pool) != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d waiting, want %d", queuedWaiters(pool), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitQueued(1)
	member := make(chan error, 1)
	go func() {
		_, err := db.Exec("INSERT INTO t VALUES (2)")
		member <- err
	}()
	waitQueued(2)
	start := time.Now()
	cancel()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled leader: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("the cancelled leader returned after %v", el)
	}
	if n := queuedWaiters(pool); n != 1 {
		t.Fatalf("%d waiting, want the member alone", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-member; err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow("SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)").Scan(&got); err != nil || got != "0,2" {
		t.Fatalf("rows %q %v, want 0,2 (the cancelled leader's write must not run)", got, err)
	}
}

// Goroutines waiting for the writer get it in the order they asked for it: each write is
// queued only after the previous one is, and the rowids record the order they ran in. (Waking
// every waiter on each release, as before, let them race and some starve to a timeout.)
func TestWaitersServedInOrder(t *testing.T) {
	db, _ := tempDB(t, "acquire_timeout=60s")
	mustExec(t, db, "CREATE TABLE log(i INTEGER)")
	tx := writerHeld(t, db, "INSERT INTO log VALUES (-1)")
	pool := poolOf(t, db)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := db.Exec("INSERT INTO log VALUES (?)", i)
			errs <- err
		}(i)
		deadline := time.Now().Add(30 * time.Second)
		for queuedWaiters(pool) != i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("writer %d never queued (%d queued)", i, queuedWaiters(pool))
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query("SELECT i FROM log WHERE i >= 0 ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var order []int
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			t.Fatal(err)
		}
		order = append(order, i)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("writers ran in order %v, want 0..%d", order, n-1)
		}
	}
	if len(order) != n {
		t.Fatalf("%d writes, want %d", len(order), n)
	}
}

// poolOf is the Go side of the pool db's connections use.
func poolOf(t *testing.T, db *sql.DB) *poolRef {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var p *poolRef
	if err := conn.Raw(func(dc any) error {
		p = dc.(*sqlConn).s.pool
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// queuedWaiters counts the calls queued for a connection, of either role: the core's
// waiters gauge (the core queues them; Go no longer does).
func queuedWaiters(p *poolRef) int {
	st, err := p.stats()
	if err != nil {
		return -1
	}
	for _, m := range st.Metrics {
		if strings.HasSuffix(m.Name, "waiters") {
			return int(m.Value)
		}
	}
	return -1
}

// writerHeld begins a transaction on db that holds the pool's writer (its first statement,
// insert, has run) until the test commits or rolls it back.
func writerHeld(t *testing.T, db *sql.DB, insert string) *sql.Tx {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(insert); err != nil {
		t.Fatal(err)
	}
	return tx
}
