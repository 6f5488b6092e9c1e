package litepool

/*
#cgo CFLAGS: -I${SRCDIR}/../bindings
#cgo LDFLAGS: -L${SRCDIR}/../target/release -l:liblitepool.a -lutil -lrt -lpthread -lm -ldl
#include <stdlib.h>
#include <string.h>
#include "litepool.h"
*/
import "C"

import (
	"unsafe"
)

// Status is a litepool C ABI status code (bindings/README.md, "Status codes"). The numbers are
// stable.
type Status uint32

// The C ABI's status codes.
const (
	StatusOK              Status = C.LITEPOOL_OK
	StatusNullArgument    Status = C.LITEPOOL_NULL_ARGUMENT
	StatusInvalidUTF8     Status = C.LITEPOOL_INVALID_UTF8
	StatusInvalidValueTag Status = C.LITEPOOL_INVALID_VALUE_TAG
	StatusInvalidArgument Status = C.LITEPOOL_INVALID_ARGUMENT
	StatusInvalidHandle   Status = C.LITEPOOL_INVALID_HANDLE
	StatusPanic           Status = C.LITEPOOL_PANIC
	StatusBusy            Status = C.LITEPOOL_BUSY
	StatusInterrupted     Status = C.LITEPOOL_INTERRUPTED
	StatusClosed          Status = C.LITEPOOL_CLOSED
	StatusReadTxnEnded    Status = C.LITEPOOL_READ_TRANSACTION_ENDED
	StatusSQLiteError     Status = C.LITEPOOL_SQLITE_ERROR
	StatusConfig          Status = C.LITEPOOL_CONFIG
	StatusOpen            Status = C.LITEPOOL_OPEN
	StatusNotADatabase    Status = C.LITEPOOL_NOT_A_DATABASE
	StatusParameterCount  Status = C.LITEPOOL_PARAMETER_COUNT
	StatusParameterName   Status = C.LITEPOOL_PARAMETER_NAME
	StatusStatementCount  Status = C.LITEPOOL_STATEMENT_COUNT
	StatusNotSupported    Status = C.LITEPOOL_NOT_SUPPORTED
	StatusInternal        Status = C.LITEPOOL_INTERNAL
	StatusError           Status = C.LITEPOOL_ERROR
	StatusDiskFull        Status = C.LITEPOOL_DISK_FULL
)

// String returns the C ABI's name of the status, e.g. "LITEPOOL_BUSY".
func (s Status) String() string {
	return goStr(C.litepool_status_name(C.uint32_t(s)))
}

// Kind is the DB-API class of an error (LITEPOOL_KIND_*).
type Kind uint32

// The C ABI's error kinds.
const (
	KindDatabase     Kind = C.LITEPOOL_KIND_DATABASE
	KindOperational  Kind = C.LITEPOOL_KIND_OPERATIONAL
	KindIntegrity    Kind = C.LITEPOOL_KIND_INTEGRITY
	KindProgramming  Kind = C.LITEPOOL_KIND_PROGRAMMING
	KindInterface    Kind = C.LITEPOOL_KIND_INTERFACE
	KindData         Kind = C.LITEPOOL_KIND_DATA
	KindNotSupported Kind = C.LITEPOOL_KIND_NOT_SUPPORTED
	KindInternal     Kind = C.LITEPOOL_KIND_INTERNAL
)

func goStr(s C.litepool_str) string {
	if s.ptr == nil || s.len == 0 {
		return ""
	}
	return C.GoStringN((*C.char)(unsafe.Pointer(s.ptr)), C.int(s.len))
}

// Version returns the litepool library version.
func Version() string { return goStr(C.litepool_version()) }

// SQLiteVersion returns the version of the SQLite bundled in the litepool library.
func SQLiteVersion() string { return goStr(C.litepool_sqlite_version()) }

// takeError converts a status and error object into a Go error and frees the object.
func takeError(st C.litepool_status, e *C.litepool_error, op string) error {
	if st == C.LITEPOOL_OK {
		if e != nil {
			C.litepool_error_free(e)
		}
		return nil
	}
	err := &Error{Status: Status(st), Op: op}
	if e != nil {
		err.Kind = Kind(C.litepool_error_kind(e))
		err.Code = int(C.litepool_error_sqlite_code(e))
		err.ExtendedCode = int(C.litepool_error_sqlite_extended_code(e))
		err.Message = goStr(C.litepool_error_message(e))
		C.litepool_error_free(e)
	}
	if err.Message == "" {
		err.Message = Status(st).String()
	}
	return err
}

func freeError(e *C.litepool_error) {
	if e != nil {
		C.litepool_error_free(e)
	}
}

// cBytes returns a pointer to the bytes of s for the duration of a C call (Go memory without
// Go pointers may be passed to C) and their length. An empty string gets a valid pointer.
var emptyByte = [1]byte{0}

func strArg(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&emptyByte[0])), 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}
