# Reliability (issue 9); the table of tests and results is RELIABILITY.md.
#
# make test runs the short versions by itself: cargo test runs tests/crash.rs, fdlimit.rs,
# diskfull.rs, faults.rs, corrupt.rs and security.rs; go test runs the Go fuzz targets' seed
# corpora. The long versions are here:
#
#   make soak    crash test with 50 rounds; 64 Python threads and 1,000
#                goroutines of mixed work for SOAK_SECONDS (60) each
#   make fuzz    the cargo-fuzz targets (C ABI call sequences, parameter binding) and the Go
#                fuzz targets (DSN parsing, argument conversion), FUZZ_SECONDS (600) each;
#                installs nightly Rust's cargo-fuzz if missing. Findings stay in
#                fuzz/artifacts/ and go/testdata/fuzz/ (which go test then runs as seeds).
#   make tsan    the Rust concurrency tests under ThreadSanitizer (nightly, rebuilds std);
#                tests/tsan.supp holds the suppressions for SQLite's lock-free WAL index

SOAK_SECONDS ?= 60
FUZZ_SECONDS ?= 600
CARGO_FUZZ_VERSION := 0.13.2
TSAN_TARGET ?= x86_64-unknown-linux-gnu

.PHONY: soak fuzz fuzz-tools fuzz-rust fuzz-go tsan

soak: check-tools python-build go-lib
	LITEPOOL_CRASH_ROUNDS=50 $(CARGO) test --locked --test crash -- --nocapture
	$(PY_BIN)/python tests/soak/soak.py --threads 64 --seconds $(SOAK_SECONDS)
	cd go && $(GO_ENV) LITEPOOL_SOAK_SECONDS=$(SOAK_SECONDS) $(GO) test -count=1 -run '^TestSoak$$' \
		-timeout 900s -v .

fuzz-tools: check-tools
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@$(CARGO) +nightly fuzz --version 2>/dev/null | grep -q "$(CARGO_FUZZ_VERSION)" || \
		$(CARGO) +nightly install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)

fuzz-rust: fuzz-tools
	$(CARGO) +nightly fuzz run capi_calls -- -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
	$(CARGO) +nightly fuzz run bind_params -- -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -print_final_stats=1

fuzz-go: go-tools go-lib
	cd go && $(GO_ENV) $(GO) test -run '^$$' -fuzz '^FuzzParseDSN$$' -fuzztime $(FUZZ_SECONDS)s .
	cd go && $(GO_ENV) $(GO) test -run '^$$' -fuzz '^FuzzArgumentRoundTrip$$' -fuzztime $(FUZZ_SECONDS)s .

fuzz: fuzz-rust fuzz-go

# Instrumented std (-Zbuild-std) needs the rust-src component of nightly.
tsan: check-tools
	@rustup component list --toolchain nightly --installed | grep -q rust-src || \
		rustup component add rust-src --toolchain nightly
	RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
		TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		$(CARGO) +nightly test -Zbuild-std --target $(TSAN_TARGET) --target-dir target/tsan \
		--test sessions --test pool --test crash
