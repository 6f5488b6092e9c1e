package litepool

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// coreOptions are the option names litepool's core understands (src/config.rs); they are
// passed through to the C ABI, which validates their values.
var coreOptions = map[string]bool{
	"max_readers": true, "acquire_timeout": true, "busy_timeout": true, "idle_timeout": true,
	"close_timeout": true, "journal_mode": true, "synchronous": true, "foreign_keys": true,
	"journal_size_limit": true, "statement_cache_capacity": true, "checkpoint": true,
	"checkpoint_interval": true, "checkpoint_passive_frames": true, "checkpoint_max_delay": true,
	"checkpoint_truncate_frames": true, "checkpoint_stuck_ticks": true,
	"checkpoint_busy_timeout": true, "wal_cap_frames": true, "max_read_txn_age": true,
	"optimize_interval": true, "incremental_vacuum": true, "group_commit": true, "mode": true,
	"cache": true,
}

// connectionPragmas are pragmas whose value belongs to one SQLite connection; litepool replays
// them on every connection a session uses (src/classify.rs), so the driver sets them once per
// session.
var connectionPragmas = map[string]bool{
	"automatic_index": true, "cache_size": true, "cache_spill": true, "cell_size_check": true,
	"defer_foreign_keys": true, "ignore_check_constraints": true, "query_only": true,
	"recursive_triggers": true, "reverse_unordered_selects": true, "secure_delete": true,
	"temp_store": true, "trusted_schema": true,
}

// poolPragmas are pragmas that are pool options in litepool (set on every connection).
var poolPragmas = map[string]string{
	"busy_timeout": "busy_timeout", "journal_mode": "journal_mode", "synchronous": "synchronous",
	"foreign_keys": "foreign_keys", "journal_size_limit": "journal_size_limit",
}

// mattnPragmas maps go-sqlite3's pragma options onto connection pragmas.
var mattnPragmas = map[string]string{
	"_cache_size": "cache_size", "_recursive_triggers": "recursive_triggers", "_rt": "recursive_triggers",
	"_defer_foreign_keys": "defer_foreign_keys", "_defer_fk": "defer_foreign_keys",
	"_ignore_check_constraints": "ignore_check_constraints", "_query_only": "query_only",
	"_secure_delete": "secure_delete",
}

const defaultAcquireTimeout = 5 * time.Second

// config is a parsed DSN.
type config struct {
	dsn            string // as given
	path           string // decoded file path (":memory:" for memory)
	uri            string // what the C ABI opens: file: URI with core options, acquire_timeout=0
	coreQuery      string // normalized core options (to compare two opens of one file)
	acquireTimeout time.Duration
	pragmas        [][2]string // connection pragmas set on every session
	loc            *time.Location
}

func parseDSN(dsn string) (*config, error) {
	if dsn == "" {
		return nil, configError("empty DSN (expected a file path, a file: URI, or :memory:)")
	}
	cfg := &config{dsn: dsn, acquireTimeout: defaultAcquireTimeout}
	var rawPath, query string
	isURI := len(dsn) >= 5 && strings.EqualFold(dsn[:5], "file:")
	if isURI {
		rest := dsn[5:]
		if i := strings.IndexByte(rest, '#'); i >= 0 {
			rest = rest[:i]
		}
		rawPath, query, _ = strings.Cut(rest, "?")
		if strings.HasPrefix(rawPath, "//") {
			after := rawPath[2:]
			i := strings.IndexByte(after, '/')
			if i < 0 {
				i = len(after)
			}
			if auth := after[:i]; auth != "" && !strings.EqualFold(auth, "localhost") {
				return nil, configError("DSN %q: authority %q is not supported (expected file:///abs/path, file://localhost/abs/path, or file:rel/path)", dsn, auth)
			}
			rawPath = after[i:]
		}
		p, err := url.PathUnescape(rawPath)
		if err != nil {
			return nil, configError("DSN %q: bad percent escape in the path: %v", dsn, err)
		}
		cfg.path = p
	} else {
		// As go-sqlite3 and modernc do, a '?' in a plain path starts the options.
		cfg.path, query, _ = strings.Cut(dsn, "?")
	}
	if cfg.path == "" {
		return nil, configError("DSN %q has an empty path (use \":memory:\" for an in-memory database)", dsn)
	}
	if strings.IndexByte(cfg.path, 0) >= 0 {
		return nil, configError("DSN %q: the path contains a NUL byte", dsn)
	}

	core := map[string]string{}
	setCore := func(k, v, from string) error {
		if old, ok := core[k]; ok && old != v {
			return configError("DSN %q: %s=%s conflicts with %s=%s given earlier", dsn, from, v, k, old)
		}
		core[k] = v
		return nil
	}
	setPragma := func(name, value string) {
		for i, p := range cfg.pragmas {
			if p[0] == name {
				cfg.pragmas[i][1] = value
				return
			}
		}
		cfg.pragmas = append(cfg.pragmas, [2]string{name, value})
	}
	if query != "" {
		for _, seg := range strings.Split(query, "&") {
			if seg == "" {
				continue
			}
			rk, rv, ok := strings.Cut(seg, "=")
			if !ok {
				return nil, configError("DSN %q: %q has no value (expected key=value)", dsn, seg)
			}
			k, err1 := url.PathUnescape(rk)
			v, err2 := url.PathUnescape(rv)
			if err1 != nil || err2 != nil {
				return nil, configError("DSN %q: bad percent escape in %q", dsn, seg)
			}
			if k == "" {
				return nil, configError("DSN %q: %q has no option name (expected key=value)", dsn, seg)
			}
			switch {
			case k == "acquire_timeout":
				d, err := parseDuration(v)
				if err != nil {
					return nil, configError("acquire_timeout: %q %v", v, err)
				}
				cfg.acquireTimeout = d
			case k == "mode":
				// "ro", "rw", "rwc" as go-sqlite3/SQLite URIs spell them.
				if err := setCore(k, v, k); err != nil {
					return nil, err
				}
			case coreOptions[k]:
				if err := setCore(k, v, k); err != nil {
					return nil, err
				}
			case k == "_busy_timeout" || k == "_timeout":
				if _, err := strconv.ParseUint(v, 10, 32); err != nil {
					return nil, configError("%s: %q is not a number of milliseconds", k, v)
				}
				if err := setCore("busy_timeout", v+"ms", k); err != nil {
					return nil, err
				}
			case k == "_journal_mode" || k == "_journal":
				if err := setCore("journal_mode", strings.ToLower(v), k); err != nil {
					return nil, err
				}
			case k == "_synchronous" || k == "_sync":
				if err := setCore("synchronous", strings.ToLower(v), k); err != nil {
					return nil, err
				}
			case k == "_foreign_keys" || k == "_fk":
				if err := setCore("foreign_keys", strings.ToLower(v), k); err != nil {
					return nil, err
				}
			case k == "_txlock":
				// Write transactions always begin IMMEDIATE in litepool (one writer per
				// pool, so a deferred read→write upgrade cannot deadlock or fail with
				// SQLITE_BUSY); EXCLUSIVE adds nothing in WAL mode.
				switch strings.ToLower(v) {
				case "immediate", "deferred", "exclusive":
				default:
					return nil, configError("_txlock: %q is not a lock mode (expected immediate, deferred or exclusive)", v)
				}
			case k == "_locking_mode" || k == "_locking":
				if !strings.EqualFold(v, "normal") {
					return nil, configError("%s: %q is not supported: litepool shares the file between its connections, so only NORMAL locking works", k, v)
				}
			case k == "_mutex":
				switch strings.ToLower(v) {
				case "no", "full":
				default:
					return nil, configError("_mutex: %q is not a mutex mode (expected no or full)", v)
				}
			case k == "_time_format":
				if v != "sqlite" {
					return nil, configError("_time_format: %q is not supported (expected sqlite)", v)
				}
			case k == "_loc":
				switch strings.ToLower(v) {
				case "auto":
					cfg.loc = time.Local
				default:
					loc, err := time.LoadLocation(v)
					if err != nil {
						return nil, configError("_loc: %q is not a time zone: %v", v, err)
					}
					cfg.loc = loc
				}
			case mattnPragmas[k] != "":
				setPragma(mattnPragmas[k], v)
			case k == "_pragma":
				name, value, err := parsePragma(v)
				if err != nil {
					return nil, configError("_pragma: %q %v", v, err)
				}
				switch {
				case name == "busy_timeout":
					if _, err := strconv.ParseUint(value, 10, 32); err != nil {
						return nil, configError("_pragma: busy_timeout(%s) is not a number of milliseconds", value)
					}
					if err := setCore("busy_timeout", value+"ms", "_pragma"); err != nil {
						return nil, err
					}
				case poolPragmas[name] != "":
					if err := setCore(poolPragmas[name], strings.ToLower(value), "_pragma"); err != nil {
						return nil, err
					}
				case connectionPragmas[name]:
					setPragma(name, value)
				default:
					return nil, configError("_pragma: %s is not supported by litepool (supported: busy_timeout, journal_mode, synchronous, foreign_keys, journal_size_limit, %s)", name, strings.Join(sortedKeys(connectionPragmas), ", "))
				}
			default:
				msg := fmt.Sprintf("unknown DSN option %q", k)
				if strings.ToLower(k) != k {
					msg += " (option names are lower case)"
				}
				return nil, configError("%s; litepool options: acquire_timeout, %s; go-sqlite3/modernc options: _pragma, _busy_timeout, _timeout, _journal_mode, _journal, _synchronous, _sync, _foreign_keys, _fk, _txlock, _locking_mode, _mutex, _loc, _time_format, %s",
					msg, strings.Join(sortedKeys(coreOptions), ", "), strings.Join(sortedKeys(mattnPragmas), ", "))
			}
		}
	}
	core["acquire_timeout"] = "0"
	keys := make([]string, 0, len(core))
	for k := range core {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var q strings.Builder
	for i, k := range keys {
		if i > 0 {
			q.WriteByte('&')
		}
		q.WriteString(escapeURI(k))
		q.WriteByte('=')
		q.WriteString(escapeURI(core[k]))
	}
	cfg.coreQuery = q.String()
	p := cfg.path
	var u string
	if strings.HasPrefix(p, "/") {
		u = "file://" + escapeURI(p)
	} else {
		u = "file:" + escapeURI(p)
	}
	cfg.uri = u + "?" + cfg.coreQuery
	return cfg, nil
}

// poolKey identifies the database file of cfg within this process.
func (cfg *config) poolKey() string {
	if cfg.path == ":memory:" {
		return ":memory:"
	}
	abs, err := filepath.Abs(cfg.path)
	if err != nil {
		return cfg.path
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// parsePragma splits modernc's "name(value)" (or "name=value").
func parsePragma(s string) (string, string, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		return strings.ToLower(strings.TrimSpace(s[:i])), strings.TrimSpace(s[i+1 : len(s)-1]), nil
	}
	if name, value, ok := strings.Cut(s, "="); ok && name != "" {
		return strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value), nil
	}
	return "", "", fmt.Errorf("is not a pragma assignment (expected name(value))")
}

func escapeURI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			strings.IndexByte("-._~/:@!$'()*+,;", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// parseDuration accepts what litepool's core accepts: 5s, 500ms, 2m, 1h, or seconds as a
// decimal number.
func parseDuration(v string) (time.Duration, error) {
	if strings.HasPrefix(v, "-") {
		return 0, fmt.Errorf("is negative (expected a duration of 0 or more)")
	}
	num, unit := v, time.Second
	switch {
	case strings.HasSuffix(v, "ms"):
		num, unit = v[:len(v)-2], time.Millisecond
	case strings.HasSuffix(v, "s"):
		num = v[:len(v)-1]
	case strings.HasSuffix(v, "m"):
		num, unit = v[:len(v)-1], time.Minute
	case strings.HasSuffix(v, "h"):
		num, unit = v[:len(v)-1], time.Hour
	}
	if num == "" || strings.ContainsAny(num, "eE+ ") {
		return 0, fmt.Errorf("is not a duration (use e.g. 5s, 500ms, 2m, or seconds as a number)")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("is not a duration (use e.g. 5s, 500ms, 2m, or seconds as a number)")
	}
	if f*float64(unit) > float64(100*365*24*time.Hour) {
		return 0, fmt.Errorf("is too long (at most 100 years)")
	}
	return time.Duration(f * float64(unit)), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
