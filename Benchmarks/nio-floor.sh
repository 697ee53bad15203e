#!/usr/bin/env bash
# Unpipelined (or pipelined) gets or lists from the peer benchmark kit's C client against three
# servers in turn, ROUNDS times: NIOFloor (SwiftNIO with LearnStore's bootstrap and channel options
# answering every request with a fixed reply: the floor of any server built on SwiftNIO's channel
# pipeline), LearnStore itself, and Tarantool 2.6 when the kit's Tarantool data directory is there.
# For each: requests/s, p50/p99, and the server's user and system CPU time per request (from
# /proc/PID/stat).
#
#   Benchmarks/nio-floor.sh [BINARY]            # P=1, 5 s per run, 3 rounds
#   P=16 ROUNDS=5 Benchmarks/nio-floor.sh .build/release/learnstore
#   OP=list Benchmarks/nio-floor.sh             # a person's ten records (NIOFloor: ten fixed records)
#
# Needs a peer benchmark kit, which is not part of this repository (the directory PEERS_KIT names, as
# for compare-peers.sh), and what its run with --learnstore-bin leaves behind: its client
# (PEERBENCH, default /tmp/peers-bin/peerbench), LearnStore's directory with 1M records, secret,
# tokens.txt and ids.bin (LS_DIR, default /tmp/peers-learnstore) and Tarantool's (TT_DIR, default
# /tmp/peers-tarantool; skipped when absent, and for lists: the kit leaves its data directories after
# its create rows, so Tarantool's unlimited list of a person then returns several times ten records,
# while LearnStore's asks for a page of ten).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/learnstore}
OP=${OP:-get}; P=${P:-1}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}; ROUNDS=${ROUNDS:-3}
PEERS_KIT=${PEERS_KIT:-$(cd .. && pwd)/shared/peers}
PEERBENCH=${PEERBENCH:-/tmp/peers-bin/peerbench}
LS_DIR=${LS_DIR:-/tmp/peers-learnstore}
TT_DIR=${TT_DIR:-/tmp/peers-tarantool}
for need in "$PEERBENCH" "$LS_DIR/tokens.txt" "$LS_DIR/ids.bin" "$LS_DIR/secret"; do
  [ -e "$need" ] || { echo "missing $need: run the peers kit with --learnstore-bin first" >&2; exit 2; }
done
(cd Benchmarks && swift build -c release --product NIOFloor > /dev/null)
FLOOR=Benchmarks/.build/release/NIOFloor
GOLDEN=Tests/LearnStoreProtocolTests/Golden
WORK=$(mktemp -d /tmp/nio-floor.XXXXXX)
SP=""
trap '[ -n "$SP" ] && kill $SP 2>/dev/null; rm -rf "$WORK"' EXIT

cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }
# Waits until the process has used under 50 ms of CPU in a second (recovery and index builds done).
settle() { while :; do read -r u s < <(cpu "$1"); sleep 1; read -r u2 s2 < <(cpu "$1"); [ $((u2 + s2 - u - s)) -lt 5 ] && return; done; }
wait_file() { for _ in $(seq 600); do [ -s "$1" ] && return; sleep 0.1; done; echo "no $1" >&2; exit 1; }

measure() {  # NAME PID PEERBENCH-ARGS...
  local name=$1 pid=$2; shift 2
  "$PEERBENCH" "$@" -c 50 -P "$P" -d 2 -w 1 > /dev/null
  read -r u0 s0 < <(cpu "$pid")
  "$PEERBENCH" "$@" -c 50 -P "$P" -d "$SECONDS_PER_RUN" -w 0 > "$WORK/run.json"
  read -r u1 s1 < <(cpu "$pid")
  python3 - "$name" "$u0" "$s0" "$u1" "$s1" "$WORK/run.json" <<'PY'
import json, os, sys
name, u0, s0, u1, s1, path = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
r = json.load(open(path)); n = r["ops"]; tick = 1e6 / os.sysconf("SC_CLK_TCK")
print("%-10s %8.0f requests/s  p50 %.3f  p99 %.3f ms  server CPU per request: user %.2f  system %.2f  total %.2f us  (errors %d)" % (
    name, r["ops_per_sec"], r["lat_each"]["p50_us"] / 1000, r["lat_each"]["p99_us"] / 1000,
    (u1 - u0) * tick / n, (s1 - s0) * tick / n, (u1 - u0 + s1 - s0) * tick / n, r["errors"]))
PY
}

DATA_ARGS=(--keyspace 1000000 --persons 100000 --tenants 10 --op "$OP")
LS_ARGS=(--token-file "$LS_DIR/tokens.txt" --ids "$LS_DIR/ids.bin")
[ "$OP" = list ] && LS_ARGS+=(--page 10)
for round in $(seq "$ROUNDS"); do
  echo "round $round ($OP, P=$P)"
  "$FLOOR" --port-file "$WORK/floor.port" --golden "$GOLDEN" & SP=$!
  wait_file "$WORK/floor.port"
  measure NIOFloor $SP --proto learnstore --port "$(cat "$WORK/floor.port")" "${LS_ARGS[@]}" "${DATA_ARGS[@]}"
  kill $SP; wait $SP 2>/dev/null || true; rm -f "$WORK/floor.port"

  "$BIN" serve --host 127.0.0.1 --port 0 --port-file "$WORK/ls.port" --data-dir "$LS_DIR/data" --jwt-secret-file "$LS_DIR/secret" \
    --metrics-port 0 --fsync everysec --snapshot-interval 0 --snapshot-wal-bytes 0 > "$WORK/server.log" 2>&1 & SP=$!
  wait_file "$WORK/ls.port"; settle $SP
  measure LearnStore $SP --proto learnstore --port "$(cat "$WORK/ls.port")" "${LS_ARGS[@]}" "${DATA_ARGS[@]}"
  kill $SP; wait $SP 2>/dev/null || true; rm -f "$WORK/ls.port"

  if [ "$OP" = get ] && [ -d "$TT_DIR" ] && command -v tarantool > /dev/null; then
    (cd "$TT_DIR" && TT_PORT=13301 TT_DIR="$TT_DIR" TT_WAL_MODE=write TT_MEMTX_MEMORY=$((4 << 30)) TT_PK_TYPE=HASH \
      exec tarantool "$PEERS_KIT/tarantool_server.lua" > /dev/null 2>&1) & SP=$!
    until "$PEERBENCH" --proto iproto --port 13301 --op get -c 1 -d 0.2 -w 0 > /dev/null 2>&1; do sleep 0.5; done
    settle $SP
    measure Tarantool $SP --proto iproto --port 13301 "${DATA_ARGS[@]}"
    kill $SP; wait $SP 2>/dev/null || true
  fi
  SP=""
done
