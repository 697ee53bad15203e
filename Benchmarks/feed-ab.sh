#!/usr/bin/env bash
# The change feed under create load, two release builds alternating: each start is a fresh server
# (fsync everysec, no periodic snapshots) and one `learnstore bench` of 8 s (create, P=16,
# 50 connections, 10 tenants) with no subscribers and then with ten; prints throughput, delivery
# latency (a write's reply to its change reaching a subscriber) and the server's CPU per create.
#
#   OLD=/tmp/old/learnstore NEW=.build/release/learnstore Benchmarks/feed-ab.sh
#
# Optional: ROUNDS (3), SUBSCRIBERS (10), D (work directory, /tmp/lsfeed), PORT (17820).
set -u
OLD=${OLD:?set OLD to the learnstore binary to compare against}
NEW=${NEW:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/learnstore}
D=${D:-/tmp/lsfeed}; PORT=${PORT:-17820}; ROUNDS=${ROUNDS:-3}; SUBSCRIBERS=${SUBSCRIBERS:-10}
mkdir -p "$D"; [ -f "$D/secret" ] || head -c 32 /dev/urandom | base64 > "$D/secret"
run() {  # build-name binary subscribers
  rm -rf "$D/data"
  "$2" serve --port "$PORT" --data-dir "$D/data" --jwt-secret-file "$D/secret" --fsync everysec --snapshot-interval 0 > "$D/server.log" 2>&1 & local S=$!
  local T; T=$("$2" token mint --tenant tenant_00000 --jwt-secret-file "$D/secret")
  for _ in $(seq 200); do "$2" records list --port "$PORT" --token "$T" --limit 1 > /dev/null 2>&1 && break; sleep 0.1; done
  local out; out=$("$2" bench --port "$PORT" --key-file "$D/secret" --workload create -c 50 -P 16 --duration 8 --tenants 10 --subscribers "$3" --server-pid $S 2>&1)
  local tp cpu feed
  tp=$(echo "$out" | awk '/^throughput/{print $2}')
  cpu=$(echo "$out" | awk '/server CPU/{print $3}')
  feed=$(echo "$out" | grep '^feed' | sed 's/.*delivery ms //')
  echo "$1 subscribers=$3: ${tp:-FAILED} creates/s, server ${cpu:-?} µs/create${feed:+, delivery ms $feed}"
  kill $S; wait $S
}
for round in $(seq "$ROUNDS"); do
  for build in old new; do
    B=$OLD; [ $build = new ] && B=$NEW
    run "round $round $build" "$B" 0
    run "round $round $build" "$B" "$SUBSCRIBERS"
  done
done
