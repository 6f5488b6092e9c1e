package litepool

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func tempDB(t *testing.T, opts string) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	dsn := path
	if opts != "" {
		dsn = "file:" + path + "?" + opts
	}
	db, err := sql.Open("litepool", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func mustExec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

func TestDriverExecQuery(t *testing.T) {
	db, _ := tempDB(t, "")
	mustExec(t, db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, n INTEGER)")
	res := mustExec(t, db, "INSERT INTO t(name, score, data, n) VALUES (?, ?, ?, ?)", "alice", 1.5, []byte{1, 2, 3}, nil)
	if id, _ := res.LastInsertId(); id != 1 {
		t.Fatalf("LastInsertId = %d", id)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("RowsAffected = %d", n)
	}
	mustExec(t, db, "INSERT INTO t(name, score, data, n) VALUES (?, ?, ?, ?)", "bob", float32(2.5), []byte{}, uint8(7))
	rows, err := db.Query("SELECT id, name, score, data, n FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id int64
		var name string
		var score float64
		var data []byte
		var n sql.NullInt64
		if err := rows.Scan(&id, &name, &score, &data, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{name, string(rune('0' + len(data)))}, ":"))
		if id == 2 && (n.Int64 != 7 || score != 2.5) {
			t.Fatalf("row 2: n=%v score=%v", n, score)
		}
		if id == 1 && (n.Valid || string(data) != "\x01\x02\x03") {
			t.Fatalf("row 1: n=%v data=%v", n, data)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "alice:3,bob:0" {
		t.Fatalf("got %v", got)
	}
	var count int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE name = ?", "bob").Scan(&count); err != nil || count != 1 {
		t.Fatalf("count=%d err=%v", count, err)
	}
	// Scanning NULL into a non-pointer target: the standard database/sql error.
	var s string
	err = db.QueryRow("SELECT n FROM t WHERE id = 1").Scan(&s)
	if err == nil || !strings.Contains(err.Error(), "converting NULL to string is unsupported") {
		t.Fatalf("NULL into string: %v", err)
	}
}

func TestDriverMultiStatementExec(t *testing.T) {
	db, _ := tempDB(t, "")
	mustExec(t, db, "CREATE TABLE a(x); CREATE TABLE b(y); INSERT INTO a VALUES (1);")
	var x int
	if err := db.QueryRow("SELECT x FROM a").Scan(&x); err != nil || x != 1 {
		t.Fatal(x, err)
	}
	if _, err := db.Exec("INSERT INTO a VALUES (?); INSERT INTO a VALUES (?)", 1, 2); !errors.Is(err, ErrStatementCount) {
		t.Fatalf("multi-statement with args: %v", err)
	}
	if _, err := db.Exec(""); !errors.Is(err, ErrStatementCount) {
		t.Fatalf("empty: %v", err)
	}
}

func TestDriverTransactions(t *testing.T) {
	db, _ := tempDB(t, "")
	mustExec(t, db, "CREATE TABLE t(x INTEGER)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "INSERT INTO t VALUES (1)")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "INSERT INTO t VALUES (2)")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := db.QueryRow("SELECT sum(x) FROM t").Scan(&sum); err != nil || sum != 2 {
		t.Fatal(sum, err)
	}
	// Read-only: a reader with one snapshot; writing fails.
	defer func() {
		if t.Failed() {
			t.Log("failed")
		}
	}()
	ro, err := db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	// SQLite starts the snapshot at the first read of the transaction.
	if err := ro.QueryRow("SELECT sum(x) FROM t").Scan(&sum); err != nil || sum != 2 {
		t.Fatalf("first read: sum=%d err=%v", sum, err)
	}
	mustExec(t, db, "INSERT INTO t VALUES (40)")
	if err := ro.QueryRow("SELECT sum(x) FROM t").Scan(&sum); err != nil || sum != 2 {
		t.Fatalf("snapshot: sum=%d err=%v", sum, err)
	}
	if _, err := ro.Exec("INSERT INTO t VALUES (3)"); err == nil {
		t.Fatal("write in a read-only transaction succeeded")
	} else {
		t.Logf("write in read-only tx: %v", err)
	}
	ro.Rollback()
	if _, err := db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelLinearizable}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("linearizable: %v", err)
	}
	if tx, err := db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelReadCommitted}); err != nil {
		t.Fatalf("read committed: %v", err)
	} else {
		tx.Rollback()
	}
}

func TestDriverErrors(t *testing.T) {
	db, path := tempDB(t, "")
	mustExec(t, db, "CREATE TABLE t(x INTEGER PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	_, err := db.Exec("INSERT INTO t VALUES (1)")
	var le *Error
	if !errors.Is(err, ErrConstraint) || !errors.As(err, &le) || le.Code != 19 || le.ExtendedCode != 1555 {
		t.Fatalf("constraint: %v %+v", err, le)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (?)", 1, 2); !errors.Is(err, ErrParameterCount) {
		t.Fatalf("param count: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (?)"); !errors.Is(err, ErrParameterCount) {
		t.Fatalf("param count (none): %v", err)
	}
	if _, err := db.Exec("SELEC 1"); err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("syntax: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (:x)", sql.Named("x", 1)); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("named: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (?)", struct{}{}); err == nil || !strings.Contains(err.Error(), "unsupported type") {
		t.Fatalf("struct arg: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (?)", uint64(1<<63)); err == nil {
		t.Fatal("uint64 overflow accepted")
	}
	// Closed rows, closed DB.
	rows, err := db.Query("SELECT x FROM t")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if rows.Next() {
		t.Fatal("Next after Close")
	}
	var x int
	if err := rows.Scan(&x); err == nil {
		t.Fatal("Scan after Close")
	}
	db.Close()
	if _, err := db.Exec("SELECT 1"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("closed db: %v", err)
	}
	// Closing the last user of the file closes the pool: no -wal / -shm left.
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("%s%s still exists after Close", path, suffix)
		}
	}
}

func TestDriverTimeRoundTrip(t *testing.T) {
	db, _ := tempDB(t, "")
	mustExec(t, db, "CREATE TABLE t(at DATETIME, s TEXT)")
	loc := time.FixedZone("X", -5*3600-30*60)
	want := []time.Time{
		time.Date(2024, 2, 29, 13, 4, 5, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, loc),
	}
	for _, w := range want {
		mustExec(t, db, "INSERT INTO t VALUES (?, ?)", w, "plain")
	}
	var stored string
	if err := db.QueryRow("SELECT CAST(at AS BLOB) FROM t LIMIT 1").Scan(&stored); err != nil || stored != "2024-02-29 13:04:05.123456789+00:00" {
		t.Fatalf("stored %q %v", stored, err)
	}
	rows, err := db.Query("SELECT at, s FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var got time.Time
		var s string
		if err := rows.Scan(&got, &s); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want[i]) {
			t.Fatalf("got %v want %v", got, want[i])
		}
		if _, off := got.Zone(); func() int { _, o := want[i].Zone(); return o }() != off {
			t.Fatalf("zone offset lost: %v", got)
		}
		i++
	}
	if rows.Err() != nil || i != 2 {
		t.Fatal(i, rows.Err())
	}
	// SQLite's date functions read the stored form.
	var day string
	if err := db.QueryRow("SELECT date(at) FROM t LIMIT 1").Scan(&day); err != nil || day != "2024-02-29" {
		t.Fatal(day, err)
	}
}

var sqlTxReadOnly = sql.TxOptions{ReadOnly: true}

func openDB(dsn string) (*sql.DB, error) { return sql.Open("litepool", dsn) }
