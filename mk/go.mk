# The Go host (issue 6): the module in go/ links the crate's static library through cgo.
#
#   make test-go   build the static library (feature capi), then go vet and go test -race
#
# The library is copied to target/go/ right after it is built, so a concurrent cargo build
# of the same target dir without feature capi cannot swap it underneath the Go link; the
# copy is checked for the C ABI's symbols. CGO_LDFLAGS puts target/go first on the library
# path (go/capi.go links -l:liblitepool.a; its own fallback is target/release).

GO ?= go
GO_LIB_DIR := $(CURDIR)/target/go
GO_ENV := CGO_ENABLED=1 CGO_LDFLAGS="-L$(GO_LIB_DIR)"
GO_TEST_FLAGS ?= -race -count=1 -timeout 600s

HOST_TESTS += test-go

.PHONY: test-go go-lib go-tools

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
