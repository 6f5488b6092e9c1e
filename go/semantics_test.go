package litepool

// Per-connection semantics (issue 18), as SQLite documents them for one connection.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A write that fails when it ends (a deferred foreign key checked at its autocommit) after
// its RETURNING rows were computed: SQLite rolls the row back, so the error comes from
// Query or the first Next, never after a row.
func TestReturningWriteFailingAtItsEndReturnsNoRow(t *testing.T) {
	db, _ := tempDB(t, "foreign_keys=true")
	mustExec(t, db, `CREATE TABLE a(id INTEGER PRIMARY KEY);
		CREATE TABLE b(id INTEGER PRIMARY KEY,
		               a_id INTEGER REFERENCES a(id) DEFERRABLE INITIALLY DEFERRED)`)
	for i := 0; i < 2; i++ {
		rows, err := db.Query("INSERT INTO b(a_id) VALUES (1) RETURNING id")
		if err == nil {
			if rows.Next() {
				var id int64
				_ = rows.Scan(&id)
				t.Fatalf("a row of a rolled-back insert came back: %d", id)
			}
			err = rows.Err()
			rows.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
			t.Fatalf("want the foreign key error, got %v", err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM b").Scan(&n); err != nil || n != 0 {
		t.Fatalf("count: %d %v", n, err)
	}
}

// Setting a connection pragma is that connection's state: it never waits for the writer
// that another connection holds in a transaction.
func TestSettingAPragmaDoesNotWaitForTheWriter(t *testing.T) {
	db, _ := tempDB(t, "acquire_timeout=2s")
	mustExec(t, db, "CREATE TABLE t(x)")
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	mustExec(t, tx, "INSERT INTO t VALUES (1)")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only=1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("PRAGMA query_only=1 waited %v for the writer", d)
	}
	tx.Commit()
	_, err = conn.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("query_only did not act: %v", err)
	}
	if errors.Is(err, ErrPoolTimeout) {
		t.Fatalf("%v", err)
	}
}
