package litepool

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// A modernc-style program: every DSN carries _pragma=mmap_size(…), new shard files
// _pragma=auto_vacuum(2), and the same file is opened by the app's pools with
// foreign_keys(1) and by a maintenance probe with foreign_keys(0). As with SQLite, where
// these are per connection (or applied when the file is created), every open succeeds and
// each *sql.DB's connections have their own settings.
func TestModerncStyleDSNsShareOnePool(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shard.db")
	base := "file:" + path + "?_pragma=mmap_size(268435456)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	app, err := sql.Open("litepool", base+"&_pragma=auto_vacuum(2)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	mustExec(t, app, "CREATE TABLE parent(id INTEGER PRIMARY KEY)")
	mustExec(t, app, "CREATE TABLE child(p REFERENCES parent(id))")
	probe, err := sql.Open("litepool", base+"&_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	// Same meaning, other spelling: no difference at all.
	same, err := sql.Open("litepool", "file:"+path+"?busy_timeout=5s&_fk=on&_pragma=mmap_size(268435456)")
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()

	pragma := func(db *sql.DB, name string) int64 {
		t.Helper()
		var v int64
		if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for i := 0; i < 3; i++ { // interleaved on the same pooled connections
		for _, c := range []struct {
			db   *sql.DB
			name string
			want int64
		}{
			{app, "foreign_keys", 1}, {probe, "foreign_keys", 0}, {same, "foreign_keys", 1},
			{app, "mmap_size", 268435456}, {probe, "mmap_size", 268435456},
			{app, "busy_timeout", 5000}, {same, "busy_timeout", 5000},
			{app, "auto_vacuum", 2},
		} {
			if got := pragma(c.db, c.name); got != c.want {
				t.Fatalf("PRAGMA %s = %d, want %d", c.name, got, c.want)
			}
		}
	}
	if _, err := app.Exec("INSERT INTO child VALUES (7)"); err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("foreign_keys(1): dangling insert gave %v", err)
	}
	if _, err := probe.Exec("INSERT INTO child VALUES (7)"); err != nil {
		t.Fatalf("foreign_keys(0): %v", err)
	}
}

// auto_vacuum on new files and PRAGMA optimize are choices.
func TestAutoVacuumAndOptimizeAreChoices(t *testing.T) {
	dir := t.TempDir()
	for dsnOpts, want := range map[string]int64{"": 2, "?auto_vacuum=none": 0, "?_pragma=auto_vacuum(0)": 0, "?_vacuum=1": 1} {
		path := filepath.Join(dir, "av"+filepath.Base(strings.NewReplacer("?", "", "=", "", "(", "", ")", "").Replace(dsnOpts))+".db")
		db, err := sql.Open("litepool", "file:"+path+dsnOpts)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, "CREATE TABLE t(x)")
		var got int64
		if err := db.QueryRow("PRAGMA auto_vacuum").Scan(&got); err != nil || got != want {
			t.Errorf("%q: auto_vacuum %d (%v), want %d", dsnOpts, got, err, want)
		}
		db.Close()
	}
	stat1 := func(optimize string) int64 {
		path := filepath.Join(dir, "opt-"+optimize+".db")
		db, err := sql.Open("litepool", "file:"+path+"?optimize="+optimize)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, "CREATE TABLE t(a, b)")
		mustExec(t, db, "CREATE INDEX ta ON t(a)")
		mustExec(t, db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO t SELECT i % 7, i FROM n")
		var n int64
		for i := 0; i < 3; i++ {
			if err := db.QueryRow("SELECT count(*) FROM t WHERE a = 3").Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		// Read back without optimizing (a default open would run PRAGMA optimize itself).
		db, _ = sql.Open("litepool", "file:"+path+"?optimize=false&mode=ro")
		defer db.Close()
		if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := stat1("true"); got != 1 {
		t.Errorf("optimize=true: sqlite_stat1 count %d, want 1", got)
	}
	if got := stat1("false"); got != 0 {
		t.Errorf("optimize=false: sqlite_stat1 count %d, want 0", got)
	}
}

// In a plain path's options '#' is a character, as go-sqlite3 reads them: it does not start a
// fragment that would hide the options after it.
func TestPlainPathOptionsHaveNoFragment(t *testing.T) {
	_, err := parseDSN("a.db?_fk=1&#x=1")
	if err == nil || !strings.Contains(err.Error(), `unknown option "#x"`) {
		t.Fatalf("a.db?_fk=1&#x=1: %v", err)
	}
	cfg, err := parseDSN("file:a.db?_fk=1#fragment")
	if err != nil {
		t.Fatal(err)
	}
	if want := "file:a.db?pragma=foreign_keys%281%29"; cfg.uri != want {
		t.Fatalf("URI %q, want %q", cfg.uri, want)
	}
}
