#!/bin/sh
# Prints the machine and tool versions the benchmark figures come from, as Markdown.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- CPU: ${cpu:-unknown}; $(nproc) logical CPUs online; $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
echo "- kernel: $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- rustc: $(rustc --version 2>/dev/null || echo none); Go: $(go env GOVERSION 2>/dev/null || echo none); Python: $(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null || echo none)"
echo "- litepool: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)'); bundled SQLite $(awk '/name = "libsqlite3-sys"/ {getline; gsub(/[^0-9.]/, ""); print "(libsqlite3-sys " $0 ")"}' Cargo.lock)"
