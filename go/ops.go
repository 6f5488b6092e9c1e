package litepool

/*
#include "litepool.h"
*/
import "C"

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"
)

type execResult struct {
	changes, lastID int64
	script          bool
}

// runExec runs one statement with parameters args (value gives each one's Go value), or a
// script of several statements when it has none.
func runExec[T any](ctx context.Context, s *session, query string, args []T, value func(T) any) (execResult, error) {
	if len(args) == 0 && multipleStatements(query) {
		return s.script(ctx, query)
	}
	s.argMu.Lock()
	defer s.argMu.Unlock()
	if s.closed.Load() {
		return execResult{}, closedError("exec", "the connection")
	}
	params, err := bind(&s.params, args, value)
	if err != nil {
		return execResult{}, err
	}
	sqlPtr, sqlLen := strArg(query)
	// &s.execOut written in the call itself: cgo then checks that field alone for Go
	// pointers, not the whole session.
	_, err = s.call(ctx, "exec", false, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_exec(s.h, sqlPtr, sqlLen, params, C.size_t(len(args)), tag, &s.execOut, cerr)
	})
	res := &s.execOut
	if err != nil && len(args) == 0 && errors.Is(err, ErrStatementCount) && strings.TrimSpace(query) != "" {
		return s.script(ctx, query)
	}
	return execResult{changes: int64(res.changes), lastID: int64(res.last_insert_rowid)}, err
}

// script runs several statements without parameters, as go-sqlite3 and modernc run every
// statement of an Exec.
func (s *session) script(ctx context.Context, query string) (execResult, error) {
	sqlPtr, sqlLen := strArg(query)
	_, err := s.call(ctx, "exec", false, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_exec_script(s.h, sqlPtr, sqlLen, tag, cerr)
	})
	return execResult{script: true}, err
}

// multipleStatements reports whether sql has anything but blanks and comments after its
// first top-level ';' (quotes, identifiers and comments are skipped). A CREATE TRIGGER body
// counts as several statements, which the script path runs correctly.
func multipleStatements(sql string) bool {
	i, n := 0, len(sql)
	seenEnd := false
	for i < n {
		c := sql[i]
		switch {
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < n && sql[i+1] == '*':
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return false
			}
			i += j + 4
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		}
		if seenEnd {
			if c == ';' {
				i++
				continue
			}
			return true
		}
		switch c {
		case ';':
			seenEnd = true
			i++
		case '\'', '"', '`':
			j := strings.IndexByte(sql[i+1:], c)
			if j < 0 {
				return false
			}
			i += j + 2
		case '[':
			j := strings.IndexByte(sql[i+1:], ']')
			if j < 0 {
				return false
			}
			i += j + 2
		default:
			i++
		}
	}
	return false
}

func (s *session) begin(ctx context.Context, readOnly bool) error {
	var ro C.uint32_t
	if readOnly {
		ro = 1
	}
	_, err := s.call(ctx, "begin", false, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_begin_tagged(s.h, ro, tag, cerr)
	})
	return err
}

func (s *session) commit() error {
	if s.closed.Load() {
		return closedError("commit", "the connection")
	}
	var cerr *C.litepool_error
	st := C.litepool_session_commit(s.h, &cerr)
	return takeError(st, cerr, "commit")
}

func (s *session) rollback() error {
	if s.closed.Load() {
		return closedError("rollback", "the connection")
	}
	var cerr *C.litepool_error
	st := C.litepool_session_rollback(s.h, &cerr)
	return takeError(st, cerr, "rollback")
}

func (s *session) inTransaction() (bool, error) {
	var flag C.uint32_t
	var cerr *C.litepool_error
	st := C.litepool_session_in_transaction(s.h, &flag, &cerr)
	return flag != 0, takeError(st, cerr, "in_transaction")
}

const batchRows = 256

// rowsCore is an executing statement: the current batch of values, converted to Go, and the C
// rows handle for the rest ({0} when the first batch held every row).
type rowsCore struct {
	s    *session
	h    C.litepool_rows
	ctx  context.Context
	w    *watch
	cols []string // shared with the session's column cache: read only
	decl []string // likewise

	mu     sync.Mutex
	buf    []driver.Value // n rows × len(cols), row-major
	small  [4]driver.Value
	n, pos int
	err    error
	eof    bool
	closed bool
}

// runQuery starts statement stmt with parameters args (value gives each one's Go value) in r: one
// C call runs it and returns its columns and first batch.
func runQuery[T any](ctx context.Context, s *session, stmt string, args []T, value func(T) any, r *rowsCore) error {
	s.argMu.Lock()
	defer s.argMu.Unlock()
	if s.closed.Load() {
		return closedError("query", "the connection")
	}
	params, err := bind(&s.params, args, value)
	if err != nil {
		return err
	}
	sqlPtr, sqlLen := strArg(stmt)
	// &s.firstOut written in the call itself: see runExec.
	w, err := s.call(ctx, "query", true, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_query_first(s.h, sqlPtr, sqlLen, params, C.size_t(len(args)), tag, &s.firstOut, cerr)
	})
	fb := &s.firstOut
	if err != nil {
		return err
	}
	*r = rowsCore{s: s, h: fb.rows, ctx: ctx}
	r.cols, r.decl = s.columns(fb)
	r.load(fb.values, int(fb.row_count))
	if fb.rows.id == 0 {
		w.done() // the statement has ended: nothing left to interrupt
		r.eof = true
	} else {
		r.w = w
	}
	return nil
}

// columns returns the column names and upper-cased declared types of fb, reusing the
// session's last ones when they are the same (no allocation for a repeated query).
func (s *session) columns(fb *C.litepool_first_batch) ([]string, []string) {
	n := int(fb.column_count)
	if n == 0 {
		return nil, nil
	}
	names := unsafe.Slice(fb.column_names, n)
	decls := unsafe.Slice(fb.column_decltypes, n)
	same := len(s.cols) == n
	for i := 0; same && i < n; i++ {
		same = cView(names[i]) == s.cols[i] && strings.EqualFold(cView(decls[i]), s.decl[i])
	}
	if !same {
		s.cols = make([]string, n)
		s.decl = make([]string, n)
		for i := range n {
			s.cols[i] = goStr(names[i])
			s.decl[i] = strings.ToUpper(goStr(decls[i]))
		}
	}
	return s.cols, s.decl
}

// cView is the C string's bytes as a Go string without copying: valid only while the C
// memory is, so never kept.
func cView(v C.litepool_str) string {
	if v.ptr == nil || v.len == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Pointer(v.ptr)), int(v.len))
}

// load converts n rows of C values into the current batch.
func (r *rowsCore) load(vals *C.litepool_value, n int) {
	r.pos, r.n = 0, n
	if n == 0 {
		return
	}
	cv := unsafe.Slice(vals, n*len(r.cols))
	switch {
	case cap(r.buf) >= len(cv):
	case len(cv) <= len(r.small):
		r.buf = r.small[:0]
	default:
		r.buf = make([]driver.Value, len(cv))
	}
	r.buf = r.buf[:len(cv)]
	loc := r.s.pool.cfg.loc
	for i := range cv {
		r.buf[i] = goValue(&cv[i], loc, isTimeDecl(r.decl[i%len(r.cols)]))
	}
}

// fetch reads the next batch; called with r.mu held.
func (r *rowsCore) fetch() {
	var vals *C.litepool_value
	var n C.size_t
	var cerr *C.litepool_error
	st := C.litepool_rows_next_batch(r.h, batchRows, &vals, &n, &cerr)
	if err := takeError(st, cerr, "next"); err != nil {
		if r.ctx.Err() != nil && errors.Is(err, ErrInterrupted) {
			err = ctxError("next", r.ctx, err)
		}
		r.err = err
		r.n, r.pos = 0, 0
		return
	}
	r.load(vals, int(n))
	if r.n == 0 {
		r.eof = true
	}
}

// next copies the next row into dest; io.EOF at the end, the statement's error (every time)
// after a failure.
func (r *rowsCore) next(dest []driver.Value) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return closedError("next", "the rows")
	}
	if r.pos >= r.n {
		if r.err != nil {
			return r.err
		}
		if r.eof {
			return io.EOF
		}
		r.fetch()
		if r.err != nil {
			return r.err
		}
		if r.eof {
			return io.EOF
		}
	}
	nc := len(r.cols)
	copy(dest, r.buf[r.pos*nc:(r.pos+1)*nc])
	r.pos++
	return nil
}

// peekType is the Go type of column i in the first row (nil when unknown).
func (r *rowsCore) peekType(i int) reflect.Type {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed && r.pos >= r.n && r.err == nil && !r.eof && r.pos == 0 {
		r.fetch()
	}
	if r.pos < r.n {
		if v := r.buf[r.pos*len(r.cols)+i]; v != nil {
			return reflect.TypeOf(v)
		}
	}
	return nil
}

func (r *rowsCore) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.buf = nil
	if r.h.id == 0 {
		return // the statement ended with its first batch: nothing open
	}
	r.w.done()
	C.litepool_rows_close(r.h)
}

var (
	typeAny     = reflect.TypeFor[any]()
	typeInt64   = reflect.TypeFor[int64]()
	typeFloat64 = reflect.TypeFor[float64]()
	typeString  = reflect.TypeFor[string]()
	typeBytes   = reflect.TypeFor[[]byte]()
	typeTime    = reflect.TypeFor[time.Time]()
	typeBool    = reflect.TypeFor[bool]()
)

// isTimeDecl reports whether decl (upper case) is a type go-sqlite3 and modernc read times
// from.
func isTimeDecl(decl string) bool {
	return decl == "DATE" || decl == "DATETIME" || decl == "TIMESTAMP"
}

// declType maps a declared type to a Go type by SQLite's affinity rules.
func declType(decl string) reflect.Type {
	switch {
	case decl == "":
		return nil
	case isTimeDecl(decl):
		return typeTime
	case decl == "BOOLEAN" || decl == "BOOL":
		return typeBool
	case strings.Contains(decl, "INT"):
		return typeInt64
	case strings.Contains(decl, "CHAR") || strings.Contains(decl, "CLOB") || strings.Contains(decl, "TEXT"):
		return typeString
	case strings.Contains(decl, "BLOB"):
		return typeBytes
	case strings.Contains(decl, "REAL") || strings.Contains(decl, "FLOA") || strings.Contains(decl, "DOUB"):
		return typeFloat64
	}
	return nil
}
