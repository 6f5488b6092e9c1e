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

// poolRef is one C pool handle: one Connector's or Pool's open of a database file. Opens of
// the same file share the core's pool (its registry joins them, each with its own
// per-connection options); releasing the last one closes it.
type poolRef struct {
	cfg *config
	h   C.litepool_pool

	closed atomic.Bool

	// Go-side waiting for a free connection, first come first served per kind of connection
	// (the role a LITEPOOL_BUSY names). Each time a Go call gives a connection back, the head
	// of each role's queue is woken to retry; it leaves the queue only when it gets a
	// connection (passing on any wake-up it did not use) or gives up. Waking every waiter
	// instead let hundreds of goroutines race for each connection: CPU burnt on retries, and
	// some starved to their timeout. (Releases through another handle on the same file are
	// seen by the head waiter's timed retries.)
	waiters atomic.Int32
	mu      sync.Mutex
	queues  [3][]*waiter // by C.litepool_role; guarded by mu
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
	p.notify()
	return takeError(st, cerr, "close")
}

// waiter is one goroutine waiting for a connection of one role.
type waiter struct {
	role C.litepool_role
	// guarded by the pool's mu:
	woken bool // a wake-up was sent (on token) and the retry it asks for is not over
	extra int  // releases seen while woken: retries owed before sleeping again
	token chan struct{}
}

// notify wakes the head waiter of each role; called whenever a Go call gave a connection
// back. Free when nobody waits.
func (p *poolRef) notify() {
	if p.waiters.Load() == 0 {
		return
	}
	p.mu.Lock()
	for role := range p.queues {
		p.giveLocked(role, 1)
	}
	p.mu.Unlock()
}

// giveLocked hands n wake-ups to the head of role's queue: the first wakes it, the rest are
// retries it owes if that one fails.
func (p *poolRef) giveLocked(role int, n int) {
	q := p.queues[role]
	if n == 0 || len(q) == 0 {
		return
	}
	h := q[0]
	if !h.woken {
		h.woken = true
		h.token <- struct{}{}
		n--
	}
	h.extra += n
}

// enqueue puts w at the tail of its role's queue.
func (p *poolRef) enqueue(w *waiter) {
	p.mu.Lock()
	p.queues[w.role] = append(p.queues[w.role], w)
	p.mu.Unlock()
}

// lost is called when w's retry found no connection free. It reports whether w should retry
// at once (a release came while it was retrying); otherwise w sleeps until woken again.
func (p *poolRef) lost(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.token:
		return true
	default:
	}
	if w.extra > 0 {
		w.extra--
		return true
	}
	w.woken = false
	return false
}

// leave takes w out of its queue (it got a connection, or gave up) and passes the wake-ups
// it did not use to the new head.
func (p *poolRef) leave(w *waiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[w.role]
	for i, o := range q {
		if o == w {
			p.queues[w.role] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	unused := w.extra
	select {
	case <-w.token:
		unused++
	default:
	}
	p.giveLocked(int(w.role), unused)
}

// isHead reports whether w is first in its queue: the one waiter that also retries on a
// timer, for connections given back outside Go calls (the maintenance thread, other hosts in
// the process). It retries without leaving the queue.
func (p *poolRef) isHead(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[w.role]
	return len(q) > 0 && q[0] == w
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
// the pool is opened with acquire_timeout=0 so the core never waits) it queues here, in Go,
// behind earlier waiters for the same role, honouring ctx and the DSN's acquire_timeout, and
// retries when woken. It returns the watch that stays armed for the tag (the caller ends it
// with done) and the call's error.
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
		me      *waiter
		queued  bool // me is in its queue
	)
	defer func() {
		if me != nil {
			if queued {
				s.pool.leave(me)
			}
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
		role := C.litepool_error_role(cerr)
		freeError(cerr)
		if me == nil {
			me = &waiter{role: role, token: make(chan struct{}, 1)}
			s.pool.waiters.Add(1)
			start = time.Now()
			backoff = 50 * time.Microsecond
		}
		if queued && s.pool.lost(me) {
			continue
		}
		if s.pool.cfg.acquireTimeout == 0 || time.Since(start) >= s.pool.cfg.acquireTimeout {
			w.done()
			return nil, s.poolTimeout(op, time.Since(start))
		}
		if !queued {
			s.pool.enqueue(me)
			queued = true
		}
		if err := s.pool.waitTurn(ctx, me, &timer, &backoff, start); err != nil {
			w.done()
			return nil, ctxError(op, ctx, nil)
		}
	}
}

// waitTurn blocks until w is woken by a release, or it is the head of its queue when its
// backoff timer fires, or the acquire timeout has passed; the caller then retries. It
// returns ctx's error if ctx ends first.
func (p *poolRef) waitTurn(ctx context.Context, w *waiter, timer **time.Timer,
	backoff *time.Duration, start time.Time) error {
	for {
		remaining := p.cfg.acquireTimeout - time.Since(start)
		if remaining <= 0 {
			return nil
		}
		d := min(*backoff, remaining)
		if *timer == nil {
			*timer = time.NewTimer(d)
		} else {
			(*timer).Reset(d)
		}
		select {
		case <-w.token:
			(*timer).Stop() // Go ≥ 1.23 timers: no stale value to drain
			return nil
		case <-(*timer).C:
			if *backoff < 10*time.Millisecond {
				*backoff *= 2
			}
			if p.isHead(w) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *session) poolTimeout(op string, waited time.Duration) error {
	return &Error{Op: op, Status: StatusBusy, Kind: KindOperational, Code: codeBusy, poolTimeout: true,
		Message: fmt.Sprintf("no connection of the pool came free within acquire_timeout %v (waited %v; all readers, or the writer, stayed in use)",
			s.pool.cfg.acquireTimeout, waited.Round(time.Millisecond))}
}
