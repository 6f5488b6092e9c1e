package litepool

/*
#include <stdlib.h>
#include <string.h>
#include "litepool.h"
*/
import "C"

import (
	"database/sql/driver"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// TimeFormat is how a time.Time parameter is stored: TEXT in this layout (go-sqlite3's
// first format; SQLite's date and time functions understand it). Reading a TEXT value that
// is a timestamp with an explicit zone (this layout, or with 'T', or Go's time.String form
// that modernc writes) gives a time.Time back.
const TimeFormat = "2006-01-02 15:04:05.999999999-07:00"

var parseFormats = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

// parseTime returns the time in s when s is a zoned timestamp, cheaply rejecting anything
// else.
func parseTime(s string, loc *time.Location) (time.Time, bool) {
	if len(s) < 20 || len(s) > 48 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
		s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	last := s[len(s)-1]
	if !(last == 'Z' || ('0' <= last && last <= '9') || ('A' <= last && last <= 'Z')) {
		return time.Time{}, false
	}
	for _, f := range parseFormats {
		if t, err := time.Parse(f, s); err == nil {
			if loc != nil {
				t = t.In(loc)
			}
			return t, true
		}
	}
	return time.Time{}, false
}

// cParams is a C array of parameter values with their bytes, freed by free.
type cParams struct {
	vals *C.litepool_value
	n    int
}

func (p *cParams) free() {
	if p.vals != nil {
		C.free(unsafe.Pointer(p.vals))
		p.vals = nil
	}
}

func (p *cParams) ptr() *C.litepool_value { return p.vals }

// toCParams converts normalized values (nil, int64, float64, bool, string, []byte, time.Time)
// into one C allocation holding the value array followed by the text/blob bytes (the cgo
// rules forbid Go pointers inside memory passed to C).
func toCParams(args []any) (*cParams, error) {
	if len(args) == 0 {
		return &cParams{}, nil
	}
	strs := make([]string, len(args))
	total := 0
	for i, a := range args {
		switch v := a.(type) {
		case string:
			total += len(v)
		case []byte:
			total += len(v)
		case time.Time:
			strs[i] = v.Format(TimeFormat)
			total += len(strs[i])
		}
	}
	vsize := int(unsafe.Sizeof(C.litepool_value{})) * len(args)
	mem := C.malloc(C.size_t(vsize + total + 1))
	if mem == nil {
		return nil, fmt.Errorf("litepool: out of memory for %d parameters", len(args))
	}
	vals := unsafe.Slice((*C.litepool_value)(mem), len(args))
	data := unsafe.Slice((*byte)(unsafe.Add(mem, vsize)), total+1)
	off := 0
	putBytes := func(val *C.litepool_value, tag C.litepool_type, b []byte) {
		n := copy(data[off:], b)
		val.tag = tag
		val.data = (*C.uint8_t)(unsafe.Pointer(&data[off]))
		val.len = C.size_t(n)
		off += n
	}
	for i, a := range args {
		val := &vals[i]
		*val = C.litepool_value{}
		switch v := a.(type) {
		case nil:
			val.tag = C.LITEPOOL_TYPE_NULL
		case int64:
			val.tag, val.integer = C.LITEPOOL_TYPE_INT64, C.int64_t(v)
		case float64:
			val.tag, val.real = C.LITEPOOL_TYPE_DOUBLE, C.double(v)
		case bool:
			val.tag = C.LITEPOOL_TYPE_INT64
			if v {
				val.integer = 1
			}
		case string:
			putBytes(val, C.LITEPOOL_TYPE_TEXT, unsafe.Slice(unsafe.StringData(v), len(v)))
		case []byte:
			if v == nil {
				val.tag = C.LITEPOOL_TYPE_NULL
			} else {
				putBytes(val, C.LITEPOOL_TYPE_BLOB, v)
			}
		case time.Time:
			s := strs[i]
			putBytes(val, C.LITEPOOL_TYPE_TEXT, unsafe.Slice(unsafe.StringData(s), len(s)))
		default:
			C.free(mem)
			return nil, fmt.Errorf("litepool: unsupported parameter type %T (parameter %d)", a, i+1)
		}
	}
	return &cParams{vals: (*C.litepool_value)(mem), n: len(args)}, nil
}

// normalize converts a Go parameter to one of the types toCParams takes. ok is false for
// types it does not know (database/sql then applies its default converter).
func normalize(v any) (any, bool, error) {
	switch x := v.(type) {
	case nil, int64, float64, bool, string, time.Time:
		return x, true, nil
	case []byte:
		return x, true, nil
	case int:
		return int64(x), true, nil
	case int8:
		return int64(x), true, nil
	case int16:
		return int64(x), true, nil
	case int32:
		return int64(x), true, nil
	case uint:
		return uintValue(uint64(x))
	case uint8:
		return int64(x), true, nil
	case uint16:
		return int64(x), true, nil
	case uint32:
		return int64(x), true, nil
	case uint64:
		return uintValue(x)
	case float32:
		return float64(x), true, nil
	}
	return nil, false, nil
}

func uintValue(u uint64) (any, bool, error) {
	if u > math.MaxInt64 {
		return nil, true, fmt.Errorf("litepool: uint64 %d does not fit SQLite's 64-bit signed INTEGER", u)
	}
	return int64(u), true, nil
}

// goValue converts one C value to a driver.Value (copying text and blobs).
func goValue(v *C.litepool_value, loc *time.Location) driver.Value {
	switch v.tag {
	case C.LITEPOOL_TYPE_INT64:
		return int64(v.integer)
	case C.LITEPOOL_TYPE_DOUBLE:
		return float64(v.real)
	case C.LITEPOOL_TYPE_TEXT:
		if v.len == 0 {
			return ""
		}
		s := C.GoStringN((*C.char)(unsafe.Pointer(v.data)), C.int(v.len))
		if t, ok := parseTime(s, loc); ok {
			return t
		}
		return s
	case C.LITEPOOL_TYPE_BLOB:
		if v.len == 0 {
			return []byte{}
		}
		return C.GoBytes(unsafe.Pointer(v.data), C.int(v.len))
	}
	return nil
}
