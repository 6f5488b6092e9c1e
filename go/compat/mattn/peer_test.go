// These tests use only go-sqlite3's API: make compat-go also runs them against go-sqlite3
// itself (in a separate binary), so what they expect is what go-sqlite3 does.
package sqlite3_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/litepool/litepool/go/compat/compattest"

	"github.com/mattn/go-sqlite3"
)

var (
	open   = compattest.Open
	exec   = compattest.Exec
	pragma = compattest.Pragma
)

func TestErrors(t *testing.T) {
	db := open(t, "sqlite3", "file:"+filepath.Join(t.TempDir(), "e.db")+"?_fk=1")
	exec(t, db, `CREATE TABLE p(id INTEGER PRIMARY KEY);
		CREATE TABLE t(id INTEGER PRIMARY KEY, u TEXT UNIQUE, nn TEXT NOT NULL, p INTEGER REFERENCES p(id))`)
	exec(t, db, "INSERT INTO t VALUES (1, 'a', 'x', NULL)")
	cases := []struct {
		sql  string
		code sqlite3.ErrNo
		ext  sqlite3.ErrNoExtended
		msg  string
	}{
		{"INSERT INTO t VALUES (2, 'a', 'x', NULL)", sqlite3.ErrConstraint, sqlite3.ErrConstraintUnique, "UNIQUE constraint failed: t.u"},
		{"INSERT INTO t VALUES (1, 'b', 'x', NULL)", sqlite3.ErrConstraint, sqlite3.ErrConstraintPrimaryKey, "UNIQUE constraint failed: t.id"},
		{"INSERT INTO t VALUES (3, 'c', NULL, NULL)", sqlite3.ErrConstraint, sqlite3.ErrConstraintNotNull, "NOT NULL constraint failed: t.nn"},
		{"INSERT INTO t VALUES (4, 'd', 'x', 7)", sqlite3.ErrConstraint, sqlite3.ErrConstraintForeignKey, "FOREIGN KEY constraint failed"},
		{"SELEC 1", sqlite3.ErrError, sqlite3.ErrNoExtended(sqlite3.ErrError), `near "SELEC": syntax error`},
	}
	for _, c := range cases {
		_, err := db.Exec(c.sql)
		// The two ways programs test it: a type assertion on the value, and errors.As.
		direct, ok := err.(sqlite3.Error)
		var viaAs sqlite3.Error
		if !ok || !errors.As(err, &viaAs) {
			t.Errorf("%s: err = %v (%T), want a sqlite3.Error", c.sql, err, err)
			continue
		}
		if direct.Code != c.code || direct.ExtendedCode != c.ext || direct.Error() != c.msg {
			t.Errorf("%s: Error{Code %d, ExtendedCode %d} %q; want {%d, %d} %q", c.sql,
				direct.Code, direct.ExtendedCode, direct.Error(), c.code, c.ext, c.msg)
		}
	}
	if got := sqlite3.ErrBusy.Error(); got != "database is locked" {
		t.Errorf("ErrBusy.Error() = %q", got)
	}
	if got := sqlite3.ErrConstraintUnique.Error(); got != "constraint failed" {
		t.Errorf("ErrConstraintUnique.Error() = %q", got)
	}
	if sqlite3.ErrConstraint.Extend(8) != sqlite3.ErrConstraintUnique {
		t.Errorf("ErrConstraint.Extend(8) = %d", sqlite3.ErrConstraint.Extend(8))
	}
}

func TestDSNOptions(t *testing.T) {
	db := open(t, "sqlite3", "file:"+filepath.Join(t.TempDir(), "d.db")+
		"?_fk=1&_busy_timeout=4321&_journal_mode=WAL&_txlock=immediate&_sync=NORMAL&_rt=1")
	exec(t, db, "CREATE TABLE t(x)")
	for name, want := range map[string]int64{"foreign_keys": 1, "busy_timeout": 4321, "recursive_triggers": 1} {
		if got := pragma(t, db, name); got != want {
			t.Errorf("PRAGMA %s = %d, want %d", name, got, want)
		}
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	// synchronous is read where it acts, in a write transaction: litepool applies it to the
	// writer (its readers report SQLite's default; go/README.md, "Differences").
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var sync int64
	if err := tx.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
		t.Errorf("synchronous in a write transaction = %d, %v; want 1 (NORMAL)", sync, err)
	}
}

func TestConnectHook(t *testing.T) {
	var calls atomic.Int32
	path := filepath.Join(t.TempDir(), "hook.db")
	hooked := compattest.Register(&sqlite3.SQLiteDriver{
		ConnectHook: func(conn *sqlite3.SQLiteConn) error {
			calls.Add(1)
			if got := conn.GetFilename(""); got != path {
				t.Errorf("GetFilename = %q, want %q", got, path)
			}
			// The usual use: turning foreign keys on for every connection.
			for _, q := range []string{"PRAGMA foreign_keys = ON", "PRAGMA recursive_triggers = ON"} {
				if _, err := conn.Exec(q, nil); err != nil {
					return err
				}
			}
			return nil
		},
	})
	db := open(t, hooked, path)
	if got := pragma(t, db, "recursive_triggers"); got != 1 {
		t.Errorf("recursive_triggers set by the hook = %d, want 1", got)
	}
	exec(t, db, "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id))")
	_, err := db.Exec("INSERT INTO c VALUES (5)")
	if se, ok := err.(sqlite3.Error); !ok || se.ExtendedCode != sqlite3.ErrConstraintForeignKey {
		t.Errorf("orphan insert with foreign keys turned on by the hook: %v", err)
	}
	if calls.Load() == 0 {
		t.Error("ConnectHook never ran")
	}

	failing := compattest.Register(&sqlite3.SQLiteDriver{
		ConnectHook: func(*sqlite3.SQLiteConn) error { return errors.New("hook refused") },
	})
	bad := open(t, failing, filepath.Join(t.TempDir(), "bad.db"))
	if err := bad.Ping(); err == nil || !strings.Contains(err.Error(), "hook refused") {
		t.Errorf("Ping with a failing hook: %v, want the hook's error", err)
	}
}

func TestExtensionsFail(t *testing.T) {
	withExt := compattest.Register(&sqlite3.SQLiteDriver{Extensions: []string{"no_such_extension_lib"}})
	// go-sqlite3 fails when it connects, litepool already at sql.Open.
	db, err := sql.Open(withExt, filepath.Join(t.TempDir(), "x.db"))
	if err == nil {
		defer db.Close()
		err = db.Ping()
	}
	if err == nil {
		t.Fatal("a driver with an extension that cannot be loaded opened a connection")
	}
}

func TestVersion(t *testing.T) {
	version, number, source := sqlite3.Version()
	db := open(t, "sqlite3", filepath.Join(t.TempDir(), "v.db"))
	var dbVersion, dbSource string
	if err := db.QueryRow("SELECT sqlite_version(), sqlite_source_id()").Scan(&dbVersion, &dbSource); err != nil {
		t.Fatal(err)
	}
	var major, minor, patch int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); err != nil || number != major*1000000+minor*1000+patch {
		t.Errorf("Version() = %q, %d: number does not match", version, number)
	}
	if version != dbVersion || source != dbSource {
		t.Errorf("Version() = %q, %q; the database says %q, %q", version, source, dbVersion, dbSource)
	}
}

func TestTransactionRollbackOnError(t *testing.T) {
	compattest.RollbackAfterError(t, "sqlite3", func(err error) bool {
		se, ok := err.(sqlite3.Error)
		return ok && se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	})
}

func TestDeclaredTimeColumns(t *testing.T) { compattest.DeclaredTimeColumns(t, "sqlite3") }
