#!/usr/bin/env bash
# A/B of two release builds on identical data: every server starts from a copy of the same 1M-record
# data directory; reads run before writes. Two repetitions, 50 connections, 4 s per workload.
#
#   git worktree add /tmp/oldtree <commit> && (cd /tmp/oldtree && swift build -c release --product learnstore)
#   swift build -c release
#   OLD=/tmp/oldtree/.build/release/learnstore NEW=.build/release/learnstore Benchmarks/ab-builds.sh
#
# The first run creates the data template in $D/template (default /tmp/lsab) with NEW's bulk load.
# Optional: REPS (2), SERVE_ARGS (e.g. "--fsync everysec"), BENCH_ARGS (e.g. "--threads 1"),
# WORKLOADS (';'-separated `learnstore bench` arguments, e.g. "--workload create -P 16;--workload get -P 1").
set -u
OLD=${OLD:-/tmp/oldtree/.build/release/learnstore}
NEW=${NEW:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/learnstore}
D=${D:-/tmp/lsab}; mkdir -p $D; [ -f $D/secret ] || head -c 32 /dev/urandom | base64 > $D/secret
if [ ! -d $D/template ]; then
  rm -rf $D/template
  $NEW serve --port 17810 --data-dir $D/template --jwt-secret-file $D/secret > $D/server.log 2>&1 & S=$!; sleep 1.5
  $NEW bench --port 17810 --key-file $D/secret --preload 1000000 --preload-only 2>&1 | grep "preload "
  kill $S; wait $S
fi
T=$($NEW token mint --tenant tenant_00000 --jwt-secret-file $D/secret)
REPS=${REPS:-2}; SERVE_ARGS=${SERVE_ARGS:-}; BENCH_ARGS=${BENCH_ARGS:-}
WORKLOADS=${WORKLOADS:-"--workload get -P 1;--workload get -P 16;--workload list-by-person -P 16;--workload get -P 16 --tenants 1;--workload create -P 16;--workload create -P 16 --tenants 1"}
IFS=';' read -ra WORKLOAD_LIST <<< "$WORKLOADS"
for rep in $(seq "$REPS"); do for build in old new; do
  B=$OLD; [ $build = new ] && B=$NEW
  rm -rf $D/data; cp -a $D/template $D/data
  $B serve --port 17810 --data-dir $D/data --jwt-secret-file $D/secret --snapshot-interval 0 $SERVE_ARGS > $D/server.log 2>&1 & S=$!
  for i in $(seq 200); do $B records list --port 17810 --token "$T" --limit 1 >/dev/null 2>&1 && break; sleep 0.1; done
  for args in "${WORKLOAD_LIST[@]}"; do
    out=$($B bench --port 17810 --key-file $D/secret -c 50 $args $BENCH_ARGS --duration 4 --server-pid $S 2>&1)
    tp=$(echo "$out" | awk '/^throughput/{print $2}'); lat=$(echo "$out" | awk '/^latency ms/{for(i=1;i<=NF;i++) if($i=="p99.9"||$i=="max") printf "%s %s ", $i, $(i+1)}'); cpu=$(echo "$out" | awk '/server CPU/{print $3}')
    [ -z "$tp" ] && tp="FAILED: $(echo "$out" | tail -1)"
    echo "rep $rep $build $args: $tp ops/s, cpu $cpu us/op, $lat"
  done
  kill $S; wait $S
done; done
