#!/bin/sh
# Instruction counts of the hot paths under callgrind (repeatable on a noisy machine, where
# wall time is not). Each workload runs at two operation counts; the difference divided by
# the extra operations is the cost of one operation without setup or teardown, for the
# whole process (all threads) and per function (inclusive).
#
#   bench/profile.sh [OUT]     (make bench-profile; needs valgrind and the Python venv)
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

cargo bench --locked --bench profile --no-run 2>/dev/null
bin=$(ls -t target/release/deps/profile-* | grep -v '\.d$' | head -1)

run() { # name count command...
	name=$1 n=$2
	shift 2
	valgrind --tool=callgrind --callgrind-out-file="$out/callgrind/$name.$n" "$@" >/dev/null 2>&1
}
for w in litepool-point rusqlite-point litepool-one rusqlite-one; do
	for n in $small $big; do
		LITEPOOL_PROFILE=$w LITEPOOL_PROFILE_ITERS=$n run "rust-$w" "$n" "$bin"
	done
done
for m in sqlite3 litepool; do
	for n in $small $big; do
		run "py-$m-point" "$n" "$py" bench/python/profile_point.py "$m" "$n"
	done
done
python3 bench/callgrind_diff.py "$out/callgrind" "$small" "$big" | tee "$out/profile.md"
