#!/usr/bin/env bash
# Installs what is missing (Debian packages), builds the CPU engine and runs the quick start:
# an ASAP search and the training of the found cell on Fashion-MNIST, on the CPU.
# Extra arguments go to asap_run (e.g. --out DIR, --set run.threads=4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DASAP_CUDA=OFF >/dev/null
ninja -C build -j"$(nproc)" asap_run
out=runs/quickstart-$(date +%Y%m%d-%H%M%S)
exec ./build/tools/asap_run configs/quickstart.yaml --out "$out" "$@"
