package litepool

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A hub-like service: per-team database files, HTTP handlers reading through database/sql
// with no SetMaxOpenConns, SSE-style requests holding a read transaction open for a second, a
// writer, 1,000 requests. FDs stay bounded, no write is lost, the WAL stays under its cap,
// and a query failing mid-iteration surfaces through rows.Err() and the native iterator.
func TestHubScenario(t *testing.T) {
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	const teams = 3
	const walCap = 2000 // frames
	opts := fmt.Sprintf("?max_readers=4&wal_cap_frames=%d&checkpoint_passive_frames=200", walCap)
	dbs := make([]*sql.DB, teams)
	paths := make([]string, teams)
	for i := range dbs {
		paths[i] = filepath.Join(dir, fmt.Sprintf("team-%d.db", i))
		db, err := sql.Open("litepool", "file:"+paths[i]+opts)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		mustExec(t, db, "CREATE TABLE events(id INTEGER PRIMARY KEY, body TEXT NOT NULL, at DATETIME)")
		dbs[i] = db
	}
	var posted [teams]atomic.Int64
	mux := http.NewServeMux()
	team := func(r *http.Request) int {
		var n int
		fmt.Sscan(r.URL.Query().Get("team"), &n)
		return n % teams
	}
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		tm := team(r)
		body := strings.Repeat("x", 1000)
		if _, err := dbs[tm].ExecContext(r.Context(), "INSERT INTO events(body, at) VALUES (?, ?)", body, time.Now()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		posted[tm].Add(1)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		rows, err := dbs[team(r)].QueryContext(r.Context(), "SELECT id, at FROM events ORDER BY id DESC LIMIT 50")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var id int64
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			n++
		}
		if err := rows.Err(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, n)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		tx, err := dbs[team(r)].BeginTx(r.Context(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer tx.Rollback()
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 10; i++ {
			var n int
			if err := tx.QueryRowContext(r.Context(), "SELECT count(*) FROM events").Scan(&n); err != nil {
				fmt.Fprintf(w, "event: error\ndata: %v\n\n", err)
				return
			}
			fmt.Fprintf(w, "data: %d\n\n", n)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var maxFDs, maxWAL atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if n := int64(dbFDs(t, paths...)); n > maxFDs.Load() {
				maxFDs.Store(n)
			}
			for _, p := range paths {
				if fi, err := os.Stat(p + "-wal"); err == nil && fi.Size() > maxWAL.Load() {
					maxWAL.Store(fi.Size())
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const requests = 1000
	const clients = 50
	var next atomic.Int64
	var failures atomic.Int64
	var okPosts atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > requests {
					return
				}
				url := fmt.Sprintf("%s/events?team=%d", srv.URL, i)
				var resp *http.Response
				var err error
				switch {
				case i%50 == 0:
					resp, err = http.Get(fmt.Sprintf("%s/stream?team=%d", srv.URL, i))
				case i%3 == 0:
					resp, err = http.Post(url, "text/plain", nil)
				default:
					resp, err = http.Get(url)
				}
				if err != nil {
					failures.Add(1)
					t.Error(err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || strings.Contains(string(body), "event: error") {
					failures.Add(1)
					t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
				} else if i%3 == 0 && i%50 != 0 {
					okPosts.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	sampler.Wait()

	limit := teams * 3 * (1 + 4)
	t.Logf("%d requests in %v; peak FDs on the %d db files %d (limit %d); peak WAL %d bytes (cap %d frames ≈ %d bytes); %d failures",
		requests, elapsed.Round(time.Millisecond), teams, maxFDs.Load(), limit, maxWAL.Load(), walCap, walCap*4120, failures.Load())
	if maxFDs.Load() > int64(limit) {
		t.Errorf("FDs peaked at %d > %d", maxFDs.Load(), limit)
	}
	if maxWAL.Load() > int64(walCap*4120) {
		t.Errorf("WAL peaked at %d bytes, over the cap", maxWAL.Load())
	}
	// No lost writes.
	var total int64
	for i, db := range dbs {
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != posted[i].Load() {
			t.Errorf("team %d: %d rows, %d acknowledged posts", i, n, posted[i].Load())
		}
		total += n
	}
	if total != okPosts.Load() {
		t.Errorf("%d rows in total, %d acknowledged posts", total, okPosts.Load())
	}

	// A query failing mid-iteration: rows.Err() through the driver ...
	failing := "SELECT CASE WHEN id < 5 THEN id ELSE abs(-9223372036854775807 - 1) END FROM events ORDER BY id"
	rows, err := dbs[0].Query(failing)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err == nil || n != 4 {
		t.Errorf("driver: %d rows, rows.Err() = %v", n, err)
	}
	rows.Close()
	// ... and the native iterator, on the same pool (the same file shares one pool).
	pool, err := Open("file:" + paths[0] + opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	n = 0
	err = pool.Read(context.Background(), func(c *Conn) error {
		for _, err := range c.Query(failing) {
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err == nil || n != 4 || !strings.Contains(err.Error(), "integer overflow") {
		t.Errorf("native: %d rows, err = %v", n, err)
	}
	st, err := pool.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range st.Metrics {
		if strings.Contains(m.Name, "connection") || strings.Contains(m.Name, "wal") || strings.Contains(m.Name, "checkpoint") || strings.Contains(m.Name, "fd") {
			names = append(names, fmt.Sprintf("%s=%g", m.Name, m.Value))
		}
	}
	t.Logf("team-0 stats: %s", strings.Join(names, " "))
	// Another open of the same file with other options joins its pool, never fails.
	other, err := Open("file:" + paths[0] + "?max_readers=2&_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatalf("same file, other options: %v", err)
	}
	other.Close()
}
