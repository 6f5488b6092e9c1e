# The only entry points a user needs: make test, make demo, make bench.
# Each installs or builds what it needs by itself.

CARGO ?= cargo

.PHONY: test test-rust demo bench compat check-tools

# Each host layer adds its own test target to HOST_TESTS in mk/<host>.mk, and the targets
# that run other people's suites on litepool to COMPAT_TARGETS.
HOST_TESTS :=
COMPAT_TARGETS :=
include $(wildcard mk/*.mk)

test: test-rust $(HOST_TESTS)

# Other people's test suites (CPython's test_sqlite3, Django, SQLAlchemy, public Go
# projects) on their own driver and on litepool, side by side. Takes minutes; not in `test`.
compat: $(COMPAT_TARGETS)

check-tools:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)"; exit 1; }

# Unit, integration and doc tests of the Rust core; the benches are built (not run) so they
# cannot rot.
test-rust: check-tools
	$(CARGO) test --locked
	$(CARGO) build --locked --release --benches --examples

# The side-by-side demo (mk/demo.mk, demo/README.md): stdlib sqlite3 and mattn/go-sqlite3 vs
# litepool, FDs and WAL size over time; prints a table and the path of a chart.
demo: check-tools
	@$(MAKE) --no-print-directory demo-build
	@$(MAKE) --no-print-directory demo-run

# The whole benchmark suite against the peers; writes BENCHMARKS.md (see mk/bench.mk).
bench: check-tools bench-suite
