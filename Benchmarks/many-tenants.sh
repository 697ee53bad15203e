#!/usr/bin/env bash
# Memory and bulk-load rate with many small tenants, and how load and restart scale from 1M to 5M
# records (docs/PERFORMANCE.md, "Many tenants").
#
#   Benchmarks/many-tenants.sh [BINARY]        (default .build/release/learnstore; about 2 minutes)
#
# Each row starts a fresh server (fsync everysec, scheduled snapshots off) on an empty data
# directory, reads its RSS, preloads with `learnstore bench --preload-only`, waits 8 s (the server
# builds the deferred indexes and returns freed heap once writes pause) and reads the RSS again.
# The scale rows then stop the server gracefully and time its restart from the server's own
# "recovered" log line.
set -euo pipefail

BIN="${1:-.build/release/learnstore}"
[ -x "$BIN" ] || { echo "no binary at $BIN: build with swift build -c release" >&2; exit 2; }
WORK="$(mktemp -d /tmp/learnstore-many-tenants.XXXXXX)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

start_server() {
    rm -f "$WORK/port"
    "$BIN" serve --host 127.0.0.1 --port 0 --port-file "$WORK/port" --metrics-port 0 \
        --data-dir "$WORK/data" --jwt-secret-file "$WORK/key" --fsync everysec \
        --snapshot-interval 0 --snapshot-wal-bytes 0 >> "$WORK/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 300); do
        [ -s "$WORK/port" ] && return 0
        kill -0 "$PID" 2>/dev/null || { echo "the server exited; its log:" >&2; cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "the server did not write its port file in 30 s" >&2
    exit 1
}

stop_server() {
    kill -TERM "$PID"
    wait "$PID" || true
    PID=""
}

fresh() {
    rm -rf "$WORK/data" "$WORK/server.log"
    mkdir -p "$WORK/data"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/key"
    chmod 600 "$WORK/key"
}

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }

preload() {  # tenants records [bench options]; prints "records/s"
    local tenants=$1 records=$2
    shift 2
    "$BIN" bench --port "$(cat "$WORK/port")" --key-file "$WORK/key" --tenants "$tenants" \
        --preload "$records" --preload-only -c 50 "$@" 2>&1 | awk '/^preload / { gsub(/[(]/, "", $7); print $7 }'
}

echo "| tenants × records each | preload | load, records/s | RSS added | per tenant | per record |"
echo "|---|---|---:|---:|---:|---:|"
for row in "10000 10000 create" "10000 1000000 create" "10000 1000000 import"; do
    read -r tenants records via <<< "$row"
    fresh
    start_server
    sleep 0.5
    before=$(rss_kib)
    rate=$(preload "$tenants" "$records" --preload-via "$via")
    sleep 8
    added=$(( $(rss_kib) - before ))
    printf '| %s × %s | %s | %s | %d MiB | %d B | %d B |\n' "$tenants" "$((records / tenants))" "$via" "$rate" \
        "$((added / 1024))" "$((added * 1024 / tenants))" "$((added * 1024 / records))"
    stop_server
done

echo
echo "| records in 10 tenants | load, records/s | restart after a graceful stop, s | restart, µs per record |"
echo "|---|---:|---:|---:|"
for records in 1000000 5000000; do
    fresh
    start_server
    rate=$(preload 10 "$records")
    stop_server
    : > "$WORK/server.log"
    start_server
    for _ in $(seq 600); do grep -q " recovered" "$WORK/server.log" && break; sleep 0.1; done
    seconds=$(sed -n 's/.* seconds=\([0-9.]*\) .* recovered$/\1/p' "$WORK/server.log" | head -1)
    [ -n "$seconds" ] || { echo "no recovery line in the server's log" >&2; exit 1; }
    printf '| %s | %s | %.2f | %.2f |\n' "$records" "$rate" "$seconds" "$(echo "$seconds * 1000000 / $records" | bc -l)"
    stop_server
done
