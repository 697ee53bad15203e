#!/usr/bin/env bash
# A/B of the bulk load (1M records over 50 connections, `learnstore bench --preload-only`, WAL on with
# fsync everysec) for two release builds, alternating builds so that machine noise hits both alike.
# Prints wall seconds and the server's CPU seconds (user+system from /proc) per run, then how long a
# first list query in each of the 10 tenants took (it waits for any index work the load deferred)
# and the server CPU including it.
#
#   git worktree add /tmp/oldtree <commit> && (cd /tmp/oldtree && swift build -c release --product learnstore)
#   OLD=/tmp/oldtree/.build/release/learnstore NEW=.build/release/learnstore REPS=3 Benchmarks/bulk-load-ab.sh
set -u
OLD=${OLD:-/tmp/oldtree/.build/release/learnstore}
NEW=${NEW:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/learnstore}
REPS=${REPS:-3}; RECORDS=${RECORDS:-1000000}
D=${D:-/tmp/lsbulk}; mkdir -p $D; [ -f $D/secret ] || head -c 32 /dev/urandom | base64 > $D/secret
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
for rep in $(seq $REPS); do for build in old new; do
  B=$OLD; [ $build = new ] && B=$NEW
  rm -rf $D/data
  $B serve --port 17811 --data-dir $D/data --jwt-secret-file $D/secret --fsync everysec --snapshot-interval 0 > $D/server.log 2>&1 & S=$!
  T=$($B token mint --tenant tenant_00000 --jwt-secret-file $D/secret)
  for i in $(seq 200); do $B ping --port 17811 --token "$T" >/dev/null 2>&1 && break; sleep 0.1; done
  before=$(ticks $S)
  out=$($B bench --port 17811 --key-file $D/secret -c 50 --preload $RECORDS --preload-only 2>&1 | grep "^preload ")
  after=$(ticks $S)
  started=$(date +%s.%N)
  for t in $(seq 0 9); do
    $B records list --port 17811 --token "$($B token mint --tenant tenant_0000$t --jwt-secret-file $D/secret)" --limit 1 >/dev/null
  done
  listed=$(date +%s.%N); final=$(ticks $S)
  cpu() { echo "scale=2; ($1 - $before) / $(getconf CLK_TCK)" | bc; }
  echo "rep $rep $build: $out, server CPU $(cpu $after) s; first list in 10 tenants $(echo "$listed - $started" | bc | cut -c1-5) s, server CPU then $(cpu $final) s"
  kill $S; wait $S
done; done
