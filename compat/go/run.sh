#!/usr/bin/env bash
# make compat-go (mk/compat-go.mk): public Go projects' own database tests, on their own
# SQLite driver and on litepool, side by side (go/README.md, "Real programs").
#
#   compat/go/run.sh CHECKOUT WORKDIR
#
# Each project is fetched as an ordinary module through the Go module proxy and copied
# twice: as published (its own driver), and with the switch to litepool applied to its
# go.mod — the peer's replace line, plus the replace and require of litepool's Go module
# that a replaced module's own replace cannot supply. Nothing else changes. The two runs are
# separate binaries: the litepool copy links no other SQLite.
#
# It fails when a test fails on litepool but passes on the project's driver, unless the
# test is listed in KNOWN below with the documented reason.
set -euo pipefail

checkout=$1
work=$2
mkdir -p "$work"

# name | module@version | driver module | compat module dir | packages | env
projects=(
	"goose|github.com/pressly/goose/v3@v3.30.1|modernc.org/sqlite|go/compat/modernc|. ./database ./tests/gomigrations/...|"
	"sqlx|github.com/jmoiron/sqlx@v1.4.0|github.com/mattn/go-sqlite3|go/compat/mattn|.|SQLX_POSTGRES_DSN=skip SQLX_MYSQL_DSN=skip SQLX_SQLITE_DSN=@DB@"
)

# Tests that fail on litepool for a documented difference (go/README.md, "Differences").
declare -A KNOWN=(
	[sqlx/TestNamedQueries]="Prepare does not compile the SQL: an invalid statement fails when it runs"
	[sqlx/TestNamedContextQueries]="Prepare does not compile the SQL: an invalid statement fails when it runs"
)

# results NAME LOG: the "--- PASS/FAIL/SKIP: Test" lines of a verbose go test log, as
# "STATUS name".
results() { sed -n 's/^ *--- \(PASS\|FAIL\|SKIP\): \([^ ]*\).*/\1 \2/p' "$1"; }
count() { results "$1" | grep -c "^$2 " || true; }

status=0
summary=()
for p in "${projects[@]}"; do
	IFS='|' read -r name modver peer compatdir pkgs env <<<"$p"
	dir=$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || { echo "compat-go: could not download $modver"; exit 1; }
	for side in driver litepool; do
		rm -rf "${work:?}/$name/$side"
		mkdir -p "$work/$name"
		cp -r "$dir" "$work/$name/$side"
		chmod -R u+w "$work/$name/$side"
	done
	(cd "$work/$name/litepool" && go mod edit \
		-replace "$peer=$checkout/$compatdir" \
		-replace "github.com/litepool/litepool/go=$checkout/go" \
		-require "github.com/litepool/litepool/go@v0.0.0")
	echo "== $name ($modver): go.mod of the litepool run"
	diff "$work/$name/driver/go.mod" "$work/$name/litepool/go.mod" || true
	for side in driver litepool; do
		db="$work/$name/$side.db"
		rm -f "$db" "$db-wal" "$db-shm"
		echo "== $name on $side: go test -count=1 -v $pkgs"
		# shellcheck disable=SC2086 # env and pkgs are word lists
		(cd "$work/$name/$side" && env ${env//@DB@/$db} go test -mod=mod -count=1 -v $pkgs \
			>"$work/$name/$side.log" 2>&1) || true
		echo "   log: $work/$name/$side.log"
	done
	drv="$work/$name/driver.log" lp="$work/$name/litepool.log"
	summary+=("$(printf '%-6s %-28s %5s %5s %5s   %5s %5s %5s' "$name" "$peer" \
		"$(count "$drv" PASS)" "$(count "$drv" FAIL)" "$(count "$drv" SKIP)" \
		"$(count "$lp" PASS)" "$(count "$lp" FAIL)" "$(count "$lp" SKIP)")")
	while read -r test; do
		reason=${KNOWN[$name/$test]:-}
		if [ -n "$reason" ]; then
			echo "   $test fails on litepool (known: $reason)"
		else
			echo "   $test FAILS on litepool but passes on $peer"
			status=1
		fi
	done < <(comm -13 <(results "$drv" | sed -n 's/^FAIL //p' | sort) <(results "$lp" | sed -n 's/^FAIL //p' | sort))
	if [ "$(count "$drv" PASS)" -eq 0 ]; then
		echo "   no test passed on $peer: the run itself failed (see $drv)"
		status=1
	fi
done

echo
echo "Tests (and subtests) passed / failed / skipped:"
printf '%-6s %-28s %17s   %17s\n' project driver "its driver" litepool
printf '%-6s %-28s %5s %5s %5s   %5s %5s %5s\n' "" "" pass fail skip pass fail skip
printf '%s\n' "${summary[@]}"
exit $status
