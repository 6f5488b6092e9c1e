# The Go host (issue 6): the module in go/ links the crate's static library through cgo.
#
#   make test-go   build the static library (feature capi), then go vet and go test -race,
#                  then link go/internal/staticcheck fully statically and run it
#
# The library is copied to target/go/ right after it is built, so a concurrent cargo build
# of the same target dir without feature capi cannot swap it underneath the Go link; the
# copy is checked for the C ABI's symbols. CGO_LDFLAGS puts target/go first on the library
# path (go/capi.go links -l:liblitepool.a; its own fallback is target/release).

GO ?= go
GO_LIB_DIR := $(CURDIR)/target/go
GO_ENV := CGO_ENABLED=1 CGO_LDFLAGS="-L$(GO_LIB_DIR)"
GO_TEST_FLAGS ?= -race -count=1 -timeout 600s
# The documented recipe for a fully static binary (go/README.md, "Static binaries").
GO_STATIC_LDFLAGS := -linkmode external -extldflags -static
GO_STATIC_BIN := $(GO_LIB_DIR)/staticcheck

HOST_TESTS += test-go

.PHONY: test-go test-go-static go-lib go-tools

go-tools:
	@command -v $(GO) >/dev/null || { echo "go not found: install Go 1.23 or later (https://go.dev/dl/)"; exit 1; }
	@command -v gcc >/dev/null || command -v cc >/dev/null || { echo "no C compiler: cgo needs gcc"; exit 1; }

go-lib: capi-lib
	@mkdir -p $(GO_LIB_DIR)
	@for i in 1 2 3; do \
		cp $(CAPI_LIB) $(GO_LIB_DIR)/liblitepool.a.tmp && \
		if nm -g --defined-only $(GO_LIB_DIR)/liblitepool.a.tmp 2>/dev/null | grep -q ' T litepool_session_open$$'; then \
			mv $(GO_LIB_DIR)/liblitepool.a.tmp $(GO_LIB_DIR)/liblitepool.a; exit 0; \
		fi; \
		echo "$(CAPI_LIB) lacks the C ABI (rebuilt without feature capi concurrently?): rebuilding"; \
		$(CARGO) build --locked --features capi || exit 1; \
	done; echo "could not get a static library with the C ABI"; exit 1

test-go: go-tools go-lib
	cd go && $(GO_ENV) $(GO) vet ./...
	cd go && $(GO_ENV) $(GO) test $(GO_TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory test-go-static

# glibc's linker warns that getaddrinfo, getpwuid_r and dlopen (in the Rust std and SQLite's
# load_extension, which litepool never calls) need the build's glibc at run time; the rest
# of the link output is shown.
test-go-static: go-tools go-lib
	@command -v file >/dev/null || { echo "installing file"; \
		(apt-get update -qq && apt-get install -y -qq file) || (sudo apt-get update -qq && sudo apt-get install -y -qq file); }
	@rm -f $(GO_STATIC_BIN)
	cd go && $(GO_ENV) $(GO) build -ldflags '$(GO_STATIC_LDFLAGS)' -o $(GO_STATIC_BIN) ./internal/staticcheck 2>&1 \
		| grep -v -e "statically linked applications requires at runtime" -e "^/usr/bin/ld: .*: in function" || true
	@test -x $(GO_STATIC_BIN) || { echo "test-go-static: the static link failed"; exit 1; }
	@file $(GO_STATIC_BIN) | grep -q 'statically linked' || { file $(GO_STATIC_BIN); echo "test-go-static: not statically linked"; exit 1; }
	@if ldd $(GO_STATIC_BIN) >/dev/null 2>&1; then ldd $(GO_STATIC_BIN); echo "test-go-static: ldd lists shared libraries"; exit 1; fi
	@echo "$(GO_STATIC_BIN): statically linked (file, ldd: not a dynamic executable)"
	$(GO_STATIC_BIN) $(GO_LIB_DIR)/staticcheck.db
