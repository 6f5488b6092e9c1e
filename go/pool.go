package litepool

/*
#include "litepool.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// poolRef is one C pool handle: one Connector's or Pool's open of a database file. Opens of
// the same file share the core's pool (its registry joins them, each with its own
// per-connection options); releasing the last one closes it.
type poolRef struct {
	cfg *config
	h   C.litepool_pool

	closed atomic.Bool
}

func acquirePool(cfg *config) (*poolRef, error) {
	p := &poolRef{cfg: cfg}
	ptr, n := strArg(cfg.uri)
	var cerr *C.litepool_error
	st := C.litepool_pool_open_dsn(ptr, n, &p.h, &cerr)
	if err := takeError(st, cerr, "open"); err != nil {
		if le, ok := err.(*Error); ok {
			le.Message = fmt.Sprintf("%s (DSN %q)", le.Message, cfg.dsn)
		}
		return nil, err
	}
	return p, nil
}

// release gives up this open: the core closes the pool (checkpoint TRUNCATE, close every
// connection, join every thread) when no other open holds it and no session is open on it.
func (p *poolRef) release() error {
	if p.closed.Swap(true) {
		return nil
	}
	var cerr *C.litepool_error
	st := C.litepool_pool_release(p.h, &cerr)
	return takeError(st, cerr, "close")
}

// session is one C session: a database/sql connection or a native-API borrow.
type session struct {
	pool   *poolRef
	h      C.litepool_session
	tags   atomic.Uint64
	closed atomic.Bool

	// argMu is held by a statement call from binding its parameters until its results are
	// converted to Go: it guards what follows, and keeps the C session's first batch (valid
	// until its next litepool_session_query_first) from being replaced while it is read.
	argMu    sync.Mutex
	params   paramBuf
	execOut  C.litepool_exec_result
	firstOut C.litepool_first_batch
	cols     []string // the last query's column names and declared types (see columns)
	decl     []string
}

func openSession(p *poolRef) (*session, error) {
	if p.closed.Load() {
		return nil, closedError("connect", "the database")
	}
	s := &session{pool: p}
	var cerr *C.litepool_error
	st := C.litepool_session_open(p.h, &s.h, &cerr)
	if err := takeError(st, cerr, "connect"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *session) close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var cerr *C.litepool_error
	st := C.litepool_session_close(s.h, &cerr)
	s.argMu.Lock()
	s.params.free()
	s.argMu.Unlock()
	return takeError(st, cerr, "close")
}

// watch interrupts the call (and rows) tagged tag, once, when ctx is done: the core keeps
// the interrupt for that call wherever it is (waiting for a connection, on its way to one,
// running), so it is never lost, and it names that call alone, so a late one touches
// nothing else (bindings/README.md).
type watch struct {
	stop  func() bool
	fired atomic.Bool
}

func (s *session) watch(ctx context.Context, tag uint64) *watch {
	if ctx.Done() == nil {
		return nil
	}
	w := &watch{}
	h := s.h
	w.stop = context.AfterFunc(ctx, func() {
		w.fired.Store(true)
		C.litepool_session_interrupt(h, C.uint64_t(tag), nil)
	})
	return w
}

func (w *watch) done() {
	if w != nil {
		w.stop()
	}
}

// call runs one C call that may need a connection: the core waits for one (FIFO, up to the
// DSN's acquire_timeout, failing with LITEPOOL_BUSY naming the role, mapped to
// ErrPoolTimeout), and ctx's end interrupts the call wherever it is. It returns the watch
// that stays armed for the tag when keepWatch (the caller ends it with done) and the call's
// error.
func (s *session) call(ctx context.Context, op string, keepWatch bool,
	f func(tag C.uint64_t, cerr **C.litepool_error) C.litepool_status) (*watch, error) {
	if s.closed.Load() {
		return nil, closedError(op, "the connection")
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxError(op, ctx, nil)
	}
	tag := s.tags.Add(1)
	w := s.watch(ctx, tag)
	var cerr *C.litepool_error
	st := f(C.uint64_t(tag), &cerr)
	timedOut := st == C.LITEPOOL_BUSY && C.litepool_error_role(cerr) != C.LITEPOOL_ROLE_NONE
	err := takeError(st, cerr, op)
	if le, ok := err.(*Error); ok && timedOut {
		le.poolTimeout = true
	}
	if err != nil && ctx.Err() != nil && w != nil && w.fired.Load() {
		err = ctxError(op, ctx, err)
	}
	if err != nil || !keepWatch {
		w.done()
		w = nil
	}
	return w, err
}
