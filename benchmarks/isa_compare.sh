#!/usr/bin/env bash
# The CPU kernels' instruction sets side by side (kernels/cpu/isa.h): the cpu-small search step
# (dense and sparse) and the quick start's train step (DARTS_V2 evaluation network), each run
# under every set this CPU supports, interleaved (sse2 avx2 avx512 sse2 ...) so all see the same
# machine load. Prints step times and the ratio to sse2 (the median of the rounds); JSON lines go
# to $OUT. Builds nothing.
#   benchmarks/isa_compare.sh                   # 2 threads, 2 rounds
#   ROUNDS=3 THREADS=1 benchmarks/isa_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-build/tools/asap_bench}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-benchmarks/results/isa-$(date +%Y%m%d-%H%M%S).jsonl}
[[ -x $BENCH ]] || { echo "isa_compare.sh: $BENCH not found; build it first" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
isas=(sse2)
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && isas+=(avx2)
grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && isas+=(avx512)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; sets: ${isas[*]}; load $(cut -d' ' -f1 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for isa in "${isas[@]}"; do
    ASAP_CPU_ISA=$isa "$BENCH" --threads "$THREADS" --C 8 --layers 5 --batch 32 --hw 28 --cin 1 --steps 3 \
      --sparsity 0,0.71 | sed "s/^{/{\"round\": $round, \"workload\": \"search\", /" >> "$OUT"
    ASAP_CPU_ISA=$isa "$BENCH" --threads "$THREADS" --net eval --genotype DARTS_V2 --C 8 --layers 5 --batch 96 \
      --hw 28 --cin 1 --steps 5 | sed "s/^{/{\"round\": $round, \"workload\": \"train\", /" >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
key = lambda r: (r["workload"], r.get("sparsity", 0.0))
times = {}
for r in rows:
    times.setdefault(key(r), {}).setdefault(r["cpu_isa"], []).append(r["step_ms"])
print("| workload | sparsity | " + " | ".join(f"{i} ms" for i in ["sse2", "avx2", "avx512"]) + " | avx2 / sse2 | avx512 / sse2 |")
print("|---|---|---|---|---|---|---|")
for k in sorted(times):
    med = {i: statistics.median(v) for i, v in times[k].items()}
    cell = lambda i: f"{med[i]:.0f}" if i in med else "-"
    ratio = lambda i: f"{med[i] / med['sse2']:.2f}" if i in med else "-"
    print(f"| {k[0]} | {k[1]} | {cell('sse2')} | {cell('avx2')} | {cell('avx512')} | {ratio('avx2')} | {ratio('avx512')} |")
PY
echo "JSON lines: $OUT"
