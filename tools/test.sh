#!/usr/bin/env bash
# Installs what is missing, builds the CPU engine (Release) and runs every test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DASAP_CUDA=OFF >/dev/null
ninja -C build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
