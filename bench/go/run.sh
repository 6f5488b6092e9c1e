#!/bin/sh
# Builds and runs the Go benchmark programs, one binary per implementation (mattn's and
# modernc's SQLite never share a binary with litepool's), then joins their JSON lines into
# Markdown tables on stdout (also written to $OUT/go.md).
#
#   bench/go/run.sh [OUT]     OUT defaults to target/bench-go
#
# The litepool program links liblitepool.a through cgo: `make bench-go` builds the release
# library with feature capi and sets CGO_LDFLAGS to its directory; run by hand, build it first
# (cargo build --release --features capi) — go/capi.go then finds it in target/release.
# LITEPOOL_BENCH_SCALE (default 1) multiplies every operation count.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../target/bench-go}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
export CGO_ENABLED=1
for impl in mattn modernc litepool; do
	go build -o "$out/$impl" "./cmd/$impl"
done
go build -o "$out/report" ./cmd/report
for impl in mattn modernc litepool; do
	echo "  running $impl" >&2
	"$out/$impl" >"$out/$impl.jsonl"
done
{
	echo "Go $(go env GOVERSION); $(grep -E '^\s*(github.com/mattn/go-sqlite3|modernc.org/sqlite) ' go.mod | tr -s ' \t' ' ' | sed 's/^ //; s/ \/\/ indirect//' | paste -sd ',' - | sed 's/,/, /g'); GOMAXPROCS $(nproc)."
	echo "WAL, synchronous=NORMAL, busy timeout 5 s on every side; database/sql pool at its defaults (no SetMaxOpenConns)."
	echo
	"$out/report" "$out/mattn.jsonl" "$out/modernc.jsonl" "$out/litepool.jsonl"
} >"$out/go.md"
cat "$out/go.md"
