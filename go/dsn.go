package litepool

/*
#include "litepool.h"
*/
import "C"

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The DSN is parsed by litepool's core (litepool_dsn_parse, the parser every host uses). Go
// only translates the option names go-sqlite3 (mattn) and modernc programs use into the
// core's, acts on _loc, and accepts the peers' options litepool has no use for.

// pragmaAliases maps the peers' pragma options onto the core's pragma=name(value).
var pragmaAliases = map[string]string{
	"_busy_timeout": "busy_timeout", "_timeout": "busy_timeout",
	"_journal_mode": "journal_mode", "_journal": "journal_mode",
	"_synchronous": "synchronous", "_sync": "synchronous",
	"_foreign_keys": "foreign_keys", "_fk": "foreign_keys",
	"_auto_vacuum": "auto_vacuum", "_vacuum": "auto_vacuum",
	"_locking_mode": "locking_mode", "_locking": "locking_mode",
	"_cache_size": "cache_size", "_recursive_triggers": "recursive_triggers", "_rt": "recursive_triggers",
	"_defer_foreign_keys": "defer_foreign_keys", "_defer_fk": "defer_foreign_keys",
	"_ignore_check_constraints": "ignore_check_constraints", "_query_only": "query_only",
	"_secure_delete": "secure_delete",
}

// ignoredOptions are the peers' options litepool accepts and has no use for, with the values
// the peers accept. BeginTx always begins IMMEDIATE in litepool (one writer per pool, so a
// deferred read→write upgrade cannot deadlock or fail with SQLITE_BUSY) and EXCLUSIVE adds
// nothing in WAL mode (_txlock); each connection is used by one thread (_mutex); times are
// always stored in one layout, TimeFormat (_time_format).
var ignoredOptions = map[string][]string{
	"_txlock":      {"immediate", "deferred", "exclusive"},
	"_mutex":       {"no", "full"},
	"_time_format": {"sqlite"},
}

// peerOptions lists the peers' options Go handles, for the unknown-option message.
func peerOptions() string {
	names := append(slices.Collect(maps.Keys(pragmaAliases)), "_pragma", "_loc")
	names = append(names, slices.Collect(maps.Keys(ignoredOptions))...)
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// config is a parsed DSN.
type config struct {
	dsn            string // as given
	uri            string // what the C ABI opens: the core's DSN
	acquireTimeout time.Duration
	loc            *time.Location
}

func parseDSN(dsn string) (*config, error) {
	cfg := &config{dsn: dsn}
	core, err := cfg.translate(dsn)
	if err != nil {
		return nil, err
	}
	var info C.litepool_dsn_info
	var cerr *C.litepool_error
	ptr, n := strArg(core)
	st := C.litepool_dsn_parse(ptr, n, &info, &cerr)
	if err := takeError(st, cerr, "open"); err != nil {
		if le, ok := err.(*Error); ok && strings.Contains(le.Message, "unknown option") {
			le.Message += "; go-sqlite3/modernc options: " + peerOptions()
		}
		return nil, err
	}
	cfg.acquireTimeout = time.Duration(info.acquire_timeout_ms) * time.Millisecond
	cfg.uri = core
	return cfg, nil
}

// translate turns a go-sqlite3/modernc DSN into the core's: a plain path with '?' options
// becomes a file: URI (as those drivers read it), the peers' option names become the core's,
// and the options Go acts on are taken out.
func (cfg *config) translate(dsn string) (string, error) {
	var head, query string
	if len(dsn) >= 5 && strings.EqualFold(dsn[:5], "file:") {
		rest, _, _ := strings.Cut(dsn, "#")
		head, query, _ = strings.Cut(rest, "?")
		if query == "" {
			return head, nil
		}
	} else {
		var path string
		path, query, _ = strings.Cut(dsn, "?")
		if query == "" {
			return path, nil
		}
		head = pathURI(path)
		// A character of the options, as go-sqlite3 reads them, not a URI's fragment.
		query = strings.ReplaceAll(query, "#", "%23")
	}
	var out []string
	for _, seg := range strings.Split(query, "&") {
		rk, rv, ok := strings.Cut(seg, "=")
		k, err1 := url.PathUnescape(rk)
		v, err2 := url.PathUnescape(rv)
		if seg == "" || !ok || err1 != nil || err2 != nil {
			out = append(out, seg) // the core reports what is wrong with it
			continue
		}
		switch {
		case k == "_pragma":
			out = append(out, "pragma="+rv)
		case pragmaAliases[k] != "":
			out = append(out, "pragma="+url.PathEscape(pragmaAliases[k]+"("+v+")"))
		case ignoredOptions[k] != nil:
			if !slices.Contains(ignoredOptions[k], strings.ToLower(v)) {
				return "", configError("%s: %q is not supported (expected %s)", k, v, strings.Join(ignoredOptions[k], ", "))
			}
		case k == "_loc":
			if strings.EqualFold(v, "auto") {
				cfg.loc = time.Local
				break
			}
			loc, err := time.LoadLocation(v)
			if err != nil {
				return "", configError("_loc: %q is not a time zone: %v", v, err)
			}
			cfg.loc = loc
		default:
			out = append(out, seg)
		}
	}
	if len(out) == 0 {
		return head, nil
	}
	return head + "?" + strings.Join(out, "&"), nil
}

// pathURI is the file: URI of a plain path (":memory:" stays itself); the core decodes it.
func pathURI(path string) string {
	if path == ":memory:" {
		return "file::memory:"
	}
	return "file:" + url.PathEscape(path)
}
