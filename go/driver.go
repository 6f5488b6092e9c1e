package litepool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sync"
)

func init() {
	sql.Register("litepool", &Driver{})
}

// Driver is the database/sql driver registered as "litepool".
type Driver struct{}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open opens a connection without a Connector (database/sql uses OpenConnector instead). The
// pool it joins stays open until the connection closes.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	c, err := NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := c.Connect(context.Background())
	if err != nil {
		c.Close()
		return nil, err
	}
	conn.(*sqlConn).ownsConnector = c
	return conn, nil
}

// OpenConnector parses the DSN once; sql.Open calls it.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	return NewConnector(dsn)
}

// Connector opens litepool sessions on one pool. The pool is opened on first use and closed
// (checkpoint TRUNCATE, every connection closed) when the *sql.DB closes, unless another
// Connector or Pool of the process still uses the same file. Connectors on one file share
// its pool whatever their options: per-connection options (foreign keys, busy timeout,
// connection pragmas, mode=ro) are each Connector's own; pool options are the first
// opener's (a different request is logged once, not refused).
type Connector struct {
	cfg *config

	mu     sync.Mutex
	pool   *poolRef
	closed bool
}

var (
	_ driver.Connector = (*Connector)(nil)
	_ io.Closer        = (*Connector)(nil)
)

// NewConnector parses dsn (see the package README for the options) for sql.OpenDB. A bad
// DSN fails here, with an error matching ErrConfig.
func NewConnector(dsn string) (*Connector, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return &Connector{cfg: cfg}, nil
}

func (c *Connector) getPool() (*poolRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, closedError("connect", "the database")
	}
	if c.pool == nil {
		p, err := acquirePool(c.cfg)
		if err != nil {
			return nil, err
		}
		c.pool = p
	}
	return c.pool, nil
}

// Connect starts a session: it holds no SQLite connection while idle, so database/sql may
// open as many as it likes; statements borrow the writer or one of max_readers readers.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError("connect", ctx, nil)
	}
	p, err := c.getPool()
	if err != nil {
		return nil, err
	}
	s, err := openSession(p)
	if err != nil {
		return nil, err
	}
	// The DSN's per-connection options (foreign keys, busy timeout, pragmas, read-only) are
	// the session's already: the core gives them to every session of this open.
	return &sqlConn{s: s}, nil
}

// Driver returns the litepool driver.
func (c *Connector) Driver() driver.Driver { return &Driver{} }

// Close releases the pool (database/sql calls it from DB.Close).
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.pool != nil {
		return c.pool.release()
	}
	return nil
}

// sqlConn is a database/sql driver connection: one litepool session.
type sqlConn struct {
	s             *session
	tx            bool
	ownsConnector *Connector
}

var (
	_ driver.Conn               = (*sqlConn)(nil)
	_ driver.ConnBeginTx        = (*sqlConn)(nil)
	_ driver.ConnPrepareContext = (*sqlConn)(nil)
	_ driver.QueryerContext     = (*sqlConn)(nil)
	_ driver.ExecerContext      = (*sqlConn)(nil)
	_ driver.NamedValueChecker  = (*sqlConn)(nil)
	_ driver.SessionResetter    = (*sqlConn)(nil)
	_ driver.Validator          = (*sqlConn)(nil)
	_ driver.Pinger             = (*sqlConn)(nil)
)

// Prepare returns a statement; the SQL is compiled (and cached per connection) by litepool
// when it runs, so errors in it are reported by Exec/Query.
func (c *sqlConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext: see Prepare.
func (c *sqlConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.s.closed.Load() {
		return nil, closedError("prepare", "the connection")
	}
	return &sqlStmt{c: c, query: query}, nil
}

// Close ends the session: an open transaction is rolled back.
func (c *sqlConn) Close() error {
	err := c.s.close()
	if c.ownsConnector != nil {
		if cerr := c.ownsConnector.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Begin starts a write transaction.
func (c *sqlConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction. ReadOnly runs it on a reader with one snapshot
// (litepool_session_begin_read); otherwise it takes the writer (BEGIN IMMEDIATE). SQLite
// transactions are serializable, so every isolation level up to sql.LevelSerializable is
// accepted and given serializable isolation; sql.LevelLinearizable is refused.
func (c *sqlConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelWriteCommitted,
		sql.LevelRepeatableRead, sql.LevelSnapshot, sql.LevelSerializable:
	default:
		return nil, &Error{Op: "begin", Status: StatusNotSupported, Kind: KindNotSupported,
			Message: fmt.Sprintf("isolation level %v is not supported (SQLite transactions are serializable: use sql.LevelDefault or sql.LevelSerializable)", sql.IsolationLevel(opts.Isolation))}
	}
	if c.tx {
		return nil, &Error{Op: "begin", Status: StatusInvalidArgument, Kind: KindProgramming, Message: "a transaction is already open on this connection"}
	}
	if err := c.s.begin(ctx, opts.ReadOnly); err != nil {
		return nil, err
	}
	c.tx = true
	return &connTx{c: c}, nil
}

type connTx struct{ c *sqlConn }

func (t *connTx) Commit() error {
	t.c.tx = false
	return t.c.s.commit()
}

func (t *connTx) Rollback() error {
	t.c.tx = false
	return t.c.s.rollback()
}

// CheckNamedValue accepts the types litepool binds and refuses named parameters (the C ABI
// binds positional parameters only). Other types go through database/sql's default
// conversion (driver.Valuer, named integer types, pointers).
func (c *sqlConn) CheckNamedValue(nv *driver.NamedValue) error {
	if nv.Name != "" {
		return &Error{Op: "bind", Status: StatusNotSupported, Kind: KindNotSupported,
			Message: fmt.Sprintf("named parameter %q (sql.Named) is not supported: use positional ? parameters", nv.Name)}
	}
	v, ok, err := normalize(nv.Value)
	if err != nil {
		return err
	}
	if !ok {
		return driver.ErrSkip
	}
	nv.Value = v
	return nil
}

// ExecContext runs one statement, or (without parameters) a script of several.
func (c *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := runExec(ctx, c.s, query, args, namedValue)
	if err != nil {
		return nil, err
	}
	return result(res), nil
}

// QueryContext starts a statement; its rows keep the connection until closed or read to
// the end, and cancelling ctx interrupts it at any point.
func (c *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows := &sqlRows{}
	if err := runQuery(ctx, c.s, query, args, namedValue, &rows.r); err != nil {
		return nil, err
	}
	return rows, nil
}

// Ping checks that the pool is open and a connection can be had (runs SELECT 1 on a reader).
func (c *sqlConn) Ping(ctx context.Context) error {
	var r rowsCore
	if err := runQuery(ctx, c.s, "SELECT 1", []any(nil), anyValue, &r); err != nil {
		if errors.Is(err, ErrClosed) {
			return driver.ErrBadConn
		}
		return err
	}
	r.close()
	return nil
}

// ResetSession runs before a pooled connection is reused: a closed session or pool makes
// database/sql discard it.
func (c *sqlConn) ResetSession(ctx context.Context) error {
	if !c.IsValid() {
		return driver.ErrBadConn
	}
	return nil
}

// IsValid reports whether the session and its pool are open.
func (c *sqlConn) IsValid() bool {
	return !c.s.closed.Load() && !c.s.pool.closed.Load()
}

type result execResult

func (r result) LastInsertId() (int64, error) {
	if r.script {
		return 0, errors.New("litepool: LastInsertId is not available for a multi-statement Exec")
	}
	return r.lastID, nil
}

func (r result) RowsAffected() (int64, error) {
	if r.script {
		return 0, errors.New("litepool: RowsAffected is not available for a multi-statement Exec")
	}
	return r.changes, nil
}

// sqlStmt is a prepared statement: the SQL text (litepool caches compiled statements per
// SQLite connection).
type sqlStmt struct {
	c      *sqlConn
	query  string
	closed bool
}

var (
	_ driver.Stmt             = (*sqlStmt)(nil)
	_ driver.StmtExecContext  = (*sqlStmt)(nil)
	_ driver.StmtQueryContext = (*sqlStmt)(nil)
)

func (s *sqlStmt) Close() error { s.closed = true; return nil }

// NumInput is -1: the parameter count is checked by SQLite when the statement runs
// (ErrParameterCount).
func (s *sqlStmt) NumInput() int { return -1 }

func (s *sqlStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *sqlStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *sqlStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.closed {
		return nil, closedError("exec", "the statement")
	}
	return s.c.ExecContext(ctx, s.query, args)
}

func (s *sqlStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.closed {
		return nil, closedError("query", "the statement")
	}
	return s.c.QueryContext(ctx, s.query, args)
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// sqlRows are the rows of a driver query. An error while stepping is returned by Next (so
// database/sql's rows.Err() reports it); it never reads as the end.
type sqlRows struct{ r rowsCore }

var (
	_ driver.Rows                           = (*sqlRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*sqlRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*sqlRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*sqlRows)(nil)
	_ driver.RowsColumnTypeLength           = (*sqlRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*sqlRows)(nil)
)

// Columns returns a copy of the column names (the driver's own are shared between queries).
func (r *sqlRows) Columns() []string              { return slices.Clone(r.r.cols) }
func (r *sqlRows) Close() error                   { r.r.close(); return nil }
func (r *sqlRows) Next(dest []driver.Value) error { return r.r.next(dest) }

// ColumnTypeDatabaseTypeName is the column's declared type, upper case, or "" when it has
// none or litepool cannot tell (the C ABI does not report declared types yet, so currently
// always "").
func (r *sqlRows) ColumnTypeDatabaseTypeName(i int) string { return r.r.decl[i] }

// ColumnTypeScanType is the Go type for the declared type when known, else the type of the
// column's value in the first row, else interface{} (SQLite values are typed per value).
func (r *sqlRows) ColumnTypeScanType(i int) reflect.Type {
	if t := declType(r.r.decl[i]); t != nil {
		return t
	}
	if t := r.r.peekType(i); t != nil {
		return t
	}
	return typeAny
}

// ColumnTypeNullable: unknown (ok false); litepool does not report NOT NULL constraints.
func (r *sqlRows) ColumnTypeNullable(i int) (nullable, ok bool) { return false, false }

// ColumnTypeLength: not reported (ok false); SQLite does not enforce lengths.
func (r *sqlRows) ColumnTypeLength(i int) (int64, bool) { return 0, false }

// ColumnTypePrecisionScale: not reported (ok false).
func (r *sqlRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) { return 0, 0, false }
