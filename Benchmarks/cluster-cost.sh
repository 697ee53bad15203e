#!/usr/bin/env bash
# The cost of the cluster path, in one run: creates at P=16 on 50 connections over 10 tenants against
# one node, then against the three nodes and 3-member etcd of `scripts/cluster --etcd` (both replicas
# in sync), then against a partitioned cluster of three groups of two nodes (a primary and one
# synchronous replica each, the layout of three machines with a replication factor of 2: each
# "machine" runs one group's primary and another group's replica), with fsync always, on this machine.
# Prints creates/s, p99 and server CPU per create (every `learnstore serve` process, and etcd's, from
# /proc). On two cores this measures cost, not scale.
# Usage: Benchmarks/cluster-cost.sh [SECONDS]   (default 10; uses ports 7878-7883, 7401-7406, 9464-9466,
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

# Three groups of two over a fresh 3-member etcd: group g<j>'s primary on port 7878+j, its replica on 7881+j.
initial="etcd-0=http://127.0.0.1:12380,etcd-1=http://127.0.0.1:22380,etcd-2=http://127.0.0.1:32380"
parts="$work/partitioned"; mkdir -p "$parts"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$parts/cluster-secret"
pids=()
for i in 0 1 2; do
  etcd --name "etcd-$i" --data-dir "$parts/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:$((i + 1))2379" --advertise-client-urls "http://127.0.0.1:$((i + 1))2379" \
    --listen-peer-urls "http://127.0.0.1:$((i + 1))2380" --initial-advertise-peer-urls "http://127.0.0.1:$((i + 1))2380" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token learnstore-cost --pre-vote \
    --heartbeat-interval 50 --election-timeout 500 > "$parts/etcd-$i.log" 2>&1 &
  pids+=($!)
done
etcd_urls="http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
for _ in $(seq 1 100); do
  "$bin" cluster create-partition-map --etcd-endpoints "$etcd_urls" --name cost --partitions 64 --groups g0,g1,g2 > /dev/null 2>&1 && break
  sleep 0.2
done
for member in 0 1; do
  for j in 0 1 2; do
    k=$((3 * member + j))
    "$bin" serve --data-dir "$parts/g${j}n$member" --port $((7878 + k)) --metrics-port 0 --jwt-secret-file "$work/jwt" --log-level warning --fsync always \
      --node-id "g${j}n$member" --replication-port $((7401 + k)) --cluster-secret-file "$parts/cluster-secret" \
      --etcd-endpoints "$etcd_urls" --cluster-name "g$j" --partition-map cost --port-file "$parts/g${j}n$member.port" \
      > "$parts/g${j}n$member.log" 2>&1 &
    pids+=($!)
    # A group's first node writes its placement and is its primary.
    if [ "$member" = 0 ]; then
      for _ in $(seq 1 600); do [ -s "$parts/g${j}n0.port" ] && break; sleep 0.1; done
    fi
  done
done
for _ in $(seq 1 600); do [ -s "$parts/g2n1.port" ] && break; sleep 0.1; done
sleep 2
run "three groups of two + etcd" "$parts/g" --seeds 127.0.0.1:7878,127.0.0.1:7879,127.0.0.1:7880
kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
echo "logs and data: $work"
