// Package compattest holds the test helpers and checks both compat modules' tests share.
// It imports only database/sql, so make compat-go can run those tests against modernc and
// go-sqlite3 themselves without linking litepool.
package compattest

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

var registered atomic.Int64

// Register registers d under a name of its own (a test may run several times in one
// process, and database/sql refuses a name twice) and returns the name.
func Register(d driver.Driver) string {
	name := fmt.Sprintf("compattest-%d", registered.Add(1))
	sql.Register(name, d)
	return name
}

// Open opens dsn with driverName, closed when the test ends.
func Open(t *testing.T, driverName, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs q, failing the test on error.
func Exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Pragma reads an integer pragma.
func Pragma(t *testing.T, db *sql.DB, name string) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// DeclaredTimeColumns checks that SQLite's own timestamps (zone-less text) read as
// time.Time (UTC) from columns declared TIMESTAMP, DATETIME and DATE, and stay text in a
// TEXT column (goose reads its goose_db_version.tstamp that way).
func DeclaredTimeColumns(t *testing.T, driverName string) {
	db := Open(t, driverName, filepath.Join(t.TempDir(), "time.db"))
	Exec(t, db, `CREATE TABLE v(id INTEGER PRIMARY KEY, ts TIMESTAMP DEFAULT (datetime('now')),
		dt DATETIME DEFAULT CURRENT_TIMESTAMP, d DATE DEFAULT (date('now')), txt TEXT DEFAULT CURRENT_TIMESTAMP)`)
	Exec(t, db, "INSERT INTO v(id) VALUES (1)")
	var ts, dt, d time.Time
	var txt any
	if err := db.QueryRow("SELECT ts, dt, d, txt FROM v").Scan(&ts, &dt, &d, &txt); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for name, v := range map[string]time.Time{"ts": ts, "dt": dt} {
		if v.Location() != time.UTC || v.Sub(now).Abs() > time.Minute {
			t.Errorf("%s = %v, want about %v UTC", name, v, now)
		}
	}
	if d.Year() != now.Year() || d.Hour() != 0 || d.Location() != time.UTC {
		t.Errorf("d = %v, want today at 00:00 UTC", d)
	}
	if _, ok := txt.(string); !ok {
		t.Errorf("a TEXT column's timestamp read as %T, want string", txt)
	}
}

// RollbackAfterError checks that a statement failing inside a transaction reports the
// primary key violation (isPrimaryKey tells the peer's error apart) and that the rollback
// then undoes the transaction's earlier writes.
func RollbackAfterError(t *testing.T, driverName string, isPrimaryKey func(error) bool) {
	db := Open(t, driverName, filepath.Join(t.TempDir(), "tx.db"))
	Exec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if _, err = tx.Exec("INSERT INTO t VALUES (1)"); !isPrimaryKey(err) {
		t.Fatalf("duplicate in a transaction: %v (%T), want the driver's primary key error", err, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after rollback = %d, %v", n, err)
	}
}
