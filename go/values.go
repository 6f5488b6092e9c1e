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

// declTimeFormats are the zone-less layouts that go-sqlite3 and modernc also read as a time
// (in UTC) from a column declared DATE, DATETIME or TIMESTAMP: SQLite's CURRENT_TIMESTAMP,
// datetime('now'), date('now').
var declTimeFormats = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseDeclTime returns the time in s, a value of a DATE/DATETIME/TIMESTAMP column, when s
// is a timestamp with or without a zone (without: UTC).
func parseDeclTime(s string, loc *time.Location) (time.Time, bool) {
	if t, ok := parseTime(s, loc); ok {
		return t, true
	}
	if len(s) < 10 || len(s) > 29 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	for _, f := range declTimeFormats {
		if t, err := time.ParseInLocation(f, s, time.UTC); err == nil {
			if loc != nil {
				t = t.In(loc)
			}
			return t, true
		}
	}
	return time.Time{}, false
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

// param is one parameter resolved to the value SQLite binds; text and blob bytes are in s
// or b.
type param struct {
	tag C.litepool_type
	i   int64
	f   float64
	s   string
	b   []byte
}

// resolveParam converts parameter number pos (from 1) to the value SQLite binds: the types
// normalize takes, then a driver.Valuer's value or database/sql's default conversion (named
// types, pointers).
func resolveParam(a any, pos int) (param, error) {
	for range 4 { // a Valuer may return another Valuer; a few levels are plenty
		switch v := a.(type) {
		case nil:
			return param{tag: C.LITEPOOL_TYPE_NULL}, nil
		case int64:
			return param{tag: C.LITEPOOL_TYPE_INT64, i: v}, nil
		case int:
			return param{tag: C.LITEPOOL_TYPE_INT64, i: int64(v)}, nil
		case float64:
			return param{tag: C.LITEPOOL_TYPE_DOUBLE, f: v}, nil
		case string:
			return param{tag: C.LITEPOOL_TYPE_TEXT, s: v}, nil
		case []byte:
			if v == nil {
				return param{tag: C.LITEPOOL_TYPE_NULL}, nil
			}
			return param{tag: C.LITEPOOL_TYPE_BLOB, b: v}, nil
		case bool:
			p := param{tag: C.LITEPOOL_TYPE_INT64}
			if v {
				p.i = 1
			}
			return p, nil
		case time.Time:
			return param{tag: C.LITEPOOL_TYPE_TEXT, s: v.Format(TimeFormat)}, nil
		}
		v, ok, err := normalize(a)
		if err != nil {
			return param{}, bindError(pos, err)
		}
		switch {
		case ok:
			a = v
		case isValuer(a):
			if a, err = a.(driver.Valuer).Value(); err != nil {
				return param{}, bindError(pos, err)
			}
		default:
			if a, err = driver.DefaultParameterConverter.ConvertValue(a); err != nil {
				return param{}, bindError(pos, err)
			}
		}
	}
	return param{}, bindError(pos, fmt.Errorf("unsupported type %T", a))
}

func isValuer(a any) bool {
	_, ok := a.(driver.Valuer)
	return ok
}

func bindError(pos int, err error) error {
	return &Error{Op: "bind", Status: StatusInvalidArgument, Kind: KindInterface,
		Message: fmt.Sprintf("parameter %d: %v", pos, err)}
}

// paramBuf is a session's C memory for the parameters of one call: the value array followed
// by the text and blob bytes (the cgo rules forbid Go pointers inside memory passed to C).
// It is reused by the session's next call, grown when too small, and freed when the session
// closes; the session's argMu guards it.
type paramBuf struct {
	mem      unsafe.Pointer
	size     int
	resolved []param // scratch for bind, emptied after each use
}

func (b *paramBuf) free() {
	if b.mem != nil {
		C.free(b.mem)
		b.mem, b.size = nil, 0
	}
}

// bind writes args into b and returns the C array (nil for no parameters); valid until b's
// next bind or free. value gives a parameter's Go value.
func bind[T any](b *paramBuf, args []T, value func(T) any) (*C.litepool_value, error) {
	if len(args) == 0 {
		return nil, nil
	}
	ps := b.resolved[:0]
	defer func() { clear(ps); b.resolved = ps[:0] }() // keep no Go strings or bytes alive
	total := 0
	for i, a := range args {
		p, err := resolveParam(value(a), i+1)
		if err != nil {
			return nil, err
		}
		total += len(p.s) + len(p.b)
		ps = append(ps, p)
	}
	vsize := int(unsafe.Sizeof(C.litepool_value{})) * len(ps)
	if need := vsize + total; need > b.size {
		b.free()
		size := max(need, 256)
		b.mem = C.malloc(C.size_t(size))
		if b.mem == nil {
			return nil, fmt.Errorf("litepool: out of memory for %d parameters", len(ps))
		}
		b.size = size
	}
	vals := unsafe.Slice((*C.litepool_value)(b.mem), len(ps))
	data := unsafe.Slice((*byte)(unsafe.Add(b.mem, vsize)), total)
	off := 0
	for i, p := range ps {
		val := &vals[i]
		*val = C.litepool_value{tag: p.tag, integer: C.int64_t(p.i), real: C.double(p.f)}
		var n int
		switch p.tag {
		case C.LITEPOOL_TYPE_TEXT:
			n = copy(data[off:], p.s)
		case C.LITEPOOL_TYPE_BLOB:
			n = copy(data[off:], p.b)
		default:
			continue
		}
		if n > 0 {
			val.data = (*C.uint8_t)(unsafe.Pointer(&data[off]))
		}
		val.len = C.size_t(n)
		off += n
	}
	return &vals[0], nil
}

func anyValue(a any) any                  { return a }
func namedValue(nv driver.NamedValue) any { return nv.Value }

// normalize converts a Go parameter to one of the types resolveParam binds directly. ok is false for
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

// goValue converts one C value to a driver.Value (copying text and blobs); timeCol says the
// column is declared DATE, DATETIME or TIMESTAMP (zone-less timestamps are times there).
func goValue(v *C.litepool_value, loc *time.Location, timeCol bool) driver.Value {
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
		parse := parseTime
		if timeCol {
			parse = parseDeclTime
		}
		if t, ok := parse(s, loc); ok {
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
