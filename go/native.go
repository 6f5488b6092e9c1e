package litepool

/*
#include "litepool.h"
*/
import "C"

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// Pool is the native API: one database file's pool, shared with every *sql.DB of the process
// that opened the same file.
type Pool struct {
	ref *poolRef

	mu     sync.Mutex
	idle   []*session // sessions kept for reuse (they hold no SQLite connection)
	closed bool
}

// maxIdleSessions bounds the sessions a Pool keeps for reuse: enough for the goroutines of a
// busy service (an idle session holds no SQLite connection, only a little memory), so
// concurrent one-call statements do not open and close a session each.
const maxIdleSessions = 256

// Open opens (or joins) the pool of the database named by dsn (same DSN as the driver).
func Open(dsn string) (*Pool, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	ref, err := acquirePool(cfg)
	if err != nil {
		return nil, err
	}
	return &Pool{ref: ref}, nil
}

func (p *Pool) getSession() (*session, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, closedError("open", "the pool")
	}
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	return openSession(p.ref)
}

func (p *Pool) putSession(s *session, clean bool) {
	p.mu.Lock()
	if clean && !p.closed && len(p.idle) < maxIdleSessions && !s.closed.Load() {
		p.idle = append(p.idle, s)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	s.close()
}

// Read runs fn in a read transaction on a reader: every query fn makes sees one snapshot.
// The context interrupts fn's statements when done. If fn panics, the transaction is ended,
// the connection returned, and the panic propagates.
func (p *Pool) Read(ctx context.Context, fn func(*Conn) error) error {
	return p.run(ctx, true, func(c *Conn) error { return fn(c) })
}

// Write runs fn in a write transaction (BEGIN IMMEDIATE on the writer; waiting for the writer
// happens in Go and honours ctx). It commits when fn returns nil and rolls back when fn
// returns an error or panics (the panic propagates).
func (p *Pool) Write(ctx context.Context, fn func(*Tx) error) error {
	return p.run(ctx, false, func(c *Conn) error { return fn(&Tx{c}) })
}

func (p *Pool) run(ctx context.Context, readOnly bool, fn func(*Conn) error) (err error) {
	s, err := p.getSession()
	if err != nil {
		return err
	}
	if err := s.begin(ctx, readOnly); err != nil {
		p.putSession(s, !errors.Is(err, ErrClosed))
		return err
	}
	c := &Conn{s: s, ctx: ctx, readOnly: readOnly}
	finished := false
	defer func() {
		c.done = true
		if !finished { // fn panicked
			rbErr := s.rollback()
			p.putSession(s, rbErr == nil)
		}
	}()
	err = fn(c)
	finished = true
	if err != nil {
		rbErr := s.rollback()
		p.putSession(s, rbErr == nil)
		return err
	}
	if err = s.commit(); err != nil {
		rbErr := s.rollback()
		p.putSession(s, rbErr == nil)
		return err
	}
	p.putSession(s, true)
	return nil
}

// QueryRow runs one statement outside any transaction and scans its first row into dest;
// sql.ErrNoRows when it has none. A read-only statement runs on a free reader and is its own
// snapshot; anything else runs on the writer and commits at once. One call into litepool and
// one trip to the connection thread, where Read costs three (BEGIN, the query, COMMIT). The
// context interrupts the statement when done.
func (p *Pool) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	s, err := p.getSession()
	if err != nil {
		return err
	}
	return p.endStatement(s, "query", firstRow(ctx, s, query, args, dest))
}

// Query runs one statement outside any transaction (as QueryRow does) and iterates its rows
// as Conn.Query does. The rows keep their connection until the loop ends.
func (p *Pool) Query(ctx context.Context, query string, args ...any) iter.Seq2[*Row, error] {
	return func(yield func(*Row, error) bool) {
		s, err := p.getSession()
		if err != nil {
			yield(nil, err)
			return
		}
		ok := true
		queryRows(ctx, s, query, args, func(row *Row, err error) bool {
			ok = yield(row, err)
			return ok
		})
		if err := p.endStatement(s, "query", nil); err != nil && ok {
			yield(nil, err)
		}
	}
}

// Exec runs one statement outside any transaction: a write commits at once (autocommit on
// the writer), in one trip to the connection thread where Write costs three.
func (p *Pool) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	s, err := p.getSession()
	if err != nil {
		return Result{}, err
	}
	res, err := runExec(ctx, s, query, args, anyValue)
	err = p.endStatement(s, "exec", err)
	return Result{RowsAffected: res.changes, LastInsertID: res.lastID}, err
}

// endStatement gives back the session of a one-statement call whose error was err. A
// statement that left a transaction open (BEGIN, SAVEPOINT) is rolled back and its session
// closed, so no later caller inherits it; that is reported as an error (transactions belong in
// Read and Write).
func (p *Pool) endStatement(s *session, op string, err error) error {
	open, txErr := s.inTransaction()
	if txErr == nil && !open {
		p.putSession(s, !errors.Is(err, ErrClosed))
		return err
	}
	s.rollback()
	p.putSession(s, false)
	if err != nil {
		return err
	}
	if txErr != nil {
		return txErr
	}
	return &Error{Op: op, Status: StatusInvalidArgument, Kind: KindProgramming,
		Message: "the statement left a transaction open; it was rolled back (use Pool.Write or Pool.Read for transactions)"}
}

// Close releases the pool; the last user of the file in the process closes it for real
// (checkpoint TRUNCATE, every connection closed: no FD left on the file). Idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
	return p.ref.release()
}

// CheckpointMode selects a checkpoint's mode.
type CheckpointMode uint32

// Checkpoint modes (sqlite3_wal_checkpoint_v2's).
const (
	CheckpointPassive  CheckpointMode = C.LITEPOOL_CHECKPOINT_PASSIVE
	CheckpointFull     CheckpointMode = C.LITEPOOL_CHECKPOINT_FULL
	CheckpointRestart  CheckpointMode = C.LITEPOOL_CHECKPOINT_RESTART
	CheckpointTruncate CheckpointMode = C.LITEPOOL_CHECKPOINT_TRUNCATE
)

// CheckpointResult says what one checkpoint did.
type CheckpointResult struct {
	Busy               bool // could not finish: readers or the writer kept the WAL in use
	Complete           bool // every WAL frame is in the database now
	LogFrames          int64
	CheckpointedFrames int64
	Duration           time.Duration
}

// Checkpoint runs a checkpoint now (ErrNotSupported for in-memory, read-only and non-WAL
// pools).
func (p *Pool) Checkpoint(mode CheckpointMode) (CheckpointResult, error) {
	if p.isClosed() {
		return CheckpointResult{}, closedError("checkpoint", "the pool")
	}
	var res C.litepool_checkpoint_result
	var cerr *C.litepool_error
	st := C.litepool_pool_checkpoint(p.ref.h, C.litepool_checkpoint_mode(mode), &res, &cerr)
	if err := takeError(st, cerr, "checkpoint"); err != nil {
		return CheckpointResult{}, err
	}
	return CheckpointResult{Busy: res.busy != 0, Complete: res.complete != 0, LogFrames: int64(res.log_frames),
		CheckpointedFrames: int64(res.checkpointed_frames), Duration: time.Duration(res.duration_us) * time.Microsecond}, nil
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Metric is one metric of a Stats snapshot.
type Metric struct {
	Name, Help string
	Counter    bool // a counter (only grows); else a gauge
	Value      float64
}

// Stats is a snapshot of the pool's metrics (connections open and in use, waiters, acquires,
// checkpoints, WAL size, FDs on the database files, ...).
type Stats struct {
	Metrics    []Metric
	Prometheus string // the snapshot in the Prometheus text format
}

// Get returns the value of the metric called name and whether it exists.
func (s Stats) Get(name string) (float64, bool) {
	for _, m := range s.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// Stats takes a snapshot of the pool's metrics.
func (p *Pool) Stats() (Stats, error) {
	if p.isClosed() {
		return Stats{}, closedError("stats", "the pool")
	}
	return p.ref.stats()
}

func (p *poolRef) stats() (Stats, error) {
	var h C.litepool_stats
	var cerr *C.litepool_error
	if err := takeError(C.litepool_pool_stats(p.h, &h, &cerr), cerr, "stats"); err != nil {
		return Stats{}, err
	}
	defer C.litepool_stats_free(h)
	var n C.size_t
	if err := takeError(C.litepool_stats_count(h, &n, &cerr), cerr, "stats"); err != nil {
		return Stats{}, err
	}
	out := Stats{Metrics: make([]Metric, 0, int(n))}
	for i := 0; i < int(n); i++ {
		var m C.litepool_metric
		if err := takeError(C.litepool_stats_metric(h, C.size_t(i), &m, &cerr), cerr, "stats"); err != nil {
			return Stats{}, err
		}
		out.Metrics = append(out.Metrics, Metric{Name: goStr(m.name), Help: goStr(m.help),
			Counter: m.kind == C.LITEPOOL_METRIC_COUNTER, Value: float64(m.value)})
	}
	var text C.litepool_str
	if err := takeError(C.litepool_stats_prometheus(h, &text, &cerr), cerr, "stats"); err != nil {
		return Stats{}, err
	}
	out.Prometheus = goStr(text)
	return out, nil
}

// Conn is a transaction's connection inside Pool.Read or Pool.Write; valid only during the
// callback. Its statements are interrupted when the callback's context is done.
type Conn struct {
	s        *session
	ctx      context.Context
	readOnly bool
	done     bool
}

// Tx is the write transaction of Pool.Write.
type Tx struct{ *Conn }

// Result is what Exec reports.
type Result struct {
	RowsAffected int64
	LastInsertID int64
}

func (c *Conn) check(op string) error {
	if c.done {
		return closedError(op, "the connection (used after its Read/Write callback returned)")
	}
	return nil
}

// Exec runs one statement with positional parameters (or, without parameters, a script).
func (c *Conn) Exec(query string, args ...any) (Result, error) {
	if err := c.check("exec"); err != nil {
		return Result{}, err
	}
	res, err := runExec(c.ctx, c.s, query, args, anyValue)
	return Result{RowsAffected: res.changes, LastInsertID: res.lastID}, err
}

// Query runs a statement and iterates its rows. Each step yields (row, nil), or (nil, err)
// once when the statement fails (before its first row or in the middle), so the loop body
// always sees the error:
//
//	for row, err := range c.Query("SELECT id, name FROM users WHERE team = ?", team) {
//		if err != nil {
//			return err
//		}
//		...
//	}
//
// The row is valid only during its iteration step (copy with Values). Breaking out of the
// loop closes the statement.
func (c *Conn) Query(query string, args ...any) iter.Seq2[*Row, error] {
	return func(yield func(*Row, error) bool) {
		if err := c.check("query"); err != nil {
			yield(nil, err)
			return
		}
		queryRows(c.ctx, c.s, query, args, yield)
	}
}

// queryRows runs stmt on s and yields its rows as Conn.Query does.
func queryRows(ctx context.Context, s *session, stmt string, args []any, yield func(*Row, error) bool) {
	var r rowsCore
	if err := runQuery(ctx, s, stmt, args, anyValue, &r); err != nil {
		yield(nil, err)
		return
	}
	defer r.close()
	row := &Row{cols: r.cols, vals: make([]driver.Value, len(r.cols))}
	for {
		err := r.next(row.vals)
		if err == io.EOF {
			return
		}
		if err != nil {
			yield(nil, err)
			return
		}
		if !yield(row, nil) {
			return
		}
	}
}

// firstRow runs stmt on s and scans its first row into dest; sql.ErrNoRows when it has
// none.
func firstRow(ctx context.Context, s *session, stmt string, args []any, dest []any) error {
	var r rowsCore
	if err := runQuery(ctx, s, stmt, args, anyValue, &r); err != nil {
		return err
	}
	defer r.close()
	var small [4]driver.Value
	vals := small[:0]
	if len(r.cols) > len(small) {
		vals = make([]driver.Value, len(r.cols))
	}
	vals = vals[:len(r.cols)]
	if err := r.next(vals); err != nil {
		if err == io.EOF {
			return sql.ErrNoRows
		}
		return err
	}
	row := Row{cols: r.cols, vals: vals}
	return row.Scan(dest...)
}

// QueryRow runs a query and scans its first row into dest; sql.ErrNoRows when it has none.
func (c *Conn) QueryRow(query string, args []any, dest ...any) error {
	if err := c.check("query"); err != nil {
		return err
	}
	return firstRow(c.ctx, c.s, query, args, dest)
}

// Row is one row of a native query.
type Row struct {
	cols []string
	vals []driver.Value
}

// Columns returns the column names.
func (r *Row) Columns() []string { return r.cols }

// Values returns a copy of the row's values: nil, int64, float64, string, []byte or
// time.Time.
func (r *Row) Values() []any {
	out := make([]any, len(r.vals))
	for i, v := range r.vals {
		out[i] = v
	}
	return out
}

// Scan copies the row's values into dest (pointers to int64, int, int32, float64, string,
// []byte, bool, time.Time, any, pointers to those for NULL-able columns, or sql.Scanner).
// NULL into a non-nullable target is an error, as in database/sql.
func (r *Row) Scan(dest ...any) error {
	if len(dest) != len(r.vals) {
		return &Error{Op: "scan", Status: StatusInvalidArgument, Kind: KindProgramming,
			Message: fmt.Sprintf("expected %d destination arguments in Scan, not %d", len(r.vals), len(dest))}
	}
	for i, d := range dest {
		if err := assign(d, r.vals[i]); err != nil {
			return &Error{Op: "scan", Status: StatusInvalidArgument, Kind: KindProgramming,
				Message: fmt.Sprintf("column %d (%s): %v", i, r.cols[i], err)}
		}
	}
	return nil
}

func assign(dest any, v driver.Value) error {
	if sc, ok := dest.(sql.Scanner); ok {
		return sc.Scan(v)
	}
	switch d := dest.(type) {
	case *any:
		*d = v
		return nil
	case *int64:
		n, err := asInt(v)
		*d = n
		return err
	case *int:
		n, err := asInt(v)
		*d = int(n)
		return err
	case *int32:
		n, err := asInt(v)
		*d = int32(n)
		return err
	case *float64:
		switch x := v.(type) {
		case float64:
			*d = x
		case int64:
			*d = float64(x)
		case string:
			f, err := strconv.ParseFloat(x, 64)
			*d = f
			return err
		case nil:
			return errNull("float64")
		default:
			return fmt.Errorf("cannot scan %T into *float64", v)
		}
		return nil
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
		case []byte:
			*d = string(x)
		case int64:
			*d = strconv.FormatInt(x, 10)
		case float64:
			*d = strconv.FormatFloat(x, 'g', -1, 64)
		case time.Time:
			*d = x.Format(TimeFormat)
		case nil:
			return errNull("string")
		}
		return nil
	case *[]byte:
		switch x := v.(type) {
		case []byte:
			*d = append([]byte(nil), x...)
		case string:
			*d = []byte(x)
		case nil:
			*d = nil
		default:
			return fmt.Errorf("cannot scan %T into *[]byte", v)
		}
		return nil
	case *bool:
		n, err := asInt(v)
		*d = n != 0
		return err
	case *time.Time:
		switch x := v.(type) {
		case time.Time:
			*d = x
		case nil:
			return errNull("time.Time")
		default:
			return fmt.Errorf("cannot scan %T into *time.Time", v)
		}
		return nil
	}
	// **T: nil for NULL, else a new T.
	rv := reflect.ValueOf(dest)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() == reflect.Pointer {
		if v == nil {
			rv.Elem().Set(reflect.Zero(rv.Elem().Type()))
			return nil
		}
		nv := reflect.New(rv.Elem().Type().Elem())
		if err := assign(nv.Interface(), v); err != nil {
			return err
		}
		rv.Elem().Set(nv)
		return nil
	}
	return fmt.Errorf("unsupported Scan destination %T", dest)
}

func errNull(typ string) error {
	return fmt.Errorf("converting NULL to %s is unsupported (scan into a pointer, sql.Null*, or *any)", typ)
}

func asInt(v driver.Value) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if x == float64(int64(x)) {
			return int64(x), nil
		}
		return 0, fmt.Errorf("%v is not an integer", x)
	case string:
		return strconv.ParseInt(x, 10, 64)
	case nil:
		return 0, errNull("integer")
	}
	return 0, fmt.Errorf("cannot scan %T into an integer", v)
}
