# `make demo` (issue 10): the failures litepool ends, side by side with the stdlib sqlite3
# module and mattn/go-sqlite3, each side in its own process (demo/README.md).
#
#   make demo                          build what it needs, run the four scenarios (~2 min)
#   LITEPOOL_DEMO_SECS=4 make demo     a quick run (the WAL scenario's seconds per side)
#   LITEPOOL_DEMO_SCENARIOS=fd,go      a subset (fd, wal, go, tick)
#   make test-demo                     the demo's smoke tests (part of make test)
#
# Builds: the Python extension into $(PY_VENV) (python-build, mk/python.mk); two Go programs
# in their own modules under demo/go/: go-mattn (mattn/go-sqlite3, its own SQLite) and
# go-litepool (the module in go/ through a replace directive). go-litepool links the crate's
# static library built in *release* mode: the Go scenario compares throughput, and mk/go.mk's
# go-lib builds the debug library (for tests), whose unoptimized SQLite would misstate it. The
# library is copied to target/demo/lib and checked for the C ABI, as go-lib does, and cgo gets
# the same flags as in mk/go.mk (CGO_LDFLAGS=-L<that dir>). The mattn program builds while
# cargo does (make -j), so a fresh clone waits for the slower of the two.

DEMO_DIR := $(CURDIR)/target/demo
DEMO_BIN := $(DEMO_DIR)/bin
DEMO_LIB_DIR := $(DEMO_DIR)/lib
DEMO_RELEASE_LIB := target/release/liblitepool.a

HOST_TESTS += test-demo

.PHONY: demo-build demo-go-lib demo-go-mattn demo-go-litepool demo-run test-demo

demo-go-lib: check-tools
	$(CARGO) build --locked --release --features capi
	@mkdir -p $(DEMO_LIB_DIR)
	@for i in 1 2 3; do \
		cp $(DEMO_RELEASE_LIB) $(DEMO_LIB_DIR)/liblitepool.a.tmp && \
		if nm -g --defined-only $(DEMO_LIB_DIR)/liblitepool.a.tmp 2>/dev/null | grep -q ' T litepool_session_open$$'; then \
			mv $(DEMO_LIB_DIR)/liblitepool.a.tmp $(DEMO_LIB_DIR)/liblitepool.a; exit 0; \
		fi; \
		echo "$(DEMO_RELEASE_LIB) lacks the C ABI (rebuilt without feature capi concurrently?): rebuilding"; \
		$(CARGO) build --locked --release --features capi || exit 1; \
	done; echo "could not get a static library with the C ABI"; exit 1

demo-go-mattn: go-tools
	@mkdir -p $(DEMO_BIN)
	cd demo/go/mattn && CGO_ENABLED=1 $(GO) build -o $(DEMO_BIN)/go-mattn .

demo-go-litepool: go-tools demo-go-lib
	@mkdir -p $(DEMO_BIN)
	cd demo/go/litepool && CGO_ENABLED=1 CGO_LDFLAGS="-L$(DEMO_LIB_DIR)" $(GO) build -o $(DEMO_BIN)/go-litepool .

# The Rust builds take cargo's lock one after the other; the mattn build runs beside them.
demo-build:
	@$(MAKE) --no-print-directory -j3 python-build demo-go-litepool demo-go-mattn

demo-run:
	$(PY_BIN)/python demo/run.py --python $(PY_BIN)/python --go-bin $(DEMO_BIN)

test-demo: python-build
	$(PY_BIN)/python -m pytest -q -p no:cacheprovider demo/test_demo.py
