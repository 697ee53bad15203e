#!/usr/bin/env bash
# A CPU profile of the server under the peer benchmark kit's C client: `perf record -g` of
# `learnstore serve` for 5 s of gets or lists (50 connections, P requests in flight on each), then the
# server's top symbols and the callers of swift_retain/swift_release (the frame-pointer chains), the
# figures "What the profiles show" in docs/PERFORMANCE.md are read from. Shares are of all the
# server's samples, kernel included; compare builds by these shares when the machine is too uneven
# for throughput to tell them apart.
#
#   Benchmarks/profile-requests.sh [BINARY]          # gets, P=1
#   OP=list P=1 Benchmarks/profile-requests.sh .build/release/learnstore
#   OP=get P=16 KEEP=/tmp/get16.data Benchmarks/profile-requests.sh   # keep perf.data for perf annotate
#
# Needs perf (Debian: linux-perf, run as root) and what a run of the peer benchmark kit with
# --learnstore-bin leaves behind (as Benchmarks/nio-floor.sh): its client (PEERBENCH) and LearnStore's
# data directory, secret, tokens.txt and ids.bin (LS_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/learnstore}
OP=${OP:-get}; P=${P:-1}
PEERBENCH=${PEERBENCH:-/tmp/peers-bin/peerbench}
LS_DIR=${LS_DIR:-/tmp/peers-learnstore}
command -v perf > /dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 2; }
for need in "$PEERBENCH" "$LS_DIR/tokens.txt" "$LS_DIR/ids.bin" "$LS_DIR/secret"; do
  [ -e "$need" ] || { echo "missing $need: run the peers kit with --learnstore-bin first" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/profile-requests.XXXXXX)
SP=""
trap '[ -n "$SP" ] && kill $SP 2>/dev/null; rm -rf "$WORK"' EXIT
"$BIN" serve --host 127.0.0.1 --port 0 --port-file "$WORK/port" --data-dir "$LS_DIR/data" --jwt-secret-file "$LS_DIR/secret" \
  --metrics-port 0 --fsync everysec --snapshot-interval 0 --snapshot-wal-bytes 0 > "$WORK/server.log" 2>&1 & SP=$!
for _ in $(seq 600); do [ -s "$WORK/port" ] && break; sleep 0.1; done
# Recovery and the deferred index builds done: the server used under 50 ms of CPU in a second.
cpu() { awk '{print $14 + $15}' "/proc/$SP/stat"; }
while :; do before=$(cpu); sleep 1; [ $(($(cpu) - before)) -lt 5 ] && break; done
ARGS=(--proto learnstore --port "$(cat "$WORK/port")" --token-file "$LS_DIR/tokens.txt" --ids "$LS_DIR/ids.bin"
      --keyspace 1000000 --persons 100000 --tenants 10 --op "$OP" -c 50 -P "$P")
[ "$OP" = list ] && ARGS+=(--page 10)
# A first run builds what tenants build on their first reads: not profiled.
"$PEERBENCH" "${ARGS[@]}" -d 3 -w 1 > /dev/null
perf record -F 2999 -g -p "$SP" -o "$WORK/perf.data" -- sleep 5 > /dev/null 2>&1 &
REC=$!
"$PEERBENCH" "${ARGS[@]}" -d 6 -w 0 > "$WORK/run.json"
wait $REC || true
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%s P=%s: %.0f requests/s" % (sys.argv[2], sys.argv[3], r["ops_per_sec"]))' "$WORK/run.json" "$OP" "$P"
# The reports below end their pipes early (head): their exit statuses are not the script's.
set +o pipefail
echo "top symbols (share of the server's samples):"
perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep "%" | head -30 | cut -c1-150
echo "callers of swift_retain and swift_release:"
perf script -i "$WORK/perf.data" 2>/dev/null | python3 -c '
import collections, sys
counts, total, block = collections.Counter(), 0, []
def finish():
    global total
    if not block: return
    total += 1
    frames = [line.split()[1].split("+")[0] if len(line.split()) > 1 else "?" for line in block[1:]]
    if len(frames) > 1 and frames[0] in ("swift_retain", "swift_release"):
        counts[(frames[0], frames[1][:110])] += 1
for line in sys.stdin:
    if line.strip(): block.append(line.rstrip())
    else: finish(); block = []
finish()
for (leaf, caller), n in counts.most_common(15): print("%6.2f%%  %-13s <- %s" % (100 * n / total, leaf, caller))
'
if [ -n "${KEEP:-}" ]; then cp "$WORK/perf.data" "$KEEP"; echo "perf.data kept in $KEEP (perf report -i, perf annotate -i)"; fi
