// Tests of what this module adds to litepool (not run against modernc).
package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	litepool "github.com/litepool/litepool/go"
	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"
)

// The generated lib constants are those of the SQLite litepool links.
func TestLibVersionIsLitepools(t *testing.T) {
	if lib.SQLITE_VERSION != litepool.SQLiteVersion() {
		t.Fatalf("lib.SQLITE_VERSION = %s, litepool bundles SQLite %s: regenerate lib/lib.go", lib.SQLITE_VERSION, litepool.SQLiteVersion())
	}
}

// The *sqlite.Error wraps litepool's error: litepool's sentinels and the context's error
// still match.
func TestErrorWrapsLitepool(t *testing.T) {
	db := open(t, "sqlite", filepath.Join(t.TempDir(), "w.db"))
	exec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY)")
	exec(t, db, "INSERT INTO t VALUES (1)")
	_, err := db.Exec("INSERT INTO t VALUES (1)")
	var le *litepool.Error
	if !errors.Is(err, litepool.ErrConstraint) || !errors.As(err, &le) || le.ExtendedCode != lib.SQLITE_CONSTRAINT_PRIMARYKEY {
		t.Fatalf("err = %v: want it to match litepool.ErrConstraint with extended code 1555", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = db.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Exec: %v, want context.Canceled", err)
	}
}

// Errors that are not SQLite's (a bad DSN) stay litepool's, matching ErrConfig.
func TestConfigErrorStaysLitepools(t *testing.T) {
	_, err := sqlite.NewConnector("file:x.db?_pragma=nosuch(1)&nonsense=1")
	if !errors.Is(err, litepool.ErrConfig) {
		t.Fatalf("bad DSN: %v, want litepool.ErrConfig", err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		t.Fatalf("bad DSN reported as a SQLite error: %v", err)
	}
}

// sql.Conn.Raw sees the compat connection, which runs statements on litepool.
func TestRawConn(t *testing.T) {
	db := open(t, "sqlite", filepath.Join(t.TempDir(), "raw.db"))
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		if _, ok := dc.(sqlite.ExecQuerierContext); !ok {
			t.Errorf("raw connection %T is not an ExecQuerierContext", dc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	drv := db.Driver()
	if _, ok := drv.(*sqlite.Driver); !ok {
		t.Errorf("db.Driver() = %T, want *sqlite.Driver", drv)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(fds)
}

// Driver.Open (without a connector) opens the file's pool for the connection; closing the
// connection closes the pool: no FD is left.
func TestDriverOpenClosesItsPool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "open.db")
	before := openFDs(t)
	conn, err := (&sqlite.Driver{}).Open(path)
	if err != nil {
		t.Fatal(err)
	}
	eq := conn.(sqlite.ExecQuerierContext)
	if _, err := eq.ExecContext(context.Background(), "CREATE TABLE t(x); INSERT INTO t VALUES (1)", nil); err != nil {
		t.Fatal(err)
	}
	if during := openFDs(t); during <= before {
		t.Fatalf("FDs while open = %d, before = %d: the database was never opened", during, before)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("FDs after Close = %d, before Open = %d", after, before)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("-wal left after the pool closed: %v", err)
	}
}
