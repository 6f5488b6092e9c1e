# The C ABI (issue 5): build the static library with feature `capi`, check that the
# committed header is current, and run the C test program under valgrind.
#
#   make test-c   build, check the header, run bindings/tests/test_capi.c under valgrind
#   make header   regenerate bindings/litepool.h with cbindgen
#
# Link flags: a Rust staticlib needs the system libraries the Rust std uses. They are
# what `cargo rustc --features capi --crate-type staticlib -- --print native-static-libs`
# prints on Linux/glibc; hard-coded here so the build does not depend on parsing it.

CBINDGEN_VERSION := 0.29.2
CBINDGEN ?= $(shell command -v cbindgen 2>/dev/null || echo $(HOME)/.cargo/bin/cbindgen)
CAPI_LIB := target/debug/liblitepool.a
CAPI_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
CAPI_CFLAGS := -std=c11 -g -O1 -Wall -Wextra -Werror -pthread -Ibindings
CAPI_TEST_BIN := target/capi/test_capi
VALGRIND ?= valgrind
# --fair-sched=yes: valgrind runs one thread at a time, and its default lock lets a busy thread
# (a connection thread running a long statement) keep it for minutes, starving the thread that
# is meant to interrupt it.
VALGRIND_FLAGS := --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --track-origins=yes --fair-sched=yes

HOST_TESTS += test-c

.PHONY: test-c header capi-lib capi-tools header-check

capi-tools: check-tools
	@if ! "$(CBINDGEN)" --version 2>/dev/null | grep -q "$(CBINDGEN_VERSION)"; then \
		echo "installing cbindgen $(CBINDGEN_VERSION)"; \
		$(CARGO) install cbindgen --locked --version $(CBINDGEN_VERSION); \
	fi
	@command -v $(VALGRIND) >/dev/null || { \
		echo "installing valgrind"; \
		(apt-get update -qq && apt-get install -y -qq valgrind) || \
		(sudo apt-get update -qq && sudo apt-get install -y -qq valgrind); }
	@command -v gcc >/dev/null || { echo "gcc not found: install a C compiler"; exit 1; }

capi-lib: check-tools
	$(CARGO) build --locked --features capi

header: capi-tools
	"$(CBINDGEN)" --quiet --config cbindgen.toml --lang c --output bindings/litepool.h src/ffi/mod.rs
	@echo "wrote bindings/litepool.h"

header-check: capi-tools
	@mkdir -p target/capi
	@"$(CBINDGEN)" --quiet --config cbindgen.toml --lang c --output target/capi/litepool.h src/ffi/mod.rs
	@diff -u bindings/litepool.h target/capi/litepool.h >target/capi/header.diff || { \
		cat target/capi/header.diff; \
		echo "bindings/litepool.h is stale: run make header"; exit 1; }
	@echo "bindings/litepool.h is current"

# The test prints "N passed, M failed" last; valgrind's report goes to a log whose summary is
# shown before that line. Either failing (a failed check, a memory error, a definite or
# indirect leak) fails the target.
test-c: capi-tools header-check capi-lib
	@mkdir -p target/capi
	gcc $(CAPI_CFLAGS) -o $(CAPI_TEST_BIN) bindings/tests/test_capi.c $(CAPI_LIB) $(CAPI_LIBS)
	@rc=0; $(VALGRIND) $(VALGRIND_FLAGS) --log-file=target/capi/valgrind.log $(CAPI_TEST_BIN) \
		>target/capi/test.out || rc=$$?; \
	grep -v ' passed, .* failed$$' target/capi/test.out; \
	grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks' target/capi/valgrind.log \
		| sed 's/^==[0-9]*== */valgrind: /'; \
	if [ $$rc -ne 0 ]; then cat target/capi/valgrind.log; echo "test-c: exit status $$rc"; fi; \
	grep ' passed, .* failed$$' target/capi/test.out || echo "0 passed, 1 failed"; \
	exit $$rc
