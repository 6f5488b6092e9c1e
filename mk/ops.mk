# Operations (issue 21): metrics collectors for the hosts' Prometheus clients, and a real
# Litestream run.
#
#   make test-prom          go test of go/prom (a client_golang Collector, its own module);
#                           the Python collector's tests run in test-python
#   make demo-replication   a short scene: write, SIGKILL, restore elsewhere, count rows
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
REPLICATION_OUT := $(CURDIR)/target/replication
REPLICATION_GOAPP := $(REPLICATION_OUT)/goapp
REPLICATION_ROUNDS ?= 4

HOST_TESTS += test-prom

.PHONY: test-prom ops-py-deps litestream replication-goapp test-replication demo-replication

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

# The Go application links the debug library of mk/go.mk's go-lib, as go test does.
replication-goapp: go-tools go-lib
	@mkdir -p $(REPLICATION_OUT)
	cd tests/replication/goapp && $(GO_ENV) $(GO) build -o $(REPLICATION_GOAPP) .

# 4 scenarios (Python and Go; checkpoint=external and timed) x REPLICATION_ROUNDS rounds of
# 3-6 s: about 3 minutes. Only checkpoint=external must pass; timed is run to show what
# happens when litepool checkpoints behind Litestream's back (RELIABILITY.md).
test-replication: litestream python-build replication-goapp
	$(PY_BIN)/python tests/replication/run.py --litestream $(LITESTREAM) --python $(PY_BIN)/python \
		--goapp $(REPLICATION_GOAPP) --rounds $(REPLICATION_ROUNDS) --out $(REPLICATION_OUT) \
		--json $(REPLICATION_OUT)/results.json

soak: test-replication

# A short scene (~15 s): write, SIGKILL, restore elsewhere, count rows.
demo-replication: litestream python-build
	$(PY_BIN)/python tests/replication/demo.py --litestream $(LITESTREAM) --python $(PY_BIN)/python \
		--out $(REPLICATION_OUT)
