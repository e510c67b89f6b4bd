#!/usr/bin/env bash
# Installs the Debian packages the build, tests and quick start need, only when missing.
# Extra package names given as arguments are installed the same way (tools/ci_hardening.sh).
set -euo pipefail
pkgs=(cmake ninja-build g++ catch2 libopenblas-dev libyaml-cpp-dev nlohmann-json3-dev zlib1g-dev
      libbenchmark-dev graphviz dataset-fashion-mnist python3 python3-numpy python3-matplotlib
      libopenmpi-dev openmpi-bin "$@")  # Open MPI: data-parallel runs and their tests (docs/distributed.md)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
