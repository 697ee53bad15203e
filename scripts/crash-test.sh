#!/usr/bin/env bash
# Runs N kill -9 / restart cycles against the release server with concurrent writers and prints the
# counts (cycles, acknowledged writes, lost, corrupt). Usage: scripts/crash-test.sh [N] [fsync policy]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
swift build -c release --product learnstore
exec .build/release/learnstore crash-test --cycles "${1:-1000}" --fsync "${2:-always}"
