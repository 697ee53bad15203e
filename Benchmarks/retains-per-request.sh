#!/usr/bin/env bash
# Exact counts of the Swift runtime's retains and releases per request of one workload, on a server
# build: a figure the machine's noise does not move, unlike throughput or CPU time, for comparing
# two builds of the request path. Uses uprobes on libswiftCore (perf, root), which slow every call:
# the rates it prints mean nothing, only the counts per request.
#
#   Benchmarks/retains-per-request.sh [BINARY] [bench arguments...]
#   Benchmarks/retains-per-request.sh .build/release/learnstore --workload get -P 1
#
# Default workload: unpipelined gets on 50 connections over 10 tenants of 100,000 records each.
set -euo pipefail
BIN=${1:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/learnstore}
shift || true
WORKLOAD=("$@")
[ ${#WORKLOAD[@]} -gt 0 ] || WORKLOAD=(--workload get -P 1)
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 2; }
CORE=$(ldd "$BIN" | grep -o '/[^ ]*libswiftCore.so')
perf probe -q -x "$CORE" --add swift_retain 2>/dev/null || true
perf probe -q -x "$CORE" --add swift_release 2>/dev/null || true

D=$(mktemp -d /tmp/learnstore-retains.XXXXXX)
trap 'kill $S 2>/dev/null; wait $S 2>/dev/null; rm -rf "$D"' EXIT
head -c 32 /dev/urandom | base64 > "$D/secret"
"$BIN" serve --port 0 --port-file "$D/port" --data-dir "$D/data" --jwt-secret-file "$D/secret" --metrics-port 0 \
  --fsync everysec --snapshot-interval 0 > "$D/server.log" 2>&1 & S=$!
for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.1; done
P=$(cat "$D/port")
"$BIN" bench --port "$P" --key-file "$D/secret" --tenants 10 --preload 1000000 --preload-only > /dev/null
# A first run builds what the tenants build lazily on their first reads: not counted.
"$BIN" bench --port "$P" --key-file "$D/secret" --tenants 10 -c 50 --duration 3 "${WORKLOAD[@]}" > /dev/null
perf stat -e probe_libswiftCore:swift_retain,probe_libswiftCore:swift_release -p "$S" -o "$D/counts" & PS=$!
sleep 0.5
"$BIN" bench --port "$P" --key-file "$D/secret" --tenants 10 -c 50 --duration 3 --json "$D/run.json" "${WORKLOAD[@]}" > /dev/null
sleep 0.3
kill -INT $PS; wait $PS || true
python3 - "$D/run.json" "$D/counts" <<'PY'
import json, re, sys
run = json.load(open(sys.argv[1]))
requests = run["ops"]
text = open(sys.argv[2]).read()
def count(name):
    return int(re.search(r"([\d,]+)\s+probe_libswiftCore:" + name, text).group(1).replace(",", ""))
print("requests %d  retains per request %.1f  releases per request %.1f" % (requests, count("swift_retain") / requests, count("swift_release") / requests))
PY
