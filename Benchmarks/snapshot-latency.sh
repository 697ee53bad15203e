#!/usr/bin/env bash
# p99 of a read-mostly mix with no snapshots vs with every tenant snapshotted every second
# (issue 5 target: p99 during a snapshot <= 1.5x idle). Same data, same binary, server restarted between.
set -u
B="${B:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/learnstore}"
D="${D:-/tmp/learnstore-snapshot-latency}"; rm -rf "$D"; mkdir -p "$D"
head -c 32 /dev/urandom | base64 > $D/secret
start() { $B serve --port 17992 --metrics-port 0 --data-dir $D/data --jwt-secret-file $D/secret --fsync always "$@" > $D/server.log 2>&1 & SPID=$!;
  for i in $(seq 100); do $B ping --port 17992 --token "$($B token mint --tenant tenant_00000 --jwt-secret-file $D/secret)" >/dev/null 2>&1 && break; sleep 0.1; done; }
start --snapshot-interval 0
$B bench --port 17992 --key-file $D/secret --preload 1000000 --preload-only -c 50 > /dev/null 2>&1
kill $SPID; wait $SPID
for mode in "none:--snapshot-interval 0" "every-second:--snapshot-interval 1"; do
  name=${mode%%:*}; args=${mode#*:}
  start $args
  sleep 2
  for P in 1 16; do
    $B bench --port 17992 --key-file $D/secret --mix get=95,create=5 -c 50 -P $P --duration 8 --server-pid $SPID 2>&1 | grep -E "throughput|latency ms" | sed "s/^/snapshots=$name P=$P /"
  done
  echo "snapshots=$name rounds: $(grep -c 'snapshot round' $D/server.log)"
  kill $SPID; wait $SPID
done
