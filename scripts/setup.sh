#!/usr/bin/env bash
# Installs what tapegrad needs from Debian's packages. Safe to run again: it installs only what is
# missing. Pass extra package names to install them too (scripts/bench.sh adds python3-torch).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config python3
  libxtensor-dev xtl-dev libxsimd-dev
  doctest-dev libbenchmark-dev
  libdnnl-dev ocl-icd-opencl-dev zlib1g-dev nlohmann-json3-dev libopenblas-dev libopenblas-openmp-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
