#!/usr/bin/env bash
# Installs the system packages LearnStore needs when they are missing: zstd (libzstd-dev, with
# pkg-config to find it) for snapshots, and with --etcd etcd (etcd-server) for the cluster's control
# plane and its tests. Usage: scripts/ensure-deps.sh [--etcd]
set -euo pipefail
missing=()
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libzstd; }; then missing+=(libzstd-dev pkg-config); fi
if [ "${1:-}" = "--etcd" ] && ! command -v etcd >/dev/null 2>&1; then missing+=(etcd-server); fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: ${missing[*]} missing and this user cannot install packages; run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "installing ${missing[*]} (apt-get)..." >&2
$SUDO apt-get update -qq
# The package would start a system etcd on the default ports; LearnStore starts its own.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
pkg-config --exists libzstd
if [ "${1:-}" = "--etcd" ]; then command -v etcd >/dev/null; fi
