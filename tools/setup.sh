#!/usr/bin/env bash
# Installs every build, test and runtime dependency of reclaimfs on Debian 12.
# Idempotent: packages already present are left alone.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config
  libfuse3-dev fuse3
  liburing-dev
  librocksdb-dev
  libboost-dev libboost-system-dev
  libabsl-dev
  libtomlplusplus-dev
  libcli11-dev
  libspdlog-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  fio attr python3 psmisc procps
  prometheus gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
