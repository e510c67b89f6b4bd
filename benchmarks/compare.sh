#!/usr/bin/env bash
# Side-by-side search-step benchmark: asap_bench and the PyTorch reference, interleaved
# (A B A B ...) per sparsity level with the same config and thread count, so both engines see the
# same machine load. Builds nothing. Prints one table per round and a summary with the median of
# the rounds; every JSON line is appended to $OUT (default benchmarks/results/compare-<date>.jsonl)
# for benchmarks/plot.py.
#
#   benchmarks/compare.sh                       # cpu-small, 2 threads, 2 rounds
#   ROUNDS=3 THREADS=1 benchmarks/compare.sh
#   BENCH=build/tools/asap_bench C=8 LAYERS=5 BATCH=32 HW=28 CIN=1 STEPS=3 \
#     SPARSITY=0,0.43,0.71,0.86 benchmarks/compare.sh
#   NET=eval GENOTYPE=DARTS_V2 BATCH=96 benchmarks/compare.sh   # the train step (issue 15, item 3);
#     GENOTYPE may be a run's genotype.txt text; the table's "sparsity" column then reads "train"
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=${BENCH:-build/tools/asap_bench}
PY=${PY:-/usr/bin/python3}
REF=${REF:-benchmarks/pytorch_reference.py}
C=${C:-8}
LAYERS=${LAYERS:-5}
BATCH=${BATCH:-32}
HW=${HW:-28}
CIN=${CIN:-1}
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
ROUNDS=${ROUNDS:-2}
SPARSITY=${SPARSITY:-0,0.43,0.71,0.86}
NET=${NET:-search}
GENOTYPE=${GENOTYPE:-DARTS_V2}
[[ $NET == search || $NET == eval ]] || { echo "compare.sh: NET must be search or eval, got '$NET'" >&2; exit 2; }
OUT=${OUT:-benchmarks/results/compare-$(date +%Y%m%d-%H%M%S).jsonl}

[[ -x $BENCH ]] || { echo "compare.sh: $BENCH not found; build it first (see docs/results.md)" >&2; exit 1; }
[[ -f $REF ]] || { echo "compare.sh: $REF not found" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"

common=(--device cpu --C "$C" --layers "$LAYERS" --batch "$BATCH" --hw "$HW" --cin "$CIN"
        --threads "$THREADS" --steps "$STEPS")
if [[ $NET == eval ]]; then
  common+=(--net eval --genotype "$GENOTYPE")
  SPARSITY=train  # one level: the train step has no sparsity
fi
export OMP_NUM_THREADS=$THREADS

echo "# $(date -Is)  $(nproc) cpus  load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $NET == eval ]]; then echo "# net: eval, genotype ${GENOTYPE:0:80}"; else echo "# net: search"; fi
echo "# config: C=$C layers=$LAYERS batch=$BATCH hw=$HW cin=$CIN threads=$THREADS steps=$STEPS rounds=$ROUNDS"
echo "# out: $OUT"

IFS=',' read -r -a levels <<<"$SPARSITY"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for ((r = 1; r <= ROUNDS; ++r)); do
  for s in "${levels[@]}"; do
    # A then B for this level; alternate which goes first each round.
    if (( r % 2 )); then order=(asap pytorch); else order=(pytorch asap); fi
    for eng in "${order[@]}"; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      level=(--sparsity "$s")
      [[ $NET == eval ]] && level=()
      if [[ $eng == asap ]]; then
        line=$("$BENCH" "${common[@]}" "${level[@]}")
      else
        line=$("$PY" "$REF" "${common[@]}" "${level[@]}")
      fi
      line=$("$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); j["round"]=int(sys.argv[2]); j["load1"]=float(sys.argv[3]); j.setdefault("sparsity", "train"); print(json.dumps(j))' "$line" "$r" "$load")
      echo "$line" >>"$OUT"
      echo "$line" >>"$tmp"
    done
  done
  echo
  echo "round $r:"
  "$PY" - "$tmp" "$r" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["round"] == int(sys.argv[2])]
print(f"{'sparsity':>8} {'asap_ms':>10} {'pytorch_ms':>11} {'ours/pt':>8} {'load1':>6}")
for s in sorted({r["sparsity"] for r in rows}):
    a = [r for r in rows if r["sparsity"] == s and r["engine"] == "asap"]
    p = [r for r in rows if r["sparsity"] == s and r["engine"] == "pytorch"]
    if a and p:
        print(f"{s:>8} {a[0]['step_ms']:>10.1f} {p[0]['step_ms']:>11.1f} "
              f"{a[0]['step_ms'] / p[0]['step_ms']:>8.2f} {a[0]['load1']:>6.2f}")
EOF
done

echo
echo "summary (median over $ROUNDS rounds):"
"$PY" - "$tmp" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'sparsity':>8} {'asap_ms':>10} {'pytorch_ms':>11} {'ours/pt':>8}")
for s in sorted({r["sparsity"] for r in rows}):
    a = statistics.median(r["step_ms"] for r in rows if r["sparsity"] == s and r["engine"] == "asap")
    p = statistics.median(r["step_ms"] for r in rows if r["sparsity"] == s and r["engine"] == "pytorch")
    print(f"{s:>8} {a:>10.1f} {p:>11.1f} {a / p:>8.2f}")
EOF
