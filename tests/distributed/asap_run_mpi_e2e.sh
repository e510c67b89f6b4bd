#!/usr/bin/env bash
# asap_run over two MPI ranks on a tiny generated dataset (docs/distributed.md):
#  1. with distributed.sync_bn, a 2-rank search + train equals the 1-rank run at the same global
#     batch and seed: same prune decisions, genotype and test accuracy, losses within 1e-4;
#     rank 0 alone writes the run folder (the other rank's scratch folder is gone at the end);
#  2. run.distributed: off under a 2-rank launch is refused (exit 2, one line);
#  3. killing one rank mid-search ends the job with an error within bounded time, and --resume
#     then completes it with the genotype of an uninterrupted 2-rank run.
# The fixture (seed, schedule) was picked where this tiny search is not chaotic: elsewhere it
# amplifies float rounding (even the SSE2 vs AVX2 kernels) into other prune decisions.
# Usage: asap_run_mpi_e2e.sh MPIRUN PATH/TO/asap_run
set -euo pipefail
MPIRUN=$1
ASAP_RUN=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2() { bash "$HERE/mpirun2.sh" "$MPIRUN" -x TMPDIR "$@"; }
mkdir -p "$T/tmp"
export TMPDIR="$T/tmp"

python3 "$HERE/../make_tiny_idx.py" "$T/data" 256 100 16
cat > "$T/dp.yaml" <<YAML
data:
  root: $T/data
  batch_size: 32
  eval_batch_size: 50
search:
  epochs: 2
  network: {C: 4, layers: 3}
  alphas: {lr: 0.05}
  annealer: {warmup_epochs: 1, T0: 0.1, beta: 0.5, prune_every: epoch}
train:
  epochs: 2
  batch_size: 32
  network: {C: 4, layers: 3, drop_path: 0.2}  # drop-path masks: each rank draws its samples' global ones
  optimizer: {lr: 0.01}
run:
  seed: 2
  threads: 1
  progress: false
  plots: false
distributed:
  sync_bn: true
YAML

# 1. One process against two ranks.
"$ASAP_RUN" "$T/dp.yaml" --out "$T/one" > "$T/one.log" 2>&1 || { cat "$T/one.log"; fail "1-rank run"; }
mpi2 "$ASAP_RUN" "$T/dp.yaml" --out "$T/two" > "$T/two.log" 2>&1 || { cat "$T/two.log"; fail "2-rank run"; }
grep -q "data parallel: 2 ranks over mpi" "$T/two.log" || fail "the 2-rank run did not report its ranks"
[ -z "$(ls -A "$T/tmp")" ] || fail "a rank's scratch folder was left behind: $(ls "$T/tmp")"
python3 - "$T/one" "$T/two" <<'PY' || fail "the 2-rank run differs from the 1-rank run"
import json, sys
one, two = sys.argv[1], sys.argv[2]
def events(d):
    return [(e["epoch"], e["step"], e["cell_type"], e["edge"], e["op"], e["winner"], e["decided"])
            for e in map(json.loads, open(f"{d}/prune_events.jsonl"))]
assert events(one) and events(one) == events(two), "prune events differ"
assert open(f"{one}/genotype.txt").read() == open(f"{two}/genotype.txt").read(), "genotypes differ"
m1 = [json.loads(l) for l in open(f"{one}/metrics.jsonl")]
m2 = [json.loads(l) for l in open(f"{two}/metrics.jsonl")]
assert [(l["stage"], l["epoch"]) for l in m1] == [(l["stage"], l["epoch"]) for l in m2]
for a, b in zip(m1, m2):
    for k in ("train_loss", "val_loss"):
        if k in a and a[k]:
            rel = abs(a[k] - b[k]) / abs(a[k])
            assert rel < 1e-4, (a["stage"], a["epoch"], k, a[k], b[k], rel)
s1, s2 = json.load(open(f"{one}/summary.json")), json.load(open(f"{two}/summary.json"))
assert s1["test_accuracy"] == s2["test_accuracy"], (s1["test_accuracy"], s2["test_accuracy"])
assert abs(s1["test_loss"] - s2["test_loss"]) / s1["test_loss"] < 1e-4, (s1["test_loss"], s2["test_loss"])
PY
cmp -s <(grep -v '^  out:' "$T/one/config.yaml") <(grep -v '^  out:' "$T/two/config.yaml") || fail "the two runs recorded different configs"

# 2. Two ranks told not to be distributed would both write one folder: refused.
set +e
mpi2 "$ASAP_RUN" "$T/dp.yaml" --out "$T/off" --set run.distributed=off > "$T/off.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || { cat "$T/off.log"; fail "run.distributed=off under 2 ranks: exit $rc, expected 2"; }
grep -q "key 'run.distributed' is off but the launcher started 2 ranks" "$T/off.log" || fail "off: no clear message"

# 3. A rank killed mid-search: the job ends (bounded), and --resume completes it.
sets=(--set search.epochs=8 --set search.annealer.T0=1.0 --set search.annealer.prune_every=step --set train.epochs=1)
mpi2 "$ASAP_RUN" "$T/dp.yaml" --out "$T/whole" "${sets[@]}" > "$T/whole.log" 2>&1 || { cat "$T/whole.log"; fail "uninterrupted run"; }
mpi2 "$ASAP_RUN" "$T/dp.yaml" --out "$T/killed" "${sets[@]}" > "$T/killed.log" 2>&1 &
job=$!
for _ in $(seq 600); do [ -f "$T/killed/checkpoints/search.safetensors" ] && break; sleep 0.05; done
[ -f "$T/killed/checkpoints/search.safetensors" ] || { wait "$job" || true; cat "$T/killed.log"; fail "no checkpoint to resume from"; }
rank1=""
for p in $(pgrep -f "$ASAP_RUN .*$T/killed" || true); do
  tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && rank1=$p
done
[ -n "$rank1" ] || { wait "$job" || true; fail "rank 1 not found (the run ended before the kill?)"; }
t0=$(date +%s)
kill -9 "$rank1"
set +e
wait "$job"
rc=$?
set -e
waited=$(( $(date +%s) - t0 ))
[ "$rc" -ne 0 ] || fail "the job succeeded although rank 1 was killed"
[ "$waited" -le 60 ] || fail "the job took ${waited}s to end after rank 1 died"
grep -qiE "signal 9|killed|exited on signal|rank 1" "$T/killed.log" || { cat "$T/killed.log"; fail "no clear message about the dead rank"; }
[ ! -f "$T/killed/summary.json" ] || ! grep -q test_accuracy "$T/killed/summary.json" || fail "the killed run has a result"
mpi2 "$ASAP_RUN" --resume "$T/killed" > "$T/resume.log" 2>&1 || { cat "$T/resume.log"; fail "--resume after the kill"; }
grep -q "resumed search at epoch" "$T/resume.log" || fail "the resume did not continue the search"
[ -z "$(ls -A "$T/tmp" | grep asap_run-rank || true)" ] || fail "the killed rank's scratch folder survived the resume"
cmp -s "$T/whole/genotype.txt" "$T/killed/genotype.txt" || fail "the resumed run's genotype differs from the uninterrupted one"
echo "asap_run_mpi_e2e: OK (kill ended the job in ${waited}s)"
