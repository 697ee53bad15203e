#!/usr/bin/env bash
# Installs the one system library LearnStore needs (zstd, Debian's libzstd-dev) when it is missing.
set -euo pipefail
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libzstd; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: libzstd-dev is missing and this user cannot install packages; run: apt-get install -y libzstd-dev pkg-config" >&2
    exit 1
  fi
fi
echo "installing libzstd-dev and pkg-config (apt-get)..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libzstd-dev pkg-config >/dev/null
pkg-config --exists libzstd
