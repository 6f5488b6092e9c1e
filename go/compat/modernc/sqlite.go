// Package sqlite is litepool's stand-in for modernc.org/sqlite: the database/sql driver
// "sqlite" is litepool's (one writer and a few readers per file, whatever database/sql
// opens), and the identifiers programs use from modernc are here with modernc's meaning:
// Driver, NewConnector, RegisterConnectionHook, ConnectionHookFn, ExecQuerierContext,
// *Error with Code() (the extended result code), ErrorCodeString, and the result codes in
// package lib. User-defined functions, collations, virtual tables, hooks other than the
// connection hook, backup, serialization and limits are not offered: a program using them
// does not compile against this module (go/README.md lists them).
//
// DSNs are modernc's (file:path?_pragma=name(value)&_txlock=immediate...), read by
// litepool's parser, which accepts modernc's options.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	litepool "github.com/litepool/litepool/go"
	"github.com/litepool/litepool/go/compat"
	lib "modernc.org/sqlite/lib"
)

func init() {
	sql.Register("sqlite", defaultDriver)
}

var defaultDriver = &Driver{}

// Driver is the database/sql driver registered as "sqlite". A program may register a
// Driver of its own under another name (sql.Register("mine", &sqlite.Driver{})); its
// connection hooks then apply to its connections only.
type Driver struct {
	once  sync.Once
	peer  *compat.Peer
	mu    sync.Mutex
	hooks []ConnectionHookFn
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

func (d *Driver) compat() *compat.Peer {
	d.once.Do(func() {
		d.peer = &compat.Peer{Driver: d, Error: newError, Connected: d.runHooks}
	})
	return d.peer
}

// Open opens a connection (database/sql uses OpenConnector instead).
func (d *Driver) Open(name string) (driver.Conn, error) { return compat.Open(name, d.compat()) }

// OpenConnector parses the DSN once; sql.Open calls it.
func (d *Driver) OpenConnector(name string) (driver.Connector, error) {
	return compat.NewConnector(name, d.compat())
}

// RegisterConnectionHook adds fn to the functions run on each new connection of d.
func (d *Driver) RegisterConnectionHook(fn ConnectionHookFn) {
	d.mu.Lock()
	d.hooks = append(d.hooks, fn)
	d.mu.Unlock()
}

func (d *Driver) runHooks(ctx context.Context, conn driver.Conn, dsn string) error {
	d.mu.Lock()
	hooks := d.hooks
	d.mu.Unlock()
	eq, ok := conn.(ExecQuerierContext)
	if !ok && len(hooks) > 0 {
		return fmt.Errorf("sqlite (litepool): connection %T cannot run connection hooks", conn)
	}
	for _, fn := range hooks {
		if err := fn(eq, dsn); err != nil {
			return err
		}
	}
	return nil
}

// NewConnector returns a connector of the "sqlite" driver for sql.OpenDB.
func NewConnector(dsn string) (driver.Connector, error) { return defaultDriver.OpenConnector(dsn) }

// ExecQuerierContext is what a connection hook gets: the new connection.
type ExecQuerierContext interface {
	driver.ExecerContext
	driver.QueryerContext
}

// ConnectionHookFn is run on each new connection of the driver it is registered with,
// with the DSN it was opened with; an error fails the connect.
type ConnectionHookFn func(conn ExecQuerierContext, dsn string) error

// RegisterConnectionHook registers fn with the "sqlite" driver.
func RegisterConnectionHook(fn ConnectionHookFn) { defaultDriver.RegisterConnectionHook(fn) }

// Error is a SQLite error as modernc reports it: Code is the extended result code
// (lib.SQLITE_CONSTRAINT_UNIQUE, ...; code&0xff is the primary one). It wraps litepool's
// *Error, so errors.Is(err, litepool.ErrBusy) and context errors match too.
type Error struct {
	msg   string
	code  int
	cause error
}

// Error implements error.
func (e *Error) Error() string { return e.msg }

// Code returns the SQLite result code (extended when SQLite gave one).
func (e *Error) Code() int { return e.code }

// Unwrap returns litepool's error.
func (e *Error) Unwrap() error { return e.cause }

// newError formats litepool's error as modernc does: "errstr: errmsg (code)".
func newError(le *litepool.Error) error {
	code := le.ExtendedCode
	if code == 0 {
		code = le.Code
	}
	str := compat.ErrStr(code)
	var busy string
	if code == lib.SQLITE_BUSY {
		busy = " (SQLITE_BUSY)"
	}
	msg := fmt.Sprintf("%s: %s (%d)%s", str, le.Message, code, busy)
	if le.Message == "" || le.Message == str {
		msg = fmt.Sprintf("%s (%d)%s", str, code, busy)
	}
	return &Error{msg: msg, code: code, cause: le}
}
