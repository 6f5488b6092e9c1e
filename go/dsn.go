package litepool

/*
#include "litepool.h"
*/
import "C"

import (
	"net/url"
	"strings"
	"time"
)

// The DSN is parsed by litepool's core (litepool_dsn_parse, the parser every host uses). Go
// only translates the option names go-sqlite3 (mattn) and modernc programs use into the
// core's, and keeps the few options that act in Go (_loc, _txlock, _mutex, _time_format).

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

// goOptions lists the peers' options Go handles, for the unknown-option message.
const goOptions = "_pragma, _busy_timeout, _timeout, _journal_mode, _journal, _synchronous, _sync, " +
	"_foreign_keys, _fk, _auto_vacuum, _vacuum, _locking_mode, _locking, _cache_size, " +
	"_recursive_triggers, _rt, _defer_foreign_keys, _defer_fk, _ignore_check_constraints, " +
	"_query_only, _secure_delete, _txlock, _mutex, _loc, _time_format"

// config is a parsed DSN.
type config struct {
	dsn            string // as given
	uri            string // what the C ABI opens: the core's DSN, with acquire_timeout=0
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
			le.Message += "; go-sqlite3/modernc options: " + goOptions
		}
		return nil, err
	}
	cfg.acquireTimeout = time.Duration(info.acquire_timeout_ms) * time.Millisecond
	// The core never waits for a connection: Go does, cancellably (see session.call).
	if strings.Contains(core, "?") {
		cfg.uri = core + "&acquire_timeout=0"
	} else {
		cfg.uri = pathURI(core) + "?acquire_timeout=0"
	}
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
	} else {
		var path string
		path, query, _ = strings.Cut(dsn, "?")
		if query == "" {
			return path, nil
		}
		head = pathURI(path)
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
		case k == "_txlock":
			// Write transactions always begin IMMEDIATE in litepool (one writer per pool, so a
			// deferred read→write upgrade cannot deadlock or fail with SQLITE_BUSY);
			// EXCLUSIVE adds nothing in WAL mode.
			switch strings.ToLower(v) {
			case "immediate", "deferred", "exclusive":
			default:
				return "", configError("_txlock: %q is not a lock mode (expected immediate, deferred or exclusive)", v)
			}
		case k == "_mutex":
			switch strings.ToLower(v) {
			case "no", "full":
			default:
				return "", configError("_mutex: %q is not a mutex mode (expected no or full)", v)
			}
		case k == "_time_format":
			if v != "sqlite" {
				return "", configError("_time_format: %q is not supported (expected sqlite)", v)
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

// pathURI is the file: URI of a plain path (":memory:" stays itself).
func pathURI(path string) string {
	if path == ":memory:" {
		return "file::memory:"
	}
	if strings.HasPrefix(path, "/") {
		return "file://" + escapeURI(path)
	}
	return "file:" + escapeURI(path)
}

func escapeURI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			strings.IndexByte("-._~/:@!$'()*+,;", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%")
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	return b.String()
}
