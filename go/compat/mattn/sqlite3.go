// Package sqlite3 is litepool's stand-in for github.com/mattn/go-sqlite3: the
// database/sql driver "sqlite3" is litepool's (one writer and a few readers per file,
// whatever database/sql opens), and the identifiers programs use from go-sqlite3 are here
// with go-sqlite3's meaning: SQLiteDriver{ConnectHook}, *SQLiteConn (Exec, Query,
// GetFilename, and database/sql's interfaces), Error{Code, ExtendedCode} by value, the
// ErrNo/ErrNoExtended codes (ErrConstraint, ErrConstraintUnique, ...), Version and
// SQLiteTimestampFormats. User-defined functions, aggregators, collations, hooks,
// authorizers, backup, serialization, limits and file controls are not offered: a
// program using them does not compile against this module; SQLiteDriver.Extensions
// fails the connect (go/README.md lists them).
//
// DSNs are go-sqlite3's (path or file: URI with _busy_timeout, _fk, _journal, _txlock,
// ...), read by litepool's parser, which accepts go-sqlite3's options.
package sqlite3

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	litepool "github.com/litepool/litepool/go"
	"github.com/litepool/litepool/go/compat"
)

func init() {
	sql.Register("sqlite3", &SQLiteDriver{})
}

// SQLiteTimestampFormats are the timestamp layouts go-sqlite3 documents; the first is how
// litepool stores a time.Time (litepool.TimeFormat).
var SQLiteTimestampFormats = []string{
	litepool.TimeFormat,
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// SQLiteDriver is the database/sql driver registered as "sqlite3". A program may register
// its own under another name with a ConnectHook, run on every new connection.
type SQLiteDriver struct {
	// Extensions must be empty: litepool does not load SQLite extensions.
	Extensions []string
	// ConnectHook runs on each new connection; an error fails the connect.
	ConnectHook func(*SQLiteConn) error

	once sync.Once
	peer *compat.Peer
}

var (
	_ driver.Driver        = (*SQLiteDriver)(nil)
	_ driver.DriverContext = (*SQLiteDriver)(nil)
)

var errExtensions = errors.New("sqlite3 (litepool): SQLiteDriver.Extensions is not supported: litepool does not load SQLite extensions")

func (d *SQLiteDriver) compat() *compat.Peer {
	d.once.Do(func() {
		d.peer = &compat.Peer{
			Driver: d,
			Error:  newError,
			Conn:   func(c *compat.Conn) driver.Conn { return &SQLiteConn{Conn: c} },
			Connected: func(_ context.Context, conn driver.Conn, _ string) error {
				if d.ConnectHook == nil {
					return nil
				}
				return d.ConnectHook(conn.(*SQLiteConn))
			},
		}
	})
	return d.peer
}

// Open opens a connection.
func (d *SQLiteDriver) Open(dsn string) (driver.Conn, error) {
	if len(d.Extensions) > 0 {
		return nil, errExtensions
	}
	return compat.Open(dsn, d.compat())
}

// OpenConnector parses the DSN once; sql.Open calls it.
func (d *SQLiteDriver) OpenConnector(dsn string) (driver.Connector, error) {
	if len(d.Extensions) > 0 {
		return nil, errExtensions
	}
	return compat.NewConnector(dsn, d.compat())
}

// SQLiteConn is a connection: a litepool session (what sql.Conn.Raw and ConnectHook see),
// with compat.Conn's methods (Exec, Query, database/sql's interfaces) and GetFilename.
type SQLiteConn struct {
	*compat.Conn
}

// GetFilename returns the file of the attached database schemaName ("" or "main": the
// main database); "" for an in-memory or temporary database, or on error.
func (c *SQLiteConn) GetFilename(schemaName string) string {
	if schemaName == "" {
		schemaName = "main"
	}
	rows, err := c.QueryContext(context.Background(), "SELECT file FROM pragma_database_list WHERE name = ?",
		[]driver.NamedValue{{Ordinal: 1, Value: schemaName}})
	if err != nil {
		return ""
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if rows.Next(dest) != nil {
		return ""
	}
	file, _ := dest[0].(string)
	return file
}

var sourceIDOnce = sync.OnceValues(func() (string, error) {
	p, err := litepool.Open(":memory:")
	if err != nil {
		return "", err
	}
	defer p.Close()
	var id string
	err = p.QueryRow(context.Background(), "SELECT sqlite_source_id()", nil, &id)
	return id, err
})

// Version returns the version of the SQLite litepool bundles, as a string, as a number
// (3054001 for 3.54.1) and its source id ("" if it could not be read).
func Version() (libVersion string, libVersionNumber int, sourceID string) {
	libVersion = litepool.SQLiteVersion()
	for i, part := range strings.SplitN(libVersion, ".", 3) {
		n, err := strconv.Atoi(part)
		if err != nil {
			panic(fmt.Sprintf("sqlite3 (litepool): SQLite version %q is not major.minor.patch", libVersion))
		}
		libVersionNumber += n * []int{1000000, 1000, 1}[i]
	}
	sourceID, _ = sourceIDOnce()
	return libVersion, libVersionNumber, sourceID
}
