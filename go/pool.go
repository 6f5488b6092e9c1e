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
	"time"
)

// poolRef is one open C pool shared by every Connector and Pool of this process that opened
// the same file (closing a C pool handle closes the pool for every user, so the Go side
// counts references and closes it with the last one).
type poolRef struct {
	key  string
	cfg  *config
	h    C.litepool_pool
	refs int // guarded by registryMu

	closed atomic.Bool

	// Go-side waiting for a free connection: waiters block on released (replaced each time
	// a connection comes back while someone waits) with a backoff timer as a safety net for
	// connections returned by others (the maintenance thread, other hosts in the process).
	waiters  atomic.Int32
	mu       sync.Mutex
	released chan struct{}
}

var (
	registryMu sync.Mutex
	registry   = map[string]*poolRef{}
)

func acquirePool(cfg *config) (*poolRef, error) {
	key := cfg.poolKey()
	registryMu.Lock()
	defer registryMu.Unlock()
	if p, ok := registry[key]; ok {
		if p.cfg.coreQuery != cfg.coreQuery {
			return nil, configError("%s is already open in this process with other options (%s; now %s): open it with the same options",
				cfg.path, p.cfg.coreQuery, cfg.coreQuery)
		}
		p.refs++
		return p, nil
	}
	p := &poolRef{key: key, cfg: cfg, refs: 1, released: make(chan struct{})}
	ptr, n := strArg(cfg.uri)
	var cerr *C.litepool_error
	st := C.litepool_pool_open_dsn(ptr, n, &p.h, &cerr)
	if err := takeError(st, cerr, "open"); err != nil {
		if le, ok := err.(*Error); ok {
			le.Message = fmt.Sprintf("%s (DSN %q)", le.Message, cfg.dsn)
		}
		return nil, err
	}
	registry[key] = p
	return p, nil
}

// release drops one reference; the last one closes the C pool (checkpoint TRUNCATE, close
// every connection, join every thread).
func (p *poolRef) release() error {
	registryMu.Lock()
	p.refs--
	last := p.refs == 0
	if last {
		delete(registry, p.key)
		p.closed.Store(true)
	}
	registryMu.Unlock()
	if !last {
		return nil
	}
	var cerr *C.litepool_error
	st := C.litepool_pool_close(p.h, &cerr)
	p.notify()
	return takeError(st, cerr, "close")
}

// notify wakes the goroutines waiting for a connection; called whenever a Go call gave one
// back. Free when nobody waits.
func (p *poolRef) notify() {
	if p.waiters.Load() == 0 {
		return
	}
	p.mu.Lock()
	close(p.released)
	p.released = make(chan struct{})
	p.mu.Unlock()
}

func (p *poolRef) releasedChan() <-chan struct{} {
	p.mu.Lock()
	ch := p.released
	p.mu.Unlock()
	return ch
}

// session is one C session: a database/sql connection or a native-API borrow.
type session struct {
	pool   *poolRef
	h      C.litepool_session
	tags   atomic.Uint64
	closed atomic.Bool
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
	s.pool.notify()
	return takeError(st, cerr, "close")
}

// watch arranges for the call (and rows) tagged tag to be interrupted when ctx is done. An
// interrupt that reaches the core while the call is still on its way to the connection thread
// can be lost (bindings/README.md), so the interrupt is re-sent until the call returns.
type watch struct {
	stop   func() bool
	inCall atomic.Bool
	fired  atomic.Bool
}

func (s *session) watch(ctx context.Context, tag uint64) *watch {
	if ctx.Done() == nil {
		return nil
	}
	w := &watch{}
	w.inCall.Store(true)
	h := s.h
	w.stop = context.AfterFunc(ctx, func() {
		w.fired.Store(true)
		d := 20 * time.Microsecond
		for {
			C.litepool_session_interrupt(h, C.uint64_t(tag), nil)
			if !w.inCall.Load() {
				return
			}
			time.Sleep(d)
			if d < 5*time.Millisecond {
				d *= 2
			}
		}
	})
	return w
}

func (w *watch) enter() {
	if w != nil {
		w.inCall.Store(true)
	}
}

func (w *watch) leave() {
	if w != nil {
		w.inCall.Store(false)
	}
}

func (w *watch) done() {
	if w != nil {
		w.inCall.Store(false)
		w.stop()
	}
}

// call runs one C call that may need a connection. On LITEPOOL_BUSY (no connection free:
// the pool is opened with acquire_timeout=0 so the core never waits) it waits here, in Go,
// honouring ctx and the DSN's acquire_timeout, and retries. It returns the watch that stays
// armed for the tag (the caller ends it with done) and the call's error.
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
	var (
		start   time.Time
		backoff time.Duration
		timer   *time.Timer
		wait    <-chan struct{}
		waiting bool
	)
	defer func() {
		if waiting {
			s.pool.waiters.Add(-1)
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var cerr *C.litepool_error
		w.enter()
		st := f(C.uint64_t(tag), &cerr)
		w.leave()
		if st != C.LITEPOOL_BUSY {
			err := takeError(st, cerr, op)
			if err != nil && ctx.Err() != nil && w != nil && w.fired.Load() {
				err = ctxError(op, ctx, err)
			}
			if err != nil || !keepWatch {
				w.done()
				w = nil
			}
			return w, err
		}
		freeError(cerr)
		if !waiting {
			waiting = true
			s.pool.waiters.Add(1)
			start = time.Now()
			backoff = 50 * time.Microsecond
		}
		if s.pool.cfg.acquireTimeout == 0 || time.Since(start) >= s.pool.cfg.acquireTimeout {
			w.done()
			return nil, s.poolTimeout(op, time.Since(start))
		}
		remaining := s.pool.cfg.acquireTimeout - time.Since(start)
		d := backoff
		if d > remaining {
			d = remaining
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		if wait == nil {
			wait = s.pool.releasedChan()
		}
		select {
		case <-wait:
			timer.Stop() // Go ≥ 1.23 timers: no stale value to drain
		case <-timer.C:
		case <-ctx.Done():
			w.done()
			return nil, ctxError(op, ctx, nil)
		}
		wait = s.pool.releasedChan()
		if backoff < 10*time.Millisecond {
			backoff *= 2
		}
	}
}

func (s *session) poolTimeout(op string, waited time.Duration) error {
	return &Error{Op: op, Status: StatusBusy, Kind: KindOperational, Code: codeBusy, poolTimeout: true,
		Message: fmt.Sprintf("no connection of the pool came free within acquire_timeout %v (waited %v; all readers, or the writer, stayed in use)",
			s.pool.cfg.acquireTimeout, waited.Round(time.Millisecond))}
}
