# Go drop-in modules (issue 20): go/compat/modernc stands in for modernc.org/sqlite and
# go/compat/mattn for github.com/mattn/go-sqlite3 (go/README.md, "Switching from modernc or
# go-sqlite3").
#
#   make test-go-compat   (in make test) vet and test both modules on litepool
#   make compat-go        (in make compat) run the modules' peer tests on modernc and
#                         go-sqlite3 themselves, then the database tests of goose (modernc)
#                         and sqlx (go-sqlite3) on their own driver and on litepool, side by
#                         side (compat/go/run.sh)
#
# The peer tests (peer_test.go) use only the peer's API; running them on the peer checks
# that what they expect is what the peer does. Each peer run is its own module and binary:
# no binary links litepool and another SQLite.

GO_COMPAT_MODULES := go/compat/modernc go/compat/mattn
COMPAT_GO_DIR := $(CURDIR)/target/compat-go
COMPAT_GO_MODERNC := modernc.org/sqlite@v1.63.0
COMPAT_GO_MATTN := github.com/mattn/go-sqlite3@v1.14.53

HOST_TESTS += test-go-compat
COMPAT_TARGETS += compat-go

.PHONY: test-go-compat compat-go compat-go-peers

test-go-compat: go-tools go-lib
	@for m in $(GO_COMPAT_MODULES); do \
		echo "cd $$m && go vet ./... && go test $(GO_TEST_FLAGS) ./..."; \
		(cd $$m && $(GO_ENV) $(GO) vet ./... && $(GO_ENV) $(GO) test $(GO_TEST_FLAGS) ./...) || exit 1; \
	done

# peer_test.go of each module, in a module of its own that requires the real peer (and
# litepool's module only for go/compat/compattest, which does not import litepool).
compat-go-peers: go-tools
	@for spec in modernc=$(COMPAT_GO_MODERNC) mattn=$(COMPAT_GO_MATTN); do \
		name=$${spec%%=*}; modver=$${spec#*=}; dir=$(COMPAT_GO_DIR)/peer-$$name; \
		rm -rf $$dir && mkdir -p $$dir && cp go/compat/$$name/peer_test.go $$dir/ && \
		printf 'module peercheck\n\ngo 1.23\n\nrequire (\n\t%s %s\n\tgithub.com/litepool/litepool/go v0.0.0\n)\n\nreplace github.com/litepool/litepool/go => %s\n' \
			$${modver%@*} $${modver#*@} $(CURDIR)/go >$$dir/go.mod && \
		echo "== go/compat/$$name/peer_test.go on $$modver" && \
		(cd $$dir && CGO_ENABLED=1 $(GO) test -mod=mod -count=1 .) || exit 1; \
	done

compat-go: go-tools go-lib compat-go-peers
	$(GO_ENV) compat/go/run.sh $(CURDIR) $(COMPAT_GO_DIR)
