# The Python host: build the extension into a virtualenv, run pytest and mypy's stubtest.
# Needs only python3 (+ pip) and cargo; everything else is installed into $(PY_VENV).

PYTHON ?= python3
PY_VENV ?= .venv
PY_BIN := $(PY_VENV)/bin
# aiosqlite: the peer litepool.aio is checked (tests) and measured (bench-aio) against.
PY_PINS := maturin==1.9.6 pytest==8.3.4 mypy==1.13.0 aiosqlite==0.22.1

HOST_TESTS += test-python

.PHONY: test-python bench-python bench-aio python-venv python-build python-testsuite

# CPython's own Lib/test/test_sqlite3 run on litepool (tests/python/cpython_suite.py): the
# count of passing tests may not drop below this (Python 3.11's suite; the stdlib passes
# 430 of its 436, 6 skipped). python/README.md lists every test litepool does not pass.
CPYTHON_SQLITE3_FLOOR := 428

# `python3 -m venv` fails on Debian/Ubuntu without the python3-venv package (no
# ensurepip): install it when we can (root + apt), else fall back to virtualenv.
$(PY_VENV)/.pins: mk/python.mk
	@if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    ver=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	    apt-get install -y python3-venv "python$$ver-venv" || apt-get install -y python3-venv; \
	  fi; \
	fi
	@if [ ! -x $(PY_BIN)/python ]; then \
	  $(PYTHON) -m venv $(PY_VENV) 2>/dev/null || { rm -rf $(PY_VENV); \
	    $(PYTHON) -m pip install --user -q virtualenv && $(PYTHON) -m virtualenv -q $(PY_VENV); }; \
	fi
	$(PY_BIN)/python -m pip install -q --disable-pip-version-check $(PY_PINS)
	@touch $@

python-venv: $(PY_VENV)/.pins

python-build: python-venv check-tools
	cd $(CURDIR) && VIRTUAL_ENV=$(abspath $(PY_VENV)) PATH=$(abspath $(PY_BIN)):$$PATH \
	  $(PY_BIN)/maturin develop --release --locked -q

test-python: python-build python-testsuite
	$(PY_BIN)/python -m pytest -q -p no:cacheprovider tests/python
	$(PY_BIN)/python -m mypy.stubtest litepool --allowlist tests/python/stubtest-allowlist.txt
	$(PY_BIN)/python tests/python/cpython_suite.py litepool --floor $(CPYTHON_SQLITE3_FLOOR)

# CPython's test package (test.test_sqlite3, _testcapi): Debian and Ubuntu ship it apart from
# the interpreter, in libpython3.X-testsuite; install it when we can (root + apt).
python-testsuite: python-venv
	@if ! $(PY_BIN)/python -c 'import test.test_sqlite3, _testcapi' >/dev/null 2>&1; then \
	  ver=$$($(PY_BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y "libpython$$ver-testsuite" || \
	      { apt-get update && apt-get install -y "libpython$$ver-testsuite"; }; \
	  fi; \
	  $(PY_BIN)/python -c 'import test.test_sqlite3, _testcapi' || { \
	    echo "CPython's test package is missing: install libpython$$ver-testsuite"; exit 1; }; \
	fi

bench-python: python-build
	$(PY_BIN)/python bench/python/bench.py

# litepool.aio vs aiosqlite (installed by the pins), one process per side.
bench-aio: python-build
	$(PY_BIN)/python bench/python/bench_aio.py
