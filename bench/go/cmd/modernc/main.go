// Command modernc runs the Go benchmark cases through database/sql with modernc.org/sqlite
// (SQLite translated to Go), WAL and synchronous=NORMAL like litepool's defaults.
package main

import (
	"database/sql"

	"github.com/litepool/litepool/bench/go/internal/harness"
	_ "modernc.org/sqlite"
)

func open(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
}

func main() {
	path, db, cleanup, err := harness.Setup(open)
	if err != nil {
		panic(err)
	}
	defer cleanup()
	cases := append(harness.SQLCases(db), harness.TickCase("modernc", path, open))
	harness.Main("modernc", cases)
	db.Close()
}
