// The Go scenario of `make demo` through mattn/go-sqlite3, the usual cgo driver. Its own
// module and binary: it links mattn's SQLite, so it must never link litepool too.
package main

import (
	"os"

	_ "github.com/mattn/go-sqlite3"
	"litepool-demo/workload"
)

func main() { os.Exit(workload.Main("sqlite3")) }
