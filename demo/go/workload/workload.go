// Package workload is the Go scenario of `make demo`: many goroutines sharing one *sql.DB
// with database/sql's defaults (no SetMaxOpenConns), mostly point reads plus some writes.
// The same code runs in two programs, one per driver, so that mattn/go-sqlite3 and litepool
// (each linking its own SQLite) never share a binary.
package workload

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// rows is how many rows the kv table holds; reads and updates pick one at random.
const rows = 1000

// Line is one JSON line on stdout: a progress sample every second, then the summary.
type Line struct {
	Kind       string  `json:"kind"` // "sample" or "summary"
	T          float64 `json:"t"`    // seconds since the goroutines started
	Ops        int64   `json:"ops"`
	Errors     int64   `json:"errors"`
	OpenConns  int     `json:"open_conns"` // database/sql's driver connections
	FirstError string  `json:"first_error,omitempty"`
}

// Main parses the flags, runs the workload through driverName and prints JSON lines; it
// returns the process exit status.
func Main(driverName string) int {
	dsn := flag.String("dsn", "", "database/sql DSN of the database file")
	secs := flag.Float64("secs", 10, "how long the goroutines run")
	goroutines := flag.Int("goroutines", 500, "concurrent goroutines")
	writePct := flag.Int("write-pct", 10, "percent of operations that are writes")
	flag.Parse()
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "-dsn is required")
		return 2
	}
	db, err := sql.Open(driverName, *dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	if err := setup(db); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		db.Close()
		return 1
	}

	var ops, errs atomic.Int64
	var firstErr sync.Once
	var firstMsg atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.Do(func() { firstMsg.Store(err.Error()) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*secs*float64(time.Second)))
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < *goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for ctx.Err() == nil {
				id := rng.IntN(rows) + 1
				var err error
				if rng.IntN(100) < *writePct {
					_, err = db.Exec("UPDATE kv SET v = ?, n = n + 1 WHERE id = ?", fmt.Sprint(rng.Int64()), id)
				} else {
					var v string
					err = db.QueryRow("SELECT v FROM kv WHERE id = ?", id).Scan(&v)
				}
				if err != nil {
					fail(err)
				} else {
					ops.Add(1)
				}
			}
		}()
	}

	enc := json.NewEncoder(os.Stdout)
	line := func(kind string) Line {
		l := Line{Kind: kind, T: time.Since(start).Seconds(), Ops: ops.Load(), Errors: errs.Load(),
			OpenConns: db.Stats().OpenConnections}
		if m, ok := firstMsg.Load().(string); ok {
			l.FirstError = m
		}
		return l
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
			enc.Encode(line("sample"))
		case <-done:
			running = false
		}
	}
	summary := line("summary")
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	enc.Encode(summary)
	return 0
}

func setup(db *sql.DB) error {
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL)"); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	for id := 1; id <= rows; id++ {
		if _, err := tx.Exec("INSERT OR REPLACE INTO kv (id, v, n) VALUES (?, ?, 0)", id, fmt.Sprint("value-", id)); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
