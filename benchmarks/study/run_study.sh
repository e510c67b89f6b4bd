#!/usr/bin/env bash
# The search-science study of docs/study.md: ASAP searches and two ablations, then every cell
# (searched, random, published) trained with the same recipe and two seeds; one asap_report.
# Usage: benchmarks/study/run_study.sh [OUT] (default runs/study). Rerunning resumes: asap_sweep
# skips finished seeds. About an hour on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${ASAP_BIN:-$root/build/tools}
cfg=$root/benchmarks/study/study.yaml
out=${1:-runs/study}
mkdir -p "$out"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# 1. Searches, one job at a time on both cores so that search seconds compare.
search() {  # NAME SEEDS [--set k=v ...]
  local name=$1 seeds=$2; shift 2
  log "search $name seeds $seeds"
  "$bin/asap_sweep" "$cfg" --seeds "$seeds" --out "$out/search-$name" --stage search --jobs 1 "$@"
}
search asap 0-2
search constant-T 0-1 --set search.annealer.temperature_schedule=constant
search no-pruning 0 --set search.annealer.threshold_c=0   # dense all the way: the costliest arm

# 2. Trainings: two seeds per cell of the compared arms (two at a time, one thread each), one per
# cell of the ablations (their question is the search's cost and whether it still finds a cell).
train() {  # NAME GENOTYPE [SEEDS]: one job per seed, the cores divided among them
  local seeds=${3:-0,1}
  local commas=${seeds//[^,]/}
  log "train $1 ($2)"
  "$bin/asap_sweep" "$cfg" --seeds "$seeds" --out "$out/train-$1" --stage train --jobs $(( ${#commas} + 1 )) \
    --set "train.genotype=$2"
}
for d in "$out"/search-asap/seed-*/; do d=${d%/}; train "asap-$(basename "$d")" "$d/genotype.json"; done
for d in "$out"/search-constant-T/seed-*/ "$out"/search-no-pruning/seed-*/; do
  d=${d%/}
  arm=$(basename "$(dirname "$d")"); arm=${arm#search-}
  train "$arm-$(basename "$d")" "$d/genotype.json" 0
done
for s in 1 2 3; do train "random-$s" "random:$s"; done
train DARTS_V2 DARTS_V2
train ASAP ASAP

log "report"
"$bin/asap_report" "$out" --out "$out"
log "done: $out/report.md"
