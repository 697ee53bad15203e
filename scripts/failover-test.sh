#!/usr/bin/env bash
# Runs N failover cycles (kill -9 the primary under writes, promote a replica, restart the old primary
# as a replica) against the release server and prints the counts (cycles, acknowledged writes, lost,
# digest mismatches, failover time). Usage: scripts/failover-test.sh [N] [fsync policy]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
swift build -c release --product learnstore
exec .build/release/learnstore failover-test --cycles "${1:-20}" --fsync "${2:-always}"
