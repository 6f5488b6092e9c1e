package litepool

// Fuzzing the DSN parser (make fuzz runs it with -fuzz; the seeds below run in make test).
// Properties: parseDSN never panics; the core DSN it hands to the C ABI for a DSN it accepts
// is accepted again and comes back unchanged, with the same acquire timeout (what the core
// opens is what the core checked, whatever escaping the path needed).

import (
	"testing"
)

func FuzzParseDSN(f *testing.F) {
	for _, seed := range []string{
		"", "a.db", "/abs/a.db", ":memory:", "file::memory:", "file:a.db?mode=ro",
		"file:///tmp/a%20b.db?max_readers=2&busy_timeout=5s", "file://localhost/x.db",
		"file://evil/x.db", "a.db?_busy_timeout=100&_journal_mode=WAL&_txlock=immediate",
		"a.db?_pragma=foreign_keys(1)&_pragma=busy_timeout(250)", "file:a.db?%zz=1",
		"file:a.db?x", "file:a.db?=1", "file:a%00.db", "a.db?_loc=auto", "a.db?_loc=Mars/Base",
		"file:a.db?mode=ro&mode=rw", "file:%2F%2Fx?#frag", "FILE:a.db", "file:a.db?acquire_timeout=-1s",
		"file:a.db?acquire_timeout=1e3", "file:a#b?c", "file:////x.db", "a.db?_pragma=cache_size=-2000",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		cfg, err := parseDSN(dsn)
		if err != nil {
			return
		}
		again, err := parseDSN(cfg.uri)
		if err != nil {
			t.Fatalf("%q: its URI %q does not parse: %v", dsn, cfg.uri, err)
		}
		if again.uri != cfg.uri {
			t.Fatalf("%q: URI %q comes back as %q", dsn, cfg.uri, again.uri)
		}
		if again.acquireTimeout != cfg.acquireTimeout {
			t.Fatalf("%q: acquire timeout %v in %q", dsn, again.acquireTimeout, cfg.uri)
		}
	})
}
