// Tests of what this module adds to litepool (not run against go-sqlite3).
package sqlite3_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	litepool "github.com/litepool/litepool/go"
	"github.com/mattn/go-sqlite3"
)

// sqlite3.Error wraps litepool's error; a bad DSN stays litepool's ErrConfig.
func TestErrorsKeepLitepools(t *testing.T) {
	db := open(t, "sqlite3", filepath.Join(t.TempDir(), "w.db")+"?_fk=1")
	exec(t, db, "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id))")
	_, err := db.Exec("INSERT INTO c VALUES (9)")
	if se, ok := err.(sqlite3.Error); !ok || !errors.Is(se, litepool.ErrConstraint) {
		t.Fatalf("orphan insert: %v (%T), want a sqlite3.Error matching litepool.ErrConstraint", err, err)
	}

	_, err = sql.Open("sqlite3", filepath.Join(t.TempDir(), "b.db")+"?_nonsense=1")
	if _, ok := err.(sqlite3.Error); ok || !errors.Is(err, litepool.ErrConfig) {
		t.Fatalf("bad DSN: %v (%T), want litepool.ErrConfig", err, err)
	}
}
