# The benchmark suite (issue 8): litepool against the peers it replaces, side by side.
#
#   make bench          everything below, then BENCHMARKS.md's generated sections rewritten
#   make bench-rust     cargo bench --bench handoff: pool vs rusqlite on the caller's thread
#   make bench-writers  cargo bench --bench writers: 8 threads of autocommit inserts, rusqlite
#                       vs litepool with group commit on and off
#   make bench-wal      cargo bench --bench wal: WAL size / writer latency under overlapping
#                       readers (BENCH_WAL_SCALE=1 for the full 60 s per side; default 0.25)
#   make bench-python   bench/python/bench.py: stdlib sqlite3 / apsw / litepool, FDs per tick
#   make bench-go       bench/go/run.sh: mattn / modernc / litepool (database/sql and native)
#   make bench-profile  callgrind instruction counts of the hot paths (bench/profile.sh)
#   make bench-contended  the point select of every host idle and beside busy processes
#                       (bench/contended.py)
#
# Every target writes its raw output to $(BENCH_OUT); bench/report.py turns those files into
# BENCHMARKS.md's generated sections. BENCH_SCALE (or LITEPOOL_BENCH_SCALE from the
# environment; default 0.5, so the whole suite fits in 15 minutes on a fresh 2-core machine)
# multiplies the operation counts of the Rust, Python and Go benches: BENCH_SCALE=1 for the
# full counts, 0.05 for a smoke run. The FD cases always run their 100,000 ticks.

BENCH_OUT := $(CURDIR)/target/bench
BENCH_SCALE ?= $(or $(LITEPOOL_BENCH_SCALE),0.5)
BENCH_WAL_SCALE ?= 0.25
BENCH_GO_LIB_DIR := $(CURDIR)/target/bench-go/lib
BENCH_PY ?= $(PYTHON)

.PHONY: bench-suite bench-rust bench-writers bench-wal bench-go bench-go-lib bench-apsw bench-aio-hook \
	bench-report bench-machine bench-profile bench-contended

bench-rust bench-writers bench-python bench-go: export LITEPOOL_BENCH_SCALE := $(BENCH_SCALE)

bench-suite: bench-machine bench-rust bench-writers bench-wal bench-python bench-go bench-aio-hook \
	bench-contended
	$(BENCH_PY) bench/report.py $(BENCH_OUT) BENCHMARKS.md

bench-machine:
	@mkdir -p $(BENCH_OUT)
	@sh bench/machine.sh >$(BENCH_OUT)/machine.md
	@cat $(BENCH_OUT)/machine.md

bench-rust: check-tools
	@mkdir -p $(BENCH_OUT)
	LITEPOOL_BENCH_JSON=$(BENCH_OUT)/rust.jsonl sh bench/run_logged.sh $(BENCH_OUT)/rust.txt \
		$(CARGO) bench --locked --bench handoff

bench-writers: check-tools
	@mkdir -p $(BENCH_OUT)
	LITEPOOL_BENCH_JSON=$(BENCH_OUT)/writers.jsonl sh bench/run_logged.sh $(BENCH_OUT)/writers.txt \
		$(CARGO) bench --locked --bench writers

bench-wal: check-tools
	@mkdir -p $(BENCH_OUT)
	LITEPOOL_BENCH_SCALE=$(BENCH_WAL_SCALE) sh bench/run_logged.sh $(BENCH_OUT)/wal.txt \
		$(CARGO) bench --locked --bench wal

# apsw is a peer of the Python bench only: installed into the venv here, not by the tests.
bench-apsw: python-venv
	@$(PY_BIN)/python -c 'import apsw' 2>/dev/null || \
		$(PY_BIN)/python -m pip install -q --disable-pip-version-check apsw

# bench-python's recipe (mk/python.mk) runs bench/python/bench.py, which writes
# $(BENCH_OUT)/python.{json,md}; apsw must be in the venv first.
bench-python: bench-apsw

# A release build of the static library (the Go bench measures the optimised code), copied
# where only this target links it from, and checked for the C ABI (see mk/go.mk's go-lib).
bench-go-lib: check-tools
	$(CARGO) build --locked --release --features capi
	@mkdir -p $(BENCH_GO_LIB_DIR)
	@cp target/release/liblitepool.a $(BENCH_GO_LIB_DIR)/liblitepool.a
	@nm -g --defined-only $(BENCH_GO_LIB_DIR)/liblitepool.a 2>/dev/null \
		| grep -q ' T litepool_session_open$$' || { \
		echo "target/release/liblitepool.a lacks the C ABI (rebuilt without feature capi concurrently?)"; \
		exit 1; }

bench-go: go-tools bench-go-lib
	@mkdir -p $(BENCH_OUT)
	CGO_LDFLAGS="-L$(BENCH_GO_LIB_DIR)" sh bench/go/run.sh $(BENCH_OUT)

# The asyncio bench (bench/python/bench_aio.py, target bench-aio) lands separately: run it
# when it is there.
bench-aio-hook:
	@mkdir -p $(BENCH_OUT)
	@if [ -f bench/python/bench_aio.py ]; then \
		sh bench/run_logged.sh $(BENCH_OUT)/aio.txt $(MAKE) --no-print-directory bench-aio || exit 1; \
	else \
		echo "bench/python/bench_aio.py not present: asyncio bench skipped"; rm -f $(BENCH_OUT)/aio.txt; \
	fi

bench-report:
	$(BENCH_PY) bench/report.py $(BENCH_OUT) BENCHMARKS.md

bench-profile: python-build
	sh bench/profile.sh $(BENCH_OUT)

# The point select of every host idle and beside busy processes at nice 0 and 19 (issue 16):
# bench/contended.py writes $(BENCH_OUT)/contended.md. The Go programs are built here against
# the release library, like bench-go's.
BENCH_CONTENDED_GO := $(BENCH_OUT)/contended-go

bench-contended: check-tools go-tools bench-go-lib python-build bench-apsw
	$(CARGO) build --locked --release --example point_select
	@mkdir -p $(BENCH_CONTENDED_GO)
	cd bench/go && for impl in mattn modernc litepool; do \
		CGO_ENABLED=1 CGO_LDFLAGS="-L$(BENCH_GO_LIB_DIR)" $(GO) build -o $(BENCH_CONTENDED_GO)/$$impl ./cmd/$$impl || exit 1; \
	done
	LITEPOOL_BENCH_SCALE=$(BENCH_SCALE) $(BENCH_PY) bench/contended.py \
		--rust target/release/examples/point_select --python $(abspath $(PY_BIN))/python \
		--go-dir $(BENCH_CONTENDED_GO) --out $(BENCH_OUT)
