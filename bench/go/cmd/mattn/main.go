// Command mattn runs the Go benchmark cases through database/sql with mattn/go-sqlite3
// (cgo, its own SQLite copy), WAL and synchronous=NORMAL like litepool's defaults.
package main

import (
	"database/sql"

	"github.com/litepool/litepool/bench/go/internal/harness"
	_ "github.com/mattn/go-sqlite3"
)

func open(path string) (*sql.DB, error) {
	return sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000")
}

func main() {
	path, db, cleanup, err := harness.Setup(open)
	if err != nil {
		panic(err)
	}
	defer cleanup()
	cases := append(harness.SQLCases(db), harness.TickCase("mattn", path, open))
	harness.Main("mattn", cases)
	db.Close()
}
