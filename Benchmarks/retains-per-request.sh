#!/usr/bin/env bash
# Exact counts of the Swift runtime's retains, releases and object allocations (and libc's mallocs)
# per request of one workload, on a server build: figures the machine's noise does not move, unlike
# throughput or CPU time, for comparing two builds of the request path. Uses uprobes on libswiftCore
# and libc (perf, root), which slow every call:
# the rates it prints mean nothing, only the counts per request. The counts depend on how many
# requests each event-loop wake finds (NIO's costs are per read and write), so compare builds only
# under the same workload.
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
perf probe -q -x "$CORE" --add swift_allocObject 2>/dev/null || true
LIBC=$(ldd "$BIN" | grep -o '/[^ ]*libc.so.6')
perf probe -q -x "$LIBC" --add malloc 2>/dev/null || true

D=$(mktemp -d /tmp/learnstore-retains.XXXXXX)
trap 'kill $S 2>/dev/null; wait $S 2>/dev/null; rm -rf "$D"' EXIT
head -c 32 /dev/urandom | base64 > "$D/secret"
"$BIN" serve --port 0 --port-file "$D/port" --data-dir "$D/data" --jwt-secret-file "$D/secret" --metrics-port 0 \
  --fsync everysec --snapshot-interval 0 > "$D/server.log" 2>&1 & S=$!
for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.1; done
P=$(cat "$D/port")
"$BIN" bench --port "$P" --key-file "$D/secret" --tenants 10 --preload 1000000 --preload-only > /dev/null
# A first run builds what the tenants build lazily on their first reads: not counted.
"$BIN" bench --port "$P" --key-file "$D/secret" --tenants 10 -c 50 --duration 3 "${WORKLOAD[@]}" > /dev/null 2>&1
# The counted window: 2 s in the middle of a run, once the load tool has found the records and
# measures (its listing of them is not the workload); the server's own request count (INFO) over
# the same window divides the counts.
ADMIN=$("$BIN" token mint --tenant tenant_00000 --jwt-secret-file "$D/secret" --scope "records:read admin")
served() { "$BIN" info --port "$P" --token "$ADMIN" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["requests"].values()))'; }
"$BIN" bench --port "$P" --key-file "$D/secret" --tenants 10 -c 50 --duration 8 "${WORKLOAD[@]}" > /dev/null 2> "$D/bench.err" & L=$!
for _ in $(seq 300); do grep -q "ops/s" "$D/bench.err" && break; sleep 0.1; done
before=$(served)
perf stat -e probe_libswiftCore:swift_retain,probe_libswiftCore:swift_release,probe_libswiftCore:swift_allocObject,probe_libc:malloc -p "$S" -o "$D/counts" -- sleep 2
after=$(served)
wait $L || true
python3 - "$before" "$after" "$D/counts" <<'PY'
import re, sys
requests = int(sys.argv[2]) - int(sys.argv[1])
text = open(sys.argv[3]).read()
def count(name):
    return int(re.search(r"([\d,]+)\s+probe_\w+:" + name + r"\b", text).group(1).replace(",", ""))
print("requests %d  per request: retains %.1f  releases %.1f  Swift objects allocated %.2f  mallocs %.2f" % (
    requests, count("swift_retain") / requests, count("swift_release") / requests, count("swift_allocObject") / requests, count("malloc") / requests))
PY
