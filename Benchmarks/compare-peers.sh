#!/usr/bin/env bash
# One run on one machine: the peers kit (Redis 7, Tarantool 2.6; the directory PEERS_KIT names) and LearnStore on
# the same workloads, then one table of LearnStore, Redis, Tarantool and LearnStore ÷ best peer.
#   Benchmarks/compare-peers.sh                     # 3 repetitions, 1M records (about 30 minutes)
#   REPS=1 SECONDS_PER_RUN=2 RECORDS=100000 Benchmarks/compare-peers.sh   # a quick smoke run
#   SERVER_ARGS="--event-loops 1" Benchmarks/compare-peers.sh               # flags for LearnStore's server
# Results in ${OUT:-/tmp/learnstore-compare}/<timestamp>/ (report.md, learnstore.jsonl, the peers' summary).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${REPS:-3}"; RECORDS="${RECORDS:-1000000}"; SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
PEERS="${PEERS_KIT:-$(cd .. && pwd)/shared/peers}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT_DIR="${OUT:-/tmp/learnstore-compare}/$STAMP"
mkdir -p "$OUT_DIR"
scripts/ensure-deps.sh
swift build -c release --product learnstore
if [ -x "$PEERS/run_all.sh" ]; then
  OUT="$OUT_DIR/peers" REPS="$REPS" RECORDS="$RECORDS" SECONDS_PER_RUN="$SECONDS_PER_RUN" "$PEERS/run_all.sh"
  PEER_SUMMARY="$(ls -d "$OUT_DIR"/peers/*/ | tail -1)summary.json"
else
  echo "peers kit not found at $PEERS; using its reference results is not possible here" >&2
  exit 1
fi
python3 Benchmarks/learnstore_bench.py --binary .build/release/learnstore --out "$OUT_DIR/learnstore" \
  --reps "$REPS" --records "$RECORDS" --seconds "$SECONDS_PER_RUN" --server-args "${SERVER_ARGS:-}"
python3 Benchmarks/compare_report.py --peers "$PEER_SUMMARY" --learnstore "$OUT_DIR/learnstore/learnstore.jsonl" \
  --out "$OUT_DIR/report.md"
echo "report: $OUT_DIR/report.md"
