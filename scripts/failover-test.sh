#!/usr/bin/env bash
# Runs N failover cycles (kill -9 the primary under writes, a replica promoted, the old primary
# restarted as a replica) against the release server and prints the counts (cycles, acknowledged
# writes, lost, digest mismatches, failover time). Usage: scripts/failover-test.sh [N] [flags of
# `learnstore failover-test`], e.g. `scripts/failover-test.sh 20 --etcd` (the etcd control plane
# promotes by itself) or `scripts/failover-test.sh 20 --fsync everysec`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh --etcd
swift build -c release --product learnstore
exec .build/release/learnstore failover-test --cycles "${1:-20}" "${@:2}"
