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

func (s *session) exec(ctx context.Context, query string, args []any) (execResult, error) {
	params, err := toCParams(args)
	if err != nil {
		return execResult{}, err
	}
	defer params.free()
	sqlPtr, sqlLen := strArg(query)
	if len(args) == 0 && multipleStatements(query) {
		return s.script(ctx, query)
	}
	var res C.litepool_exec_result
	_, err = s.call(ctx, "exec", false, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_exec(s.h, sqlPtr, sqlLen, params.ptr(), C.size_t(params.n), tag, &res, cerr)
	})
	if err != nil && len(args) == 0 && errors.Is(err, ErrStatementCount) && strings.TrimSpace(query) != "" {
		return s.script(ctx, query)
	}
	s.pool.notify()
	return execResult{changes: int64(res.changes), lastID: int64(res.last_insert_rowid)}, err
}

// script runs several statements without parameters, as go-sqlite3 and modernc run every
// statement of an Exec.
func (s *session) script(ctx context.Context, query string) (execResult, error) {
	sqlPtr, sqlLen := strArg(query)
	_, err := s.call(ctx, "exec", false, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_exec_script(s.h, sqlPtr, sqlLen, tag, cerr)
	})
	s.pool.notify()
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
	_, err := s.call(ctx, "begin", false, func(_ C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		if readOnly {
			return C.litepool_session_begin_read(s.h, cerr)
		}
		return C.litepool_session_begin(s.h, cerr)
	})
	return err
}

func (s *session) commit() error {
	if s.closed.Load() {
		return closedError("commit", "the connection")
	}
	var cerr *C.litepool_error
	st := C.litepool_session_commit(s.h, &cerr)
	s.pool.notify()
	return takeError(st, cerr, "commit")
}

func (s *session) rollback() error {
	if s.closed.Load() {
		return closedError("rollback", "the connection")
	}
	var cerr *C.litepool_error
	st := C.litepool_session_rollback(s.h, &cerr)
	s.pool.notify()
	return takeError(st, cerr, "rollback")
}

func (s *session) inTransaction() (bool, error) {
	var flag C.uint32_t
	var cerr *C.litepool_error
	st := C.litepool_session_in_transaction(s.h, &flag, &cerr)
	return flag != 0, takeError(st, cerr, "in_transaction")
}

const batchRows = 256

// rowsCore is an executing statement: its C rows handle and the current batch of values,
// converted to Go.
type rowsCore struct {
	s    *session
	h    C.litepool_rows
	ctx  context.Context
	w    *watch
	cols []string
	decl []string

	mu     sync.Mutex
	buf    []driver.Value // n rows × len(cols), row-major
	n, pos int
	err    error
	eof    bool
	closed bool
}

func (s *session) query(ctx context.Context, query string, args []any) (*rowsCore, error) {
	params, err := toCParams(args)
	if err != nil {
		return nil, err
	}
	defer params.free()
	sqlPtr, sqlLen := strArg(query)
	var h C.litepool_rows
	w, err := s.call(ctx, "query", true, func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status {
		return C.litepool_session_query(s.h, sqlPtr, sqlLen, params.ptr(), C.size_t(params.n), tag, &h, cerr)
	})
	if err != nil {
		s.pool.notify()
		return nil, err
	}
	r := &rowsCore{s: s, h: h, ctx: ctx, w: w}
	var n C.size_t
	var cerr *C.litepool_error
	if err := takeError(C.litepool_rows_column_count(h, &n, &cerr), cerr, "query"); err != nil {
		r.close()
		return nil, err
	}
	r.cols = make([]string, int(n))
	r.decl = make([]string, int(n))
	for i := range r.cols {
		var name, decl C.litepool_str
		if err := takeError(C.litepool_rows_column_name(h, C.size_t(i), &name, &cerr), cerr, "query"); err != nil {
			r.close()
			return nil, err
		}
		r.cols[i] = goStr(name)
		if C.litepool_rows_column_decltype(h, C.size_t(i), &decl, &cerr) == C.LITEPOOL_OK {
			r.decl[i] = strings.ToUpper(goStr(decl))
		} else {
			freeError(cerr)
		}
	}
	return r, nil
}

// fetch reads the next batch; called with r.mu held.
func (r *rowsCore) fetch() {
	var vals *C.litepool_value
	var n C.size_t
	var cerr *C.litepool_error
	r.w.enter()
	st := C.litepool_rows_next_batch(r.h, batchRows, &vals, &n, &cerr)
	r.w.leave()
	if err := takeError(st, cerr, "next"); err != nil {
		if r.ctx.Err() != nil && errors.Is(err, ErrInterrupted) {
			err = ctxError("next", r.ctx, err)
		}
		r.err = err
		r.n, r.pos = 0, 0
		r.s.pool.notify()
		return
	}
	r.pos = 0
	r.n = int(n)
	if r.n == 0 {
		r.eof = true
		r.s.pool.notify() // the connection went back when the rows ended
		return
	}
	nc := len(r.cols)
	cv := unsafe.Slice(vals, r.n*nc)
	if cap(r.buf) < len(cv) {
		r.buf = make([]driver.Value, len(cv))
	}
	r.buf = r.buf[:len(cv)]
	for i := range cv {
		r.buf[i] = goValue(&cv[i], r.s.pool.cfg.loc)
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
	r.w.done()
	C.litepool_rows_close(r.h)
	r.buf = nil
	r.s.pool.notify()
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

// declType maps a declared type to a Go type by SQLite's affinity rules.
func declType(decl string) reflect.Type {
	switch {
	case decl == "":
		return nil
	case decl == "DATE" || decl == "DATETIME" || decl == "TIMESTAMP":
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
