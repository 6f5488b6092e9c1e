// These tests use only modernc.org/sqlite's API: make compat-go also runs them against
// modernc itself, so what they expect is what modernc does.
package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/litepool/litepool/go/compat/compattest"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"
)

var (
	open   = compattest.Open
	exec   = compattest.Exec
	pragma = compattest.Pragma
)

// A hub-style program's DSNs (issue 20): every pool with mmap_size and foreign_keys on,
// new shard files with auto_vacuum=INCREMENTAL, and a maintenance probe opening the same
// file with foreign_keys off while the pool is open.
func TestHubStyleDSNs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shard.db")
	const common = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=mmap_size(268435456)"
	app := open(t, "sqlite", "file:"+path+"?"+common+"&_pragma=auto_vacuum(2)&_pragma=foreign_keys(1)")
	exec(t, app, "CREATE TABLE team(id INTEGER PRIMARY KEY); CREATE TABLE member(id INTEGER PRIMARY KEY, team INTEGER NOT NULL REFERENCES team(id))")
	exec(t, app, "INSERT INTO team(id) VALUES (1)")
	exec(t, app, "INSERT INTO member(team) VALUES (1)")
	if got := pragma(t, app, "auto_vacuum"); got != 2 {
		t.Errorf("auto_vacuum of a new file opened with _pragma=auto_vacuum(2) = %d, want 2 (INCREMENTAL)", got)
	}
	if got := pragma(t, app, "foreign_keys"); got != 1 {
		t.Errorf("app pool foreign_keys = %d, want 1", got)
	}

	probe := open(t, "sqlite", "file:"+path+"?"+common+"&_pragma=foreign_keys(0)")
	if got := pragma(t, probe, "foreign_keys"); got != 0 {
		t.Errorf("probe foreign_keys = %d, want 0", got)
	}
	// The probe may write an orphan; the application's pool still may not.
	exec(t, probe, "INSERT INTO member(team) VALUES (99)")
	_, err := app.Exec("INSERT INTO member(team) VALUES (98)")
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != lib.SQLITE_CONSTRAINT_FOREIGNKEY {
		t.Fatalf("orphan insert on the foreign_keys(1) pool: err = %v, want a *sqlite.Error with code SQLITE_CONSTRAINT_FOREIGNKEY", err)
	}
	if got := pragma(t, app, "foreign_keys"); got != 1 {
		t.Errorf("app pool foreign_keys after the probe opened = %d, want 1", got)
	}
	var n int
	if err := app.QueryRow("SELECT count(*) FROM member").Scan(&n); err != nil || n != 2 {
		t.Fatalf("members = %d, %v; want 2", n, err)
	}
}

func TestErrorCodes(t *testing.T) {
	db := open(t, "sqlite", filepath.Join(t.TempDir(), "e.db"))
	exec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY, u TEXT UNIQUE, nn TEXT NOT NULL, c INTEGER CHECK (c > 0))")
	exec(t, db, "INSERT INTO t VALUES (1, 'a', 'x', 1)")
	cases := []struct {
		sql  string
		code int
		msg  string
	}{
		{"INSERT INTO t VALUES (2, 'a', 'x', 1)", lib.SQLITE_CONSTRAINT_UNIQUE, "constraint failed: UNIQUE constraint failed: t.u (2067)"},
		{"INSERT INTO t VALUES (1, 'b', 'x', 1)", lib.SQLITE_CONSTRAINT_PRIMARYKEY, "constraint failed: UNIQUE constraint failed: t.id (1555)"},
		{"INSERT INTO t VALUES (3, 'c', NULL, 1)", lib.SQLITE_CONSTRAINT_NOTNULL, "constraint failed: NOT NULL constraint failed: t.nn (1299)"},
		{"INSERT INTO t VALUES (4, 'd', 'x', 0)", lib.SQLITE_CONSTRAINT_CHECK, "constraint failed: CHECK constraint failed: c > 0 (275)"},
		{"SELEC 1", lib.SQLITE_ERROR, `SQL logic error: near "SELEC": syntax error (1)`},
		{"SELECT * FROM nosuch", lib.SQLITE_ERROR, "SQL logic error: no such table: nosuch (1)"},
	}
	for _, c := range cases {
		_, err := db.Exec(c.sql)
		// The two ways programs test it: a type assertion, and errors.As.
		se, ok := err.(*sqlite.Error)
		var viaAs *sqlite.Error
		if !ok || !errors.As(err, &viaAs) {
			t.Errorf("%s: err = %v (%T), want a *sqlite.Error", c.sql, err, err)
			continue
		}
		if se.Code() != c.code || se.Error() != c.msg {
			t.Errorf("%s: Code() = %d, Error() = %q; want %d, %q", c.sql, se.Code(), se.Error(), c.code, c.msg)
		}
		if sqlite.ErrorCodeString[se.Code()&0xff] == "" {
			t.Errorf("ErrorCodeString has no entry for %d", se.Code()&0xff)
		}
	}
	if !strings.Contains(sqlite.ErrorCodeString[lib.SQLITE_BUSY], "SQLITE_BUSY") {
		t.Errorf("ErrorCodeString[SQLITE_BUSY] = %q", sqlite.ErrorCodeString[lib.SQLITE_BUSY])
	}
}

func TestConnectionHook(t *testing.T) {
	var calls atomic.Int32
	d := &sqlite.Driver{}
	d.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
		calls.Add(1)
		if !strings.HasSuffix(dsn, "hook.db") {
			t.Errorf("hook got DSN %q", dsn)
		}
		_, err := conn.ExecContext(context.Background(), "PRAGMA recursive_triggers = 1", nil)
		return err
	})
	hooked := compattest.Register(d)
	db := open(t, hooked, filepath.Join(t.TempDir(), "hook.db"))
	if got := pragma(t, db, "recursive_triggers"); got != 1 {
		t.Errorf("recursive_triggers set by the hook = %d, want 1", got)
	}
	if calls.Load() == 0 {
		t.Error("the connection hook never ran")
	}

	refusing := &sqlite.Driver{}
	refusing.RegisterConnectionHook(func(sqlite.ExecQuerierContext, string) error { return errors.New("hook refused") })
	failing := compattest.Register(refusing)
	bad := open(t, failing, filepath.Join(t.TempDir(), "hook.db"))
	if err := bad.Ping(); err == nil || !strings.Contains(err.Error(), "hook refused") {
		t.Errorf("Ping with a failing hook: %v, want the hook's error", err)
	}
}

func TestNewConnector(t *testing.T) {
	c, err := sqlite.NewConnector("file:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	exec(t, db, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
	var n int
	if err := db.QueryRow("SELECT sum(x) FROM t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("sum = %d, %v", n, err)
	}
	if got := pragma(t, db, "foreign_keys"); got != 1 {
		t.Errorf("foreign_keys = %d, want 1", got)
	}
}

func TestTransactionRollbackOnError(t *testing.T) {
	compattest.RollbackAfterError(t, "sqlite", func(err error) bool {
		var se *sqlite.Error
		return errors.As(err, &se) && se.Code() == lib.SQLITE_CONSTRAINT_PRIMARYKEY
	})
}

func TestDeclaredTimeColumns(t *testing.T) { compattest.DeclaredTimeColumns(t, "sqlite") }
