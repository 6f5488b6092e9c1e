// litepool's stand-in for github.com/mattn/go-sqlite3: a program switches to litepool with
//
//	replace github.com/mattn/go-sqlite3 => /path/to/litepool/go/compat/mattn
//	replace github.com/litepool/litepool/go => /path/to/litepool/go
//
// (go/README.md, "Switching from modernc or go-sqlite3").
module github.com/mattn/go-sqlite3

go 1.23

require github.com/litepool/litepool/go v0.0.0

replace github.com/litepool/litepool/go => ../..
