// litepool's stand-in for modernc.org/sqlite: a program switches to litepool with
//
//	replace modernc.org/sqlite => /path/to/litepool/go/compat/modernc
//	replace github.com/litepool/litepool/go => /path/to/litepool/go
//
// (go/README.md, "Switching from modernc or go-sqlite3").
module modernc.org/sqlite

go 1.23

require github.com/litepool/litepool/go v0.0.0

replace github.com/litepool/litepool/go => ../..
