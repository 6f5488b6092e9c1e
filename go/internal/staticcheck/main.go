// Command staticcheck is the program make test-go links fully statically (go/README.md,
// "Static binaries") and runs: it exercises what a static link could break — the
// connection threads, the file locks and shared memory of WAL mode, cgo calls from many
// goroutines — and exits non-zero on any failure.
//
//	staticcheck /path/to/scratch.db
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"

	litepool "github.com/litepool/litepool/go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: staticcheck /path/to/scratch.db")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "staticcheck:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	db, err := sql.Open("litepool", "file:"+path+"?max_readers=4")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, worker INTEGER, n INTEGER)"); err != nil {
		return err
	}
	const workers, perWorker = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if _, err := db.Exec("INSERT INTO t(worker, n) VALUES (?, ?)", w, i); err != nil {
					errs <- err
					return
				}
				var count int
				if err := db.QueryRow("SELECT count(*) FROM t WHERE worker = ?", w).Scan(&count); err != nil {
					errs <- err
					return
				}
				if count != i+1 {
					errs <- fmt.Errorf("worker %d read %d of its rows after writing %d", w, count, i+1)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	pool, err := litepool.Open("file:" + path + "?max_readers=4")
	if err != nil {
		return err
	}
	defer pool.Close()
	var total int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM t", nil, &total); err != nil {
		return err
	}
	if total != workers*perWorker {
		return fmt.Errorf("%d rows, want %d", total, workers*perWorker)
	}
	if _, err := pool.Checkpoint(litepool.CheckpointTruncate); err != nil {
		return err
	}
	fmt.Printf("static litepool %s (SQLite %s): %d rows from %d goroutines\n", litepool.Version(), litepool.SQLiteVersion(), total, workers)
	return nil
}
