package litepool

// Benchmarks of the Go paths on litepool's side alone (the comparison with mattn and modernc
// is bench/go, `make bench-go`): go test -run X -bench . -benchmem [-cpuprofile cpu.out].
// They measure and print; nothing is asserted on time.

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

const benchPointSQL = "SELECT v FROM kv WHERE id = ?"

func benchDB(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := sql.Open("litepool", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 10_000; i++ {
		if _, err := tx.Exec("INSERT INTO kv(id, v) VALUES (?, ?)", i, fmt.Sprintf("value-%08d", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchKey(i int) int { return i*7919%10_000 + 1 }

func BenchmarkPointSelectSQL(b *testing.B) {
	db, err := sql.Open("litepool", benchDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	b.ResetTimer()
	var v string
	for i := 0; i < b.N; i++ {
		if err := db.QueryRow(benchPointSQL, benchKey(i)).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPointSelectNativeQueryRow(b *testing.B) {
	p, err := Open(benchDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var v string
	args := make([]any, 1)
	for i := 0; i < b.N; i++ {
		args[0] = benchKey(i)
		if err := p.QueryRow(ctx, benchPointSQL, args, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPointSelectNativeRead(b *testing.B) {
	p, err := Open(benchDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var v string
	for i := 0; i < b.N; i++ {
		err := p.Read(ctx, func(c *Conn) error { return c.QueryRow(benchPointSQL, []any{benchKey(i)}, &v) })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// 64 goroutines (32 per P on this 2-core machine) sharing the pool's readers.
func BenchmarkPointSelectSQL64(b *testing.B) {
	db, err := sql.Open("litepool", benchDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var v string
		for pb.Next() {
			if err := db.QueryRow(benchPointSQL, benchKey(int(next.Add(1)))).Scan(&v); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPointSelectNative64(b *testing.B) {
	p, err := Open(benchDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var v string
		args := make([]any, 1)
		for pb.Next() {
			args[0] = benchKey(int(next.Add(1)))
			if err := p.QueryRow(ctx, benchPointSQL, args, &v); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
