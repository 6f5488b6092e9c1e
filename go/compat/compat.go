// Package compat is the layer litepool's drop-in modules for modernc.org/sqlite
// (go/compat/modernc) and github.com/mattn/go-sqlite3 (go/compat/mattn) share: a
// database/sql connector over litepool's driver that returns the peer's error type, the
// peer's connection type (what sql.Conn.Raw hands out) and runs the peer's connect hooks.
// Everything else — the pool, sessions, DSN parsing — is litepool's driver unchanged.
package compat

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"

	litepool "github.com/litepool/litepool/go"
)

// Peer describes the driver a compat module stands in for.
type Peer struct {
	// Driver is what Connector.Driver returns: the peer's driver value.
	Driver driver.Driver
	// Error converts a litepool error that carries a SQLite result code into the peer's
	// error type. The result should wrap le (Unwrap) so errors.Is against litepool's
	// sentinels and context errors keeps working. Errors without a SQLite code (a bad DSN,
	// a closed connection, io.EOF, driver.ErrSkip, ...) are returned unchanged.
	Error func(le *litepool.Error) error
	// Conn returns the peer's connection type around c; nil means c itself.
	Conn func(c *Conn) driver.Conn
	// Connected runs on every new connection before database/sql gets it (the peer's
	// connect hooks); an error closes the connection and fails the connect.
	Connected func(ctx context.Context, conn driver.Conn, dsn string) error
}

// convert applies p.Error to err when it is a litepool error with a SQLite code.
func (p *Peer) convert(err error) error {
	var le *litepool.Error
	if err == nil || p.Error == nil || !errors.As(err, &le) || le.Code == 0 {
		return err
	}
	return p.Error(le)
}

// Connector opens litepool sessions as the peer's connections.
type Connector struct {
	dsn  string
	peer *Peer
	lc   *litepool.Connector
}

var (
	_ driver.Connector = (*Connector)(nil)
)

// NewConnector parses dsn with litepool's parser (which accepts the peers' DSN options).
func NewConnector(dsn string, peer *Peer) (*Connector, error) {
	lc, err := litepool.NewConnector(dsn)
	if err != nil {
		return nil, peer.convert(err)
	}
	return &Connector{dsn: dsn, peer: peer, lc: lc}, nil
}

// Connect opens a litepool session, wraps it as the peer's connection and runs the
// peer's connect hooks on it.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	raw, err := c.lc.Connect(ctx)
	if err != nil {
		return nil, c.peer.convert(err)
	}
	return c.peer.adopt(ctx, raw, c.dsn, nil)
}

// adopt wraps litepool's connection raw as the peer's and runs the connect hooks; on
// failure raw (and owner, when set) is closed.
func (p *Peer) adopt(ctx context.Context, raw driver.Conn, dsn string, owner *Connector) (driver.Conn, error) {
	inner, ok := raw.(litepoolConn)
	if !ok {
		raw.Close()
		if owner != nil {
			owner.Close()
		}
		return nil, fmt.Errorf("litepool compat: litepool's connection %T lacks an interface this layer forwards", raw)
	}
	conn := p.wrap(&Conn{inner: inner, peer: p, owner: owner})
	if p.Connected != nil {
		if err := p.Connected(ctx, conn, dsn); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

func (p *Peer) wrap(c *Conn) driver.Conn {
	if p.Conn == nil {
		return c
	}
	return p.Conn(c)
}

// Driver returns the peer's driver.
func (c *Connector) Driver() driver.Driver { return c.peer.Driver }

// Close releases litepool's pool (database/sql calls it from DB.Close).
func (c *Connector) Close() error { return c.lc.Close() }

// Open opens one connection without a Connector (driver.Driver.Open); closing the
// connection releases the pool it opened.
func Open(dsn string, peer *Peer) (driver.Conn, error) {
	c, err := NewConnector(dsn, peer)
	if err != nil {
		return nil, err
	}
	raw, err := c.lc.Connect(context.Background())
	if err != nil {
		c.Close()
		return nil, peer.convert(err)
	}
	return peer.adopt(context.Background(), raw, dsn, c)
}

// litepoolConn is what litepool's driver connection implements; Conn forwards all of it.
type litepoolConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.NamedValueChecker
	driver.SessionResetter
	driver.Validator
	driver.Pinger
}

// Conn is one litepool session seen as the peer's connection: every method forwards to
// litepool's and converts its error.
type Conn struct {
	inner litepoolConn
	peer  *Peer
	owner *Connector // set by Open: closed with the connection
}

var _ litepoolConn = (*Conn)(nil)

// Prepare returns a statement (litepool compiles it when it runs).
func (c *Conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext: see Prepare.
func (c *Conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, c.peer.convert(err)
	}
	inner, ok := s.(stmtContext)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("litepool compat: litepool's statement %T lacks an interface this layer forwards", s)
	}
	return &stmt{inner: inner, peer: c.peer}, nil
}

// Close ends the session (and the pool Open opened for it).
func (c *Conn) Close() error {
	err := c.inner.Close()
	if c.owner != nil {
		if cerr := c.owner.Close(); err == nil {
			err = cerr
		}
	}
	return c.peer.convert(err)
}

// Begin starts a write transaction.
func (c *Conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction (a read-only one on a reader).
func (c *Conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	t, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.peer.convert(err)
	}
	return &tx{inner: t, peer: c.peer}, nil
}

// ExecContext runs a statement or (without parameters) a script.
func (c *Conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.inner.ExecContext(ctx, query, args)
	return res, c.peer.convert(err)
}

// QueryContext runs a query.
func (c *Conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.inner.QueryContext(ctx, query, args)
	if err != nil {
		return nil, c.peer.convert(err)
	}
	return newRows(r, c.peer)
}

// Exec runs query with positional args: driver.Execer's form, which go-sqlite3's connection
// offers (database/sql itself uses ExecContext).
func (c *Conn) Exec(query string, args []driver.Value) (driver.Result, error) {
	s, err := c.Prepare(query) // litepool compiles when the statement runs: no round trip
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Exec(args)
}

// Query runs query with positional args: driver.Queryer's form (see Exec). The rows do not
// depend on the statement, which is closed at once.
func (c *Conn) Query(query string, args []driver.Value) (driver.Rows, error) {
	s, err := c.Prepare(query)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Query(args)
}

// CheckNamedValue is litepool's.
func (c *Conn) CheckNamedValue(nv *driver.NamedValue) error { return c.inner.CheckNamedValue(nv) }

// ResetSession is litepool's.
func (c *Conn) ResetSession(ctx context.Context) error { return c.inner.ResetSession(ctx) }

// IsValid is litepool's.
func (c *Conn) IsValid() bool { return c.inner.IsValid() }

// Ping checks that a connection of the pool can be had.
func (c *Conn) Ping(ctx context.Context) error { return c.peer.convert(c.inner.Ping(ctx)) }

type stmtContext interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type stmt struct {
	inner stmtContext
	peer  *Peer
}

func (s *stmt) Close() error  { return s.inner.Close() }
func (s *stmt) NumInput() int { return s.inner.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	res, err := s.inner.Exec(args)
	return res, s.peer.convert(err)
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	r, err := s.inner.Query(args)
	if err != nil {
		return nil, s.peer.convert(err)
	}
	return newRows(r, s.peer)
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.inner.ExecContext(ctx, args)
	return res, s.peer.convert(err)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.inner.QueryContext(ctx, args)
	if err != nil {
		return nil, s.peer.convert(err)
	}
	return newRows(r, s.peer)
}

type tx struct {
	inner driver.Tx
	peer  *Peer
}

func (t *tx) Commit() error   { return t.peer.convert(t.inner.Commit()) }
func (t *tx) Rollback() error { return t.peer.convert(t.inner.Rollback()) }

// rowsTyped is what litepool's rows implement besides driver.Rows.
type rowsTyped interface {
	driver.Rows
	driver.RowsColumnTypeScanType
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypeLength
	driver.RowsColumnTypePrecisionScale
}

type rows struct {
	inner rowsTyped
	peer  *Peer
}

func newRows(r driver.Rows, peer *Peer) (driver.Rows, error) {
	typed, ok := r.(rowsTyped)
	if !ok {
		r.Close()
		return nil, fmt.Errorf("litepool compat: litepool's rows %T lack an interface this layer forwards", r)
	}
	return &rows{inner: typed, peer: peer}, nil
}

func (r *rows) Columns() []string { return r.inner.Columns() }
func (r *rows) Close() error      { return r.peer.convert(r.inner.Close()) }

// Next returns io.EOF at the end unchanged (not a litepool error).
func (r *rows) Next(dest []driver.Value) error { return r.peer.convert(r.inner.Next(dest)) }

func (r *rows) ColumnTypeScanType(i int) reflect.Type   { return r.inner.ColumnTypeScanType(i) }
func (r *rows) ColumnTypeDatabaseTypeName(i int) string { return r.inner.ColumnTypeDatabaseTypeName(i) }
func (r *rows) ColumnTypeNullable(i int) (bool, bool)   { return r.inner.ColumnTypeNullable(i) }
func (r *rows) ColumnTypeLength(i int) (int64, bool)    { return r.inner.ColumnTypeLength(i) }
func (r *rows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.inner.ColumnTypePrecisionScale(i)
}

// errStrs is sqlite3_errstr's text for each primary result code (SQLite's sqlite3ErrStr),
// which both peers put in their error messages.
var errStrs = map[int]string{
	0: "not an error", 1: "SQL logic error", 3: "access permission denied", 4: "query aborted",
	5: "database is locked", 6: "database table is locked", 7: "out of memory",
	8: "attempt to write a readonly database", 9: "interrupted", 10: "disk I/O error",
	11: "database disk image is malformed", 12: "unknown operation", 13: "database or disk is full",
	14: "unable to open database file", 15: "locking protocol", 17: "database schema has changed",
	18: "string or blob too big", 19: "constraint failed", 20: "datatype mismatch",
	21: "bad parameter or other API misuse", 23: "authorization denied",
	25: "column index out of range", 26: "file is not a database", 27: "notification message",
	28: "warning message",
}

// ErrStr is SQLite's sqlite3_errstr(code): the English text of a result code.
func ErrStr(code int) string {
	switch code {
	case 4 | 2<<8: // SQLITE_ABORT_ROLLBACK
		return "abort due to ROLLBACK"
	case 100:
		return "another row available"
	case 101:
		return "no more rows available"
	}
	if s, ok := errStrs[code&0xff]; ok {
		return s
	}
	return "unknown error"
}
