#!/usr/bin/env bash
# Data-parallel scaling on one machine (issue 16, docs/distributed.md): the quick start's search
# (2 epochs of 10 steps) and train stage (1 epoch of 20 steps) as 1 rank x 2 threads, 2 ranks x 1
# thread (BN per rank, then sync_bn) and 1 rank x 1 thread, interleaved, ROUNDS times; prints the
# seconds per step of each run from its metrics.jsonl. Needs a build with MPI and Fashion-MNIST.
#   benchmarks/dp_scaling.sh                    # build/tools/asap_run, 2 rounds, runs in a temp dir
#   ASAP_RUN=build-mpi/tools/asap_run ROUNDS=3 OUT=/tmp/dp benchmarks/dp_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ASAP_RUN=${ASAP_RUN:-build/tools/asap_run}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d)}
MPIRUN=${MPIRUN:-mpirun}
[[ -x $ASAP_RUN ]] || { echo "dp_scaling.sh: $ASAP_RUN not found; build it first" >&2; exit 1; }
command -v "$MPIRUN" >/dev/null || { echo "dp_scaling.sh: $MPIRUN not found (apt-get install openmpi-bin)" >&2; exit 1; }
root=()
[[ $(id -u) == 0 ]] && root=(--allow-run-as-root)
mpi2() { "$MPIRUN" "${root[@]}" -np 2 --oversubscribe --bind-to none "$@"; }
S=(--set search.epochs=2 --set search.annealer.warmup_epochs=1 --set train.epochs=1 --set train.subset=1920
   --set data.test_subset=500 --set run.plots=false --set run.progress=false)
mkdir -p "$OUT"
echo "# $(date -Is)  $(nproc) cpus  load: $(cut -d' ' -f1-3 /proc/loadavg)  out: $OUT"
for ((r = 1; r <= ROUNDS; ++r)); do
  "$ASAP_RUN" configs/quickstart.yaml --out "$OUT/r$r-1x2" --set run.threads=2 "${S[@]}" > "$OUT/r$r-1x2.log" 2>&1
  mpi2 "$ASAP_RUN" configs/quickstart.yaml --out "$OUT/r$r-2x1" --set run.threads=1 "${S[@]}" > "$OUT/r$r-2x1.log" 2>&1
  mpi2 "$ASAP_RUN" configs/quickstart.yaml --out "$OUT/r$r-2x1sync" --set run.threads=1 --set distributed.sync_bn=true \
    "${S[@]}" > "$OUT/r$r-2x1sync.log" 2>&1
  "$ASAP_RUN" configs/quickstart.yaml --out "$OUT/r$r-1x1" --set run.threads=1 "${S[@]}" > "$OUT/r$r-1x1.log" 2>&1
done
python3 - "$OUT" <<'PY'
import glob, json, os, sys
print(f"{'run':<12} {'warm-up s/step':>15} {'search s/step':>14} {'train s/step':>13}")
for d in sorted(glob.glob(os.path.join(sys.argv[1], "r*-*/"))):
    m = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    per = lambda ls: "%.3f" % (ls[0]["epoch_seconds"] / ls[0]["steps"]) if ls else "-"
    s = [l for l in m if l["stage"] == "search"]
    t = [l for l in m if l["stage"] == "train" and "epoch_seconds" in l]
    print(f"{os.path.basename(d[:-1]):<12} {per([l for l in s if l.get('warmup')]):>15} "
          f"{per([l for l in s if not l.get('warmup')]):>14} {per(t):>13}")
PY
