# Operations (issue 21): metrics collectors for the hosts' Prometheus clients, and a real
# Litestream run.
#
#   make test-prom          go test of go/prom (a client_golang Collector, its own module);
#                           the Python collector's tests run in test-python
#   make test-replication   Litestream v$(LITESTREAM_VERSION) replicating a database that a
#                           Python and a Go process write through litepool, both killed
#                           with SIGKILL at random moments (tests/replication/README.md)
#
# prometheus_client is installed into the venv beside mk/python.mk's pins (a line of its
# own, so the two files do not collide); Litestream is built from the Go module proxy into
# $(OPS_BIN).

# mk/python.mk is read after this file: its venv's default is needed here already.
PY_VENV ?= .venv
PROMETHEUS_CLIENT_PIN := prometheus_client==0.21.1
LITESTREAM_VERSION := 0.5.18
OPS_BIN := $(CURDIR)/target/ops/bin
LITESTREAM := $(OPS_BIN)/litestream
REPLICATION_SECONDS ?= 60
REPLICATION_ROUNDS ?= 4

HOST_TESTS += test-prom

.PHONY: test-prom ops-py-deps litestream test-replication demo-replication

$(PY_VENV)/.ops-pins: $(PY_VENV)/.pins mk/ops.mk
	$(PY_BIN)/python -m pip install -q --disable-pip-version-check $(PROMETHEUS_CLIENT_PIN)
	@touch $@

ops-py-deps: $(PY_VENV)/.ops-pins

# tests/python/test_prometheus.py imports prometheus_client.
test-python: ops-py-deps

test-prom: go-tools go-lib
	cd go/prom && $(GO_ENV) $(GO) vet ./...
	cd go/prom && $(GO_ENV) $(GO) test -count=1 -timeout 300s ./...

litestream: go-tools
	@if ! "$(LITESTREAM)" version 2>/dev/null | grep -qx "v$(LITESTREAM_VERSION)"; then \
		echo "installing litestream v$(LITESTREAM_VERSION) into $(OPS_BIN)"; \
		mkdir -p $(OPS_BIN) && GOBIN=$(OPS_BIN) CGO_ENABLED=1 \
			$(GO) install github.com/benbjohnson/litestream/cmd/litestream@v$(LITESTREAM_VERSION); \
	fi
