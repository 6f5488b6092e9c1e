package litepool

// The one-call paths: a statement runs and returns its columns and first batch in one C call
// (litepool_session_query_first); Pool.QueryRow/Query/Exec run outside any transaction; the
// parameters go through each session's reused C buffer.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"
)

// A pool with one reader and no waiting: a read fails at once with ErrPoolTimeout if anything
// still holds the reader.
const oneReader = "max_readers=1&acquire_timeout=0"

func TestPoolOneCallStatements(t *testing.T) {
	p, path := openPool(t, oneReader)
	ctx := context.Background()
	if _, err := p.Exec(ctx, "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	res, err := p.Exec(ctx, "INSERT INTO kv(v) VALUES (?), (?)", "a", "b")
	if err != nil || res.RowsAffected != 2 || res.LastInsertID != 2 {
		t.Fatalf("exec: %+v %v", res, err)
	}
	// Exec committed at once: another connection of the process sees the rows.
	db, err := sql.Open("litepool", "file:"+path+"?"+oneReader)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM kv").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count through database/sql: %d %v", n, err)
	}

	var v string
	if err := p.QueryRow(ctx, "SELECT v FROM kv WHERE id = ?", []any{2}, &v); err != nil || v != "b" {
		t.Fatalf("QueryRow: %q %v", v, err)
	}
	if err := p.QueryRow(ctx, "SELECT v FROM kv WHERE id = ?", []any{99}, &v); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("QueryRow of a missing key: %v", err)
	}
	// A write through QueryRow (RETURNING) commits too.
	var id int64
	if err := p.QueryRow(ctx, "INSERT INTO kv(v) VALUES (?) RETURNING id", []any{"c"}, &id); err != nil || id != 3 {
		t.Fatalf("INSERT RETURNING: %d %v", id, err)
	}
	if err := db.QueryRow("SELECT v FROM kv WHERE id = 3").Scan(&v); err != nil || v != "c" {
		t.Fatalf("the RETURNING insert is not committed: %q %v", v, err)
	}
	// Nothing was left holding the only reader.
	if err := p.Read(ctx, func(c *Conn) error { return c.QueryRow("SELECT count(*) FROM kv", nil, &n) }); err != nil || n != 3 {
		t.Fatalf("read after the one-call statements: %d %v", n, err)
	}
	// Bad SQL: a typed error, and the pool goes on.
	if err := p.QueryRow(ctx, "SELECT nope FROM kv", nil, &v); err == nil || !strings.Contains(err.Error(), "no such column") {
		t.Fatalf("bad SQL: %v", err)
	}
	if err := p.QueryRow(ctx, "SELECT v FROM kv WHERE id = 1", nil, &v); err != nil || v != "a" {
		t.Fatalf("after an error: %q %v", v, err)
	}
}

func TestPoolQueryManyRowsAndEarlyBreak(t *testing.T) {
	p, _ := openPool(t, oneReader)
	ctx := context.Background()
	if _, err := p.Exec(ctx, "CREATE TABLE t(x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) INSERT INTO t SELECT x FROM c"); err != nil {
		t.Fatal(err)
	}
	// More rows than one batch: the first comes with the call, the rest through the rows.
	want := int64(1)
	for row, err := range p.Query(ctx, "SELECT x FROM t ORDER BY x") {
		if err != nil {
			t.Fatal(err)
		}
		var x int64
		if err := row.Scan(&x); err != nil || x != want {
			t.Fatalf("row %d: %d %v", want, x, err)
		}
		want++
	}
	if want != 3001 {
		t.Fatalf("read %d rows, want 3000", want-1)
	}
	// Breaking out early gives the reader back.
	for _, err := range p.Query(ctx, "SELECT x FROM t ORDER BY x") {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM t", nil, &n); err != nil || n != 3000 {
		t.Fatalf("after an early break: %d %v", n, err)
	}
}

// An error after a few rows of the first batch ends the iteration with that error, through
// the native API and through database/sql, after exactly the rows before it.
func TestErrorInsideFirstBatch(t *testing.T) {
	const failing = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10) " +
		"SELECT CASE WHEN x < 4 THEN x ELSE abs(-9223372036854775807 - 1) END FROM c"
	p, path := openPool(t, oneReader)
	ctx := context.Background()
	n := 0
	var iterErr error
	for _, err := range p.Query(ctx, failing) {
		if err != nil {
			iterErr = err
			break
		}
		n++
	}
	if n != 3 || iterErr == nil || !strings.Contains(iterErr.Error(), "integer overflow") {
		t.Fatalf("native: %d rows, then %v", n, iterErr)
	}
	db, err := sql.Open("litepool", "file:"+path+"?"+oneReader)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(failing)
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); n != 3 || err == nil || !strings.Contains(err.Error(), "integer overflow") {
		t.Fatalf("database/sql: %d rows, then rows.Err() = %v", n, err)
	}
	rows.Close()
	var one int
	if err := p.QueryRow(ctx, "SELECT 1", nil, &one); err != nil {
		t.Fatalf("the failed statement kept the reader: %v", err)
	}
}

type celsius float64

type upper string

func (u upper) Value() (driver.Value, error) { return strings.ToUpper(string(u)), nil }

// Parameters go through a C buffer each session reuses: a big one, then small ones, then
// every kind, each must arrive as given; a type litepool cannot bind is a typed error that
// leaves the session usable.
func TestParametersThroughReusedBuffer(t *testing.T) {
	p, _ := openPool(t, "")
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	var got []byte
	if err := p.QueryRow(ctx, "SELECT ?", []any{big}, &got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MB blob: %d bytes, %v", len(got), err)
	}
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	seven := int32(7)
	var (
		i       int64
		f       float64
		s, u, e string
		b       []byte
		tm      time.Time
		null    any
		ptr     int64
		flag    bool
	)
	err := p.QueryRow(ctx, "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?",
		[]any{int8(-3), celsius(21.5), "héllo", upper("abc"), "", []byte{0, 1}, when, nil, &seven, true},
		&i, &f, &s, &u, &e, &b, &tm, &null, &ptr, &flag)
	if err != nil {
		t.Fatal(err)
	}
	if i != -3 || f != 21.5 || s != "héllo" || u != "ABC" || e != "" || !bytes.Equal(b, []byte{0, 1}) ||
		!tm.Equal(when) || null != nil || ptr != 7 || !flag {
		t.Fatalf("got %v %v %q %q %q %v %v %v %v %v", i, f, s, u, e, b, tm, null, ptr, flag)
	}
	err = p.QueryRow(ctx, "SELECT ?", []any{struct{}{}}, &s)
	var le *Error
	if !errors.As(err, &le) || le.Status != StatusInvalidArgument || !strings.Contains(err.Error(), "parameter 1") {
		t.Fatalf("unsupported parameter: %v", err)
	}
	if err := p.QueryRow(ctx, "SELECT ?", []any{"still fine"}, &s); err != nil || s != "still fine" {
		t.Fatalf("after a refused parameter: %q %v", s, err)
	}
}

// database/sql hands the driver's column names to the caller: changing them must not change
// the next query's.
func TestColumnsAreTheCallersCopy(t *testing.T) {
	db, _ := tempDB(t, "")
	for range 2 {
		rows, err := db.Query("SELECT 1 AS one, 2 AS two")
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil || len(cols) != 2 || cols[0] != "one" || cols[1] != "two" {
			t.Fatalf("columns %v %v", cols, err)
		}
		cols[0] = "changed"
		rows.Close()
	}
	// Other columns on the same connection follow.
	var x int
	rows, err := db.Query("SELECT 3 AS three")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if len(cols) != 1 || cols[0] != "three" || !rows.Next() || rows.Scan(&x) != nil || x != 3 {
		t.Fatalf("columns %v, value %d", cols, x)
	}
}

// A statement that opens a transaction outside Read/Write is rolled back and reported: the
// pool's next user must not inherit the transaction (nor the writer it holds).
func TestPoolStatementLeavingTransaction(t *testing.T) {
	p, _ := openPool(t, "acquire_timeout=0")
	ctx := context.Background()
	if _, err := p.Exec(ctx, "CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"BEGIN IMMEDIATE", "SAVEPOINT s"} {
		_, err := p.Exec(ctx, stmt)
		var le *Error
		if !errors.As(err, &le) || le.Kind != KindProgramming || !strings.Contains(err.Error(), "left a transaction open") {
			t.Fatalf("%s: %v", stmt, err)
		}
		// The writer is free at once (acquire_timeout=0) and the insert commits on its own.
		if _, err := p.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			t.Fatalf("after %s: %v", stmt, err)
		}
	}
	n := 0
	for _, err := range p.Query(ctx, "BEGIN") {
		if err == nil || !strings.Contains(err.Error(), "left a transaction open") {
			t.Fatalf("Query(BEGIN): %v", err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("Query(BEGIN) yielded %d times", n)
	}
	var count int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM t", nil, &count); err != nil || count != 2 {
		t.Fatalf("count %d %v", count, err)
	}
}
