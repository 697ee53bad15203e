#!/usr/bin/env bash
# The cost of the cluster path, in one run: creates at P=16 on 50 connections against one node, then
# against the three nodes and 3-member etcd of `scripts/cluster --etcd` (both replicas in sync), with
# fsync always, on this machine. Prints creates/s, p99 and server CPU per create (every `learnstore
# serve` process, and etcd's, from /proc). On two cores this measures cost, not scale.
# Usage: Benchmarks/cluster-cost.sh [SECONDS]   (default 10; uses ports 7878-7880, 7401-7403, 9464-9466,
# 12379/22379/32379 and 17990)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
scripts/ensure-deps.sh --etcd
swift build -c release --product learnstore
bin=.build/release/learnstore
work="$(mktemp -d /tmp/learnstore-cluster-cost-XXXXXX)"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/jwt"
ticks() { local total=0; for p in $(pgrep -f "$1" || true); do total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$total"; }
run() { # name, pattern of the server processes, bench arguments...
  local name="$1" pattern="$2"; shift 2
  local before after out ops
  before=$(( $(ticks "$pattern") + $(ticks "etcd --name") ))
  out=$("$bin" bench "$@" --key-file "$work/jwt" --workload create -c 50 -P 16 --duration "$seconds" --warmup 1 2>&1)
  after=$(( $(ticks "$pattern") + $(ticks "etcd --name") ))
  ops=$(echo "$out" | awk '/^throughput/ {gsub(/[()]/, "", $4); print $4}')
  echo "$name: $(echo "$out" | grep -E '^throughput') $(echo "$out" | grep -E '^latency' | grep -oE 'p99 [0-9.]+') ms;" \
       "server CPU $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$ops" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }') us/create"
}
"$bin" serve --data-dir "$work/single" --port 17990 --metrics-port 0 --jwt-secret-file "$work/jwt" --log-level warning \
  --port-file "$work/single.port" > "$work/single.log" 2>&1 &
single=$!
for _ in $(seq 1 600); do [ -s "$work/single.port" ] && break; sleep 0.1; done
run "one node" "$work/single" --port 17990
kill "$single"; wait "$single" 2>/dev/null || true
mkdir -p "$work/cluster"; cp "$work/jwt" "$work/cluster/jwt-secret"
LEARNSTORE_CLUSTER_DIR="$work/cluster" scripts/cluster --etcd > "$work/cluster.log" 2>&1 &
cluster=$!
for _ in $(seq 1 600); do [ -s "$work/cluster/n2.port" ] && grep -q "token (tenant demo" "$work/cluster.log" && break; sleep 0.1; done
# The replicas join the in-sync set within a moment of starting; the bench's warm-up covers the rest.
run "three nodes + etcd" "$work/cluster/n" --seeds 127.0.0.1:7878,127.0.0.1:7879,127.0.0.1:7880
kill "$cluster"; wait "$cluster" 2>/dev/null || true
echo "logs and data: $work"
