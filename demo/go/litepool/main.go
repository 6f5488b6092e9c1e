// The Go scenario of `make demo` through litepool's database/sql driver (the module in go/,
// through a replace directive). Its own module and binary, apart from the mattn peer.
package main

import (
	"os"

	_ "github.com/litepool/litepool/go"
	"litepool-demo/workload"
)

func main() { os.Exit(workload.Main("litepool")) }
