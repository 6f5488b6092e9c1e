package litepool

// Fuzzing argument conversion (make fuzz runs it with -fuzz; the seeds run in make test):
// Go values go through normalize and toCParams into the C ABI, are bound by SQLite, and come
// back through goValue. Each must come back as given, or fail with an error (text that is
// not UTF-8 cannot be SQLite TEXT in litepool) — never panic, never come back altered.

import (
	"bytes"
	"database/sql"
	"math"
	"sync"
	"testing"
	"unicode/utf8"
)

var fuzzDB = sync.OnceValues(func() (*sql.DB, error) { return sql.Open("litepool", ":memory:") })

func FuzzArgumentRoundTrip(f *testing.F) {
	f.Add(int64(0), 0.0, "", []byte{}, false, uint64(0))
	f.Add(int64(math.MinInt64), math.MaxFloat64, "héllo\x00world", []byte{0, 1, 2}, true, uint64(math.MaxInt64))
	f.Add(int64(math.MaxInt64), math.Inf(-1), "\xff\xfe", []byte("x"), false, uint64(math.MaxUint64))
	f.Add(int64(-1), math.SmallestNonzeroFloat64, "2006-01-02 15:04:05+07:00", []byte(nil), true, uint64(1<<63))
	f.Fuzz(func(t *testing.T, i int64, r float64, s string, b []byte, flag bool, u uint64) {
		db, err := fuzzDB()
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			b = []byte{}
		}
		var gi, gflag int64
		var gr sql.NullFloat64
		var gs string
		var gb []byte
		err = db.QueryRow("SELECT ?, ?, ?, ?, ?", i, r, s, b, flag).Scan(&gi, &gr, &gs, &gb, &gflag)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("text %q that is not UTF-8 was accepted and came back as %q", s, gs)
			}
			return
		}
		if _, isTime := parseTime(s, nil); isTime {
			return // comes back as a time.Time by design (see TimeFormat)
		}
		if err != nil {
			t.Fatalf("SELECT of %d, %v, %q, %x, %v: %v", i, r, s, b, flag, err)
		}
		if gi != i {
			t.Fatalf("int64 %d came back as %d", i, gi)
		}
		if math.IsNaN(r) {
			if gr.Valid {
				t.Fatalf("NaN came back as %v, not NULL", gr.Float64)
			}
		} else if !gr.Valid || gr.Float64 != r {
			t.Fatalf("float64 %v came back as %v", r, gr)
		}
		if gs != s {
			t.Fatalf("string %q came back as %q", s, gs)
		}
		if !bytes.Equal(gb, b) {
			t.Fatalf("[]byte %x came back as %x", b, gb)
		}
		if (gflag == 1) != flag {
			t.Fatalf("bool %v came back as %d", flag, gflag)
		}
		var gu int64
		err = db.QueryRow("SELECT ?", u).Scan(&gu)
		if u > math.MaxInt64 {
			if err == nil {
				t.Fatalf("uint64 %d past int64 was accepted as %d", u, gu)
			}
		} else if err != nil || uint64(gu) != u {
			t.Fatalf("uint64 %d came back as %d (%v)", u, gu, err)
		}
	})
}
