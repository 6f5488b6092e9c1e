#!/bin/sh
# Runs a command, showing its output and saving it to a file, and exits with the command's
# status (a plain `cmd | tee file` would exit with tee's).
#   bench/run_logged.sh FILE COMMAND [ARG...]
out=$1
shift
{
	"$@"
	echo $? >"$out.rc"
} | tee "$out"
rc=$(cat "$out.rc")
rm -f "$out.rc"
exit "$rc"
