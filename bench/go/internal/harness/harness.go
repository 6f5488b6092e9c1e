// Package harness is the part every Go benchmark program shares: the database contents, the
// workloads through database/sql, timing (wall and process CPU) and the JSON lines each
// program prints for bench/go/run.sh to join. Each peer runs in its own binary, so no two
// SQLite copies ever share a process.
package harness

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Rows in the point-query table kv and in the scanned table big.
const (
	PointKeys = 10_000
	ScanRows  = 100_000
)

// The statements every implementation runs.
const (
	PointSQL  = "SELECT v FROM kv WHERE id = ?"
	ScanSQL   = "SELECT id, a, b, c FROM big"
	InsertSQL = "INSERT INTO sink(a, b) VALUES (?, ?)"
)

// Schema creates the tables; Fill (run inside one transaction) loads them.
const Schema = `CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS big(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
CREATE TABLE IF NOT EXISTS sink(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);`

// Case is one workload: Run performs n operations (split over its goroutines) and returns
// how many it performed.
type Case struct {
	Name string
	N    int
	// Fixed: N is the workload's definition, not scaled by LITEPOOL_BENCH_SCALE.
	Fixed bool
	Run   func(n int) (int, error)
}

// Scale is LITEPOOL_BENCH_SCALE (default 1): it multiplies every case's operation count.
func Scale() float64 {
	s := os.Getenv("LITEPOOL_BENCH_SCALE")
	if s == "" {
		return 1
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		fmt.Fprintf(os.Stderr, "LITEPOOL_BENCH_SCALE must be a positive number, got %q\n", s)
		os.Exit(2)
	}
	return v
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Result is one printed line.
type Result struct {
	Impl   string  `json:"impl"`
	Case   string  `json:"case"`
	Ops    int     `json:"ops"`
	WallNs float64 `json:"wall_ns"`
	CPUNs  float64 `json:"cpu_ns"`
}

// Measure warms each case up (a twentieth of its count), runs it, and prints one JSON line
// per case with the wall and process CPU time per operation, or with the error that stopped
// the case (the next cases still run). LITEPOOL_BENCH_CASE, when set,
// runs only the cases whose name contains it, and LITEPOOL_BENCH_IMPL only that
// implementation's (for a profiler); LITEPOOL_BENCH_OPS, when set, is the exact operation
// count of every case run.
func Measure(impl string, cases []Case) error {
	if want := os.Getenv("LITEPOOL_BENCH_IMPL"); want != "" && want != impl {
		return nil
	}
	scale := Scale()
	only := os.Getenv("LITEPOOL_BENCH_CASE")
	ops, _ := strconv.Atoi(os.Getenv("LITEPOOL_BENCH_OPS"))
	for _, c := range cases {
		if only != "" && !strings.Contains(c.Name, only) {
			continue
		}
		n := int(float64(c.N) * scale)
		if c.Fixed {
			n = c.N
		}
		if ops > 0 {
			n = ops
		}
		if n < 1 {
			n = 1
		}
		if _, err := c.Run(max(1, n/20)); err != nil {
			failed(impl, c.Name, fmt.Errorf("warm-up: %w", err))
			continue
		}
		runtime.GC()
		cpu0, wall0 := cpuTime(), time.Now()
		ops, err := c.Run(n)
		wall, cpu := time.Since(wall0), cpuTime()-cpu0
		if err != nil {
			failed(impl, c.Name, err)
			continue
		}
		line, _ := json.Marshal(Result{
			Impl: impl, Case: c.Name, Ops: ops,
			WallNs: float64(wall.Nanoseconds()) / float64(ops),
			CPUNs:  float64(cpu.Nanoseconds()) / float64(ops),
		})
		fmt.Println(string(line))
	}
	return nil
}

// failed reports a case that failed as a JSON line with its error (and on stderr), so the
// other cases still run and the report shows which one failed and why.
func failed(impl, name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %s: %v\n", impl, name, err)
	line, _ := json.Marshal(map[string]string{"impl": impl, "case": name, "error": err.Error()})
	fmt.Println(string(line))
}

// Fill loads kv and big through db (one transaction).
func Fill(db *sql.DB) error {
	if _, err := db.Exec(Schema); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	for i := 1; i <= PointKeys; i++ {
		if _, err := tx.Exec("INSERT INTO kv(id, v) VALUES (?, ?)", i, fmt.Sprintf("value-%08d", i)); err != nil {
			tx.Rollback()
			return err
		}
	}
	for i := 1; i <= ScanRows; i++ {
		if _, err := tx.Exec("INSERT INTO big(id, a, b, c) VALUES (?, ?, ?, ?)",
			i, i*7, fmt.Sprintf("row %d", i), float64(i)/3); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// Key is the i-th point-query key.
func Key(i int) int { return i*7919%PointKeys + 1 }

// Parallel runs n operations split over g goroutines; op gets the goroutine and op index.
func Parallel(n, g int, op func(worker, i int) error) (int, error) {
	per := max(1, n/g)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := op(w, w*per+i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return per * g, nil
}

// SQLCases are the database/sql workloads: point select, a 100k-row scan, 64 goroutines
// reading, 8 goroutines each committing single-row autocommit inserts.
func SQLCases(db *sql.DB) []Case {
	point := func(i int) error {
		var v string
		return db.QueryRow(PointSQL, Key(i)).Scan(&v)
	}
	return []Case{
		{Name: "point select", N: 200_000, Run: func(n int) (int, error) {
			for i := 0; i < n; i++ {
				if err := point(i); err != nil {
					return 0, err
				}
			}
			return n, nil
		}},
		{Name: "scan 100k rows", N: 20, Run: func(n int) (int, error) {
			for i := 0; i < n; i++ {
				if err := Scan(db); err != nil {
					return 0, err
				}
			}
			return n, nil
		}},
		{Name: "64 concurrent readers", N: 200_000, Run: func(n int) (int, error) {
			return Parallel(n, 64, func(_, i int) error { return point(i) })
		}},
		{Name: "8 concurrent writers", N: 20_000, Run: func(n int) (int, error) {
			return Parallel(n, 8, func(w, i int) error {
				_, err := db.Exec(InsertSQL, i, "x")
				return err
			})
		}},
	}
}

// Scan reads every row of big, scanning each column.
func Scan(db *sql.DB) error {
	rows, err := db.Query(ScanSQL)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		id, a int64
		b     string
		c     float64
		count int
	)
	for rows.Next() {
		if err := rows.Scan(&id, &a, &b, &c); err != nil {
			return err
		}
		count++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if count != ScanRows {
		return fmt.Errorf("scan read %d rows, want %d", count, ScanRows)
	}
	return nil
}

// Main runs impl's cases and exits non-zero on an error.
func Main(impl string, cases []Case) {
	if err := Measure(impl, cases); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", impl, err)
		os.Exit(1)
	}
}

// OpenFn opens a *sql.DB on the database at path with the implementation's DSN.
type OpenFn func(path string) (*sql.DB, error)

// Setup creates a fresh database in a new temporary directory through open and loads it.
// It returns the path and a cleanup function removing the directory.
func Setup(open OpenFn) (string, *sql.DB, func(), error) {
	dir, err := os.MkdirTemp("", "litepool-gobench-")
	if err != nil {
		return "", nil, nil, err
	}
	path := dir + "/bench.db"
	cleanup := func() { os.RemoveAll(dir) }
	db, err := open(path)
	if err != nil {
		cleanup()
		return "", nil, nil, err
	}
	if err := Fill(db); err != nil {
		db.Close()
		cleanup()
		return "", nil, nil, err
	}
	return path, db, cleanup, nil
}

// FDs counts the process's open file descriptors from /proc/self/fd.
func FDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries) - 1 // the directory being read
}

// TickCase is the per-tick pattern of a service: open the database, run one query, close
// it, n times. After the last tick it prints, as a separate JSON line (case "FDs after
// ticks"), how many more FDs the process holds than before the first.
func TickCase(impl string, path string, open OpenFn) Case {
	return Case{Name: "open + query + close per tick", N: 100_000, Fixed: true, Run: func(n int) (int, error) {
		before := FDs()
		for i := 0; i < n; i++ {
			db, err := open(path)
			if err != nil {
				return 0, err
			}
			var v string
			if err := db.QueryRow(PointSQL, Key(i)).Scan(&v); err != nil {
				db.Close()
				return 0, err
			}
			if err := db.Close(); err != nil {
				return 0, err
			}
		}
		line, _ := json.Marshal(map[string]any{"impl": impl, "case": "FDs after ticks", "fds": FDs() - before, "ticks": n})
		fmt.Println(string(line))
		return n, nil
	}}
}
