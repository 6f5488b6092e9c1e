#!/bin/sh
# Instruction counts of the hot paths under callgrind (repeatable on a noisy machine, where
# wall time is not). Each workload runs at two operation counts; the difference divided by
# the extra operations is the cost of one operation without setup or teardown, for the
# whole process (all threads) and per function (inclusive).
#
#   bench/profile.sh [OUT]     (make bench-profile; needs valgrind and the Python venv)
#   PROFILE_ONLY=rust bench/profile.sh [OUT]   (the Rust workloads only; no venv needed)
#
# The scan workload runs at SCAN_SMALL/SCAN_BIG scans of 10,000 rows (one operation = one scan).
#
# Caveat: callgrind runs one thread at a time, so a hand-off that spins waiting for the other
# thread spins until valgrind switches threads: the spin functions' counts are an artefact of
# the tool, reported separately, and left out of "work" (total minus spin and yield).
set -eu
out=${1:-target/bench}
mkdir -p "$out/callgrind"
command -v valgrind >/dev/null || {
	apt-get update -qq && apt-get install -y -qq valgrind
}
py=${PY:-.venv/bin/python}
small=${PROFILE_SMALL:-500}
big=${PROFILE_BIG:-2500}
scan_small=${SCAN_SMALL:-2}
scan_big=${SCAN_BIG:-6}

cargo bench --locked --bench profile --no-run 2>/dev/null
bin=$(ls -t target/release/deps/profile-* | grep -v '\.d$' | head -1)

run() { # name count command...
	name=$1 n=$2
	shift 2
	valgrind --tool=callgrind --callgrind-out-file="$out/callgrind/$name.$n" "$@" >/dev/null 2>&1
}
for w in litepool-point rusqlite-point litepool-one rusqlite-one litepool-insert rusqlite-insert; do
	for n in $small $big; do
		LITEPOOL_PROFILE=$w LITEPOOL_PROFILE_ITERS=$n run "rust-$w" "$n" "$bin"
	done
done
for w in litepool-scan rusqlite-scan; do
	for n in $scan_small $scan_big; do
		LITEPOOL_PROFILE=$w LITEPOOL_PROFILE_ITERS=$n run "scan-$w" "$n" "$bin"
	done
done
if [ "${PROFILE_ONLY:-}" != rust ]; then
	for m in sqlite3 litepool; do
		for n in $small $big; do
			run "py-$m-point" "$n" "$py" bench/python/profile_point.py "$m" "$n"
		done
	done
fi
{
	python3 bench/callgrind_diff.py "$out/callgrind" "$small" "$big"
	python3 bench/callgrind_diff.py "$out/callgrind" "$scan_small" "$scan_big"
} | tee "$out/profile.md"
