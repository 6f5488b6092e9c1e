package litepool

// The concurrency soak for the Go host (make soak sets LITEPOOL_SOAK_SECONDS; without it the
// test is skipped, so make test does not spend a minute here): 1,000 goroutines of mixed
// reads, writes, transactions and cancellations through database/sql against one file.
// Asserts: no deadlock (progress every 30 s, every goroutine returns), no lost write and no
// rolled-back write present, FDs on the database bounded by the pool (from /proc/self/fd)
// and RSS flat, and stats consistent (nothing in use, no waiters once all are done).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func rssKiB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

type soakWorker struct {
	committed, rolledBack []int64
	ops, cancelled        int
	err                   error
}

func (w *soakWorker) run(ctx context.Context, db *sql.DB, id int, ops *atomic.Int64) {
	rng := rand.New(rand.NewSource(int64(id)))
	next := int64(id) * 10_000_000
	newID := func() int64 { next++; return next }
	for ctx.Err() == nil {
		if err := w.one(db, rng, newID); err != nil {
			w.err = fmt.Errorf("goroutine %d: %w", id, err)
			return
		}
		w.ops++
		ops.Add(1)
	}
}

func (w *soakWorker) one(db *sql.DB, rng *rand.Rand, newID func() int64) error {
	bg := context.Background()
	switch r := rng.Float64(); {
	case r < 0.35:
		var n int64
		var max sql.NullInt64
		return db.QueryRowContext(bg, "SELECT count(*), max(id) FROM t").Scan(&n, &max)
	case r < 0.6:
		id := newID()
		if _, err := db.ExecContext(bg, "INSERT INTO t(id) VALUES (?)", id); err != nil {
			return err
		}
		w.committed = append(w.committed, id)
	case r < 0.8:
		tx, err := db.BeginTx(bg, nil)
		if err != nil {
			return err
		}
		ids := make([]int64, 1+rng.Intn(5))
		for i := range ids {
			ids[i] = newID()
			if _, err := tx.Exec("INSERT INTO t(id) VALUES (?)", ids[i]); err != nil {
				tx.Rollback()
				return err
			}
		}
		if rng.Intn(4) == 0 {
			if err := tx.Rollback(); err != nil {
				return err
			}
			w.rolledBack = append(w.rolledBack, ids...)
			return nil
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		w.committed = append(w.committed, ids...)
	case r < 0.9:
		// A long read cancelled by its context.
		ctx, cancel := context.WithTimeout(bg, time.Duration(1+rng.Intn(3))*time.Millisecond)
		defer cancel()
		var sum int64
		err := db.QueryRowContext(ctx, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT sum(x) FROM c").Scan(&sum)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if err != nil {
			w.cancelled++
		}
	default:
		// Rows abandoned half-read: the reader must come back.
		rows, err := db.QueryContext(bg, "SELECT id FROM t")
		if err != nil {
			return err
		}
		for i := 0; i < 3 && rows.Next(); i++ {
		}
		return rows.Close()
	}
	return nil
}

func TestSoak(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("LITEPOOL_SOAK_SECONDS"))
	if secs <= 0 {
		t.Skip("set LITEPOOL_SOAK_SECONDS (make soak) to run the soak")
	}
	const goroutines, maxReaders = 1000, 4
	path := filepath.Join(t.TempDir(), "soak.db")
	if real, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		path = filepath.Join(real, "soak.db")
	}
	db, err := sql.Open("litepool", "file:"+path+"?max_readers=4&acquire_timeout=60s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY)")

	ctx, stop := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer stop()
	var ops atomic.Int64
	workers := make([]*soakWorker, goroutines)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = &soakWorker{}
		wg.Add(1)
		go func(i int) { defer wg.Done(); workers[i].run(ctx, db, i, &ops) }(i)
	}

	type sample struct{ t, ops, fds, rss, inUse int }
	var samples []sample
	start, lastOps, lastProgress := time.Now(), int64(0), time.Now()
	for ctx.Err() == nil {
		time.Sleep(time.Second)
		n := ops.Load()
		if n > lastOps {
			lastOps, lastProgress = n, time.Now()
		} else if time.Since(lastProgress) > 30*time.Second {
			t.Fatal("deadlock: no operation finished for 30 s")
		}
		samples = append(samples, sample{int(time.Since(start).Seconds()), int(n), dbFDs(t, path), rssKiB(t), db.Stats().InUse})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock: goroutines still running 60 s after the end")
	}

	t.Logf("%5s %9s %6s %9s %6s", "t(s)", "ops", "db fds", "rss KiB", "in use")
	for _, s := range samples {
		t.Logf("%5d %9d %6d %9d %6d", s.t, s.ops, s.fds, s.rss, s.inUse)
	}
	var committed, rolledBack []int64
	cancelled := 0
	for _, w := range workers {
		if w.err != nil {
			t.Fatal(w.err)
		}
		committed = append(committed, w.committed...)
		rolledBack = append(rolledBack, w.rolledBack...)
		cancelled += w.cancelled
	}
	present := map[int64]bool{}
	rows, err := db.Query("SELECT id FROM t")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		present[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	lost, ghosts := 0, 0
	for _, id := range committed {
		if !present[id] {
			lost++
		}
	}
	for _, id := range rolledBack {
		if present[id] {
			ghosts++
		}
	}
	t.Logf("%d goroutines, %d s: %d operations, %d committed rows, %d rolled back, %d cancelled",
		goroutines, secs, ops.Load(), len(committed), len(rolledBack), cancelled)
	if lost > 0 || ghosts > 0 {
		t.Fatalf("%d committed writes lost, %d rolled-back writes present", lost, ghosts)
	}
	bound := 2*(1+maxReaders) + 1
	q := len(samples) / 4
	if q == 0 {
		q = 1
	}
	peakFDs, rssEarly, rssLate := 0, 0, 0
	for i, s := range samples {
		peakFDs = max(peakFDs, s.fds)
		if i >= q && i < 2*q {
			rssEarly = max(rssEarly, s.rss)
		}
		if i >= len(samples)-q {
			rssLate = max(rssLate, s.rss)
		}
	}
	t.Logf("peak FDs on the database %d (bound %d); RSS %d -> %d KiB", peakFDs, bound, rssEarly, rssLate)
	if peakFDs > bound {
		t.Errorf("FDs on the database peaked at %d, over the bound %d", peakFDs, bound)
	}
	if rssEarly > 0 && float64(rssLate) > float64(rssEarly)*1.25+16*1024 {
		t.Errorf("RSS grew from %d KiB to %d KiB", rssEarly, rssLate)
	}
	if s := db.Stats(); s.InUse != 0 {
		t.Errorf("database/sql: %d connections in use with every goroutine done", s.InUse)
	}
	native, err := Open("file:" + path + "?max_readers=4")
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	st, err := native.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Metrics {
		if (strings.HasSuffix(m.Name, "connections_in_use") || strings.HasSuffix(m.Name, "waiters")) && m.Value != 0 {
			t.Errorf("stats: %s = %v with every goroutine done", m.Name, m.Value)
		}
	}
}
