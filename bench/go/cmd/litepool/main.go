// Command litepool runs the Go benchmark cases through database/sql with the litepool driver
// (its defaults: WAL, synchronous=NORMAL, 4 readers), then through litepool's native API.
package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/litepool/litepool/bench/go/internal/harness"
	litepool "github.com/litepool/litepool/go"
)

func open(path string) (*sql.DB, error) {
	return sql.Open("litepool", "file:"+path)
}

// nativeCases are the same workloads through the native API: each read or write is one
// statement outside any transaction (Pool.QueryRow, Pool.Query, Pool.Exec: one call into
// litepool, one trip to a connection thread), plus the point select inside Pool.Read (a read
// transaction: BEGIN, the query, COMMIT) for comparison.
func nativeCases(p *litepool.Pool) []harness.Case {
	ctx := context.Background()
	point := func(i int) error {
		var v string
		return p.QueryRow(ctx, harness.PointSQL, []any{harness.Key(i)}, &v)
	}
	return []harness.Case{
		{Name: "point select", N: 200_000, Run: func(n int) (int, error) {
			for i := 0; i < n; i++ {
				if err := point(i); err != nil {
					return 0, err
				}
			}
			return n, nil
		}},
		{Name: "point select in a read transaction", N: 200_000, Run: func(n int) (int, error) {
			for i := 0; i < n; i++ {
				err := p.Read(ctx, func(c *litepool.Conn) error {
					var v string
					return c.QueryRow(harness.PointSQL, []any{harness.Key(i)}, &v)
				})
				if err != nil {
					return 0, err
				}
			}
			return n, nil
		}},
		{Name: "scan 100k rows", N: 20, Run: func(n int) (int, error) {
			for i := 0; i < n; i++ {
				var (
					id, a int64
					b     string
					f     float64
					count int
				)
				for row, err := range p.Query(ctx, harness.ScanSQL) {
					if err != nil {
						return 0, err
					}
					if err := row.Scan(&id, &a, &b, &f); err != nil {
						return 0, err
					}
					count++
				}
				if count != harness.ScanRows {
					return 0, fmt.Errorf("scan read %d rows, want %d", count, harness.ScanRows)
				}
			}
			return n, nil
		}},
		{Name: "64 concurrent readers", N: 200_000, Run: func(n int) (int, error) {
			return harness.Parallel(n, 64, func(_, i int) error { return point(i) })
		}},
		{Name: "8 concurrent writers", N: 20_000, Run: func(n int) (int, error) {
			return harness.Parallel(n, 8, func(_, i int) error {
				_, err := p.Exec(ctx, harness.InsertSQL, i, "x")
				return err
			})
		}},
	}
}

func main() {
	path, db, cleanup, err := harness.Setup(open)
	if err != nil {
		panic(err)
	}
	defer cleanup()
	harness.Main("litepool", append(harness.SQLCases(db), harness.TickCase("litepool", path, open)))
	p, err := litepool.Open("file:" + path)
	if err != nil {
		panic(err)
	}
	harness.Main("litepool-native", nativeCases(p))
	if err := p.Close(); err != nil {
		panic(err)
	}
	db.Close()
}
