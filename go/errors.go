package litepool

import (
	"context"
	"errors"
	"fmt"
)

// SQLite primary result codes that the sentinel errors test for.
const (
	codeError      = 1
	codeInternal   = 2
	codePerm       = 3
	codeAbort      = 4
	codeBusy       = 5
	codeLocked     = 6
	codeNoMem      = 7
	codeReadOnly   = 8
	codeInterrupt  = 9
	codeIOErr      = 10
	codeCorrupt    = 11
	codeFull       = 13
	codeCantOpen   = 14
	codeConstraint = 19
	codeMismatch   = 20
	codeMisuse     = 21
	codeRange      = 25
	codeNotADB     = 26
)

// Sentinel errors. Every error litepool returns is an *Error; test it with errors.Is against
// these, or errors.As to read the SQLite codes.
var (
	// ErrBusy: SQLite reported SQLITE_BUSY (a lock held by another process outlasted
	// busy_timeout), or no pool connection came free in time (then ErrPoolTimeout too).
	ErrBusy = errors.New("litepool: busy")
	// ErrPoolTimeout: every connection the statement could use stayed lent for the whole
	// acquire_timeout (or the context's deadline came first). Nothing ran.
	ErrPoolTimeout = errors.New("litepool: timed out waiting for a pool connection")
	// ErrLocked: SQLITE_LOCKED.
	ErrLocked = errors.New("litepool: locked")
	// ErrConstraint: a constraint failed (SQLITE_CONSTRAINT; the extended code says which).
	ErrConstraint = errors.New("litepool: constraint failed")
	// ErrClosed: the pool, connection or rows was closed.
	ErrClosed = errors.New("litepool: closed")
	// ErrInterrupted: the statement was interrupted, normally because its context was
	// cancelled (then errors.Is(err, context.Canceled) holds as well).
	ErrInterrupted = errors.New("litepool: interrupted")
	// ErrReadTxnEnded: litepool ended an over-age read transaction so the WAL could be
	// reset (max_read_txn_age). Retry the read.
	ErrReadTxnEnded = errors.New("litepool: read transaction ended by litepool")
	// ErrConfig: a bad DSN or option.
	ErrConfig = errors.New("litepool: invalid configuration")
	// ErrOpen: the database file could not be opened.
	ErrOpen = errors.New("litepool: cannot open database file")
	// ErrNotADatabase: the file is not a database or is corrupt.
	ErrNotADatabase = errors.New("litepool: not a database")
	// ErrReadOnly: a write to a read-only database or in a read-only transaction.
	ErrReadOnly = errors.New("litepool: read-only")
	// ErrParameterCount: the statement takes another number of parameters.
	ErrParameterCount = errors.New("litepool: wrong number of parameters")
	// ErrStatementCount: empty SQL, or several statements where one is expected.
	ErrStatementCount = errors.New("litepool: wrong number of statements")
	// ErrNotSupported: the operation or option is not supported.
	ErrNotSupported = errors.New("litepool: not supported")
	// ErrDiskFull: the disk is full.
	ErrDiskFull = errors.New("litepool: disk full")
	// ErrMisuse: the API was misused (bad argument, NULL handle, bad value type, ...).
	ErrMisuse = errors.New("litepool: misuse")
)

// Error is the error type of every litepool failure.
type Error struct {
	// Op names what failed ("exec", "query", "open", "begin", ...).
	Op string
	// Status is the C ABI status (StatusBusy, StatusSQLiteError, ...).
	Status Status
	// Kind is the DB-API class the C ABI assigned (0 for errors made in Go).
	Kind Kind
	// Code and ExtendedCode are SQLite's result codes when SQLite (or a condition litepool
	// maps onto one, such as a pool timeout → SQLITE_BUSY) caused the error, else 0.
	Code, ExtendedCode int
	// Message says what happened, as the core reported it.
	Message string

	poolTimeout bool
	cause       error
}

func (e *Error) Error() string {
	msg := "litepool: "
	if e.Op != "" {
		msg += e.Op + ": "
	}
	msg += e.Message
	if e.Status != 0 && e.Status != StatusSQLiteError {
		msg += " [" + e.Status.String() + "]"
	}
	if e.ExtendedCode != 0 && e.ExtendedCode != e.Code {
		msg += fmt.Sprintf(" (SQLite code %d, extended %d)", e.Code, e.ExtendedCode)
	} else if e.Code != 0 {
		msg += fmt.Sprintf(" (SQLite code %d)", e.Code)
	}
	return msg
}

// Unwrap returns the context error for a cancelled or timed-out operation, else nil.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether e matches one of the sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBusy:
		return e.Status == StatusBusy || e.Code == codeBusy
	case ErrPoolTimeout:
		return e.poolTimeout
	case ErrLocked:
		return e.Code == codeLocked
	case ErrConstraint:
		return e.Code == codeConstraint
	case ErrClosed:
		return e.Status == StatusClosed || e.Status == StatusInvalidHandle
	case ErrInterrupted:
		return e.Status == StatusInterrupted || e.Code == codeInterrupt
	case ErrReadTxnEnded:
		return e.Status == StatusReadTxnEnded
	case ErrConfig:
		return e.Status == StatusConfig
	case ErrOpen:
		return e.Status == StatusOpen || e.Code == codeCantOpen
	case ErrNotADatabase:
		return e.Status == StatusNotADatabase || e.Code == codeNotADB || e.Code == codeCorrupt
	case ErrReadOnly:
		return e.Code == codeReadOnly
	case ErrParameterCount:
		return e.Status == StatusParameterCount || e.Code == codeRange
	case ErrStatementCount:
		return e.Status == StatusStatementCount
	case ErrNotSupported:
		return e.Status == StatusNotSupported
	case ErrDiskFull:
		return e.Status == StatusDiskFull || e.Code == codeFull
	case ErrMisuse:
		return (e.Status >= 100 && e.Status < 200) || e.Code == codeMisuse
	}
	return false
}

func goError(op string, status Status, format string, args ...any) *Error {
	return &Error{Op: op, Status: status, Message: fmt.Sprintf(format, args...)}
}

func configError(format string, args ...any) *Error {
	return &Error{Op: "open", Status: StatusConfig, Kind: KindInterface, Message: fmt.Sprintf(format, args...)}
}

func closedError(op, what string) *Error {
	return &Error{Op: op, Status: StatusClosed, Kind: KindProgramming, Message: what + " is closed"}
}

// ctxError is the error of an operation stopped by its context: it matches ErrInterrupted
// and the context's error (context.Canceled / context.DeadlineExceeded).
func ctxError(op string, ctx context.Context, base error) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = ctx.Err()
	}
	var le *Error
	if base != nil && errors.As(base, &le) {
		cp := *le
		if cp.cause == nil {
			cp.cause = cause
		}
		return &cp
	}
	return &Error{Op: op, Status: StatusInterrupted, Kind: KindOperational, Code: codeInterrupt,
		Message: "interrupted: " + cause.Error(), cause: cause}
}
