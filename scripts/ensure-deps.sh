#!/usr/bin/env bash
# Installs the system packages LearnStore needs when they are missing: zstd (libzstd-dev, with
# pkg-config to find it) for snapshots, and with --etcd etcd (etcd-server) for the cluster's control
# plane and its tests, and with --python python3 for the protocol conformance test.
# Usage: scripts/ensure-deps.sh [--etcd] [--python]
set -euo pipefail
etcd=0
python=0
for argument in "$@"; do
  case "$argument" in
    --etcd) etcd=1 ;;
    --python) python=1 ;;
    *) echo "usage: scripts/ensure-deps.sh [--etcd] [--python]" >&2; exit 2 ;;
  esac
done
missing=()
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libzstd; }; then missing+=(libzstd-dev pkg-config); fi
if [ "$etcd" = 1 ] && ! command -v etcd >/dev/null 2>&1; then missing+=(etcd-server); fi
if [ "$python" = 1 ] && ! command -v python3 >/dev/null 2>&1; then missing+=(python3); fi
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
if [ "$etcd" = 1 ]; then command -v etcd >/dev/null; fi
if [ "$python" = 1 ]; then command -v python3 >/dev/null; fi
