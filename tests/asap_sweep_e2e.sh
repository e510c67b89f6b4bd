#!/usr/bin/env bash
# End-to-end checks of asap_sweep and asap_report on a tiny generated dataset: a sweep with two
# jobs, an interrupted sweep resumed by rerunning the same command, --index (Slurm), refused
# command lines, the report's groups and sample standard deviation, and named / random genotypes
# through asap_run's train stage.
# Usage: asap_sweep_e2e.sh BUILD/tools   (holding asap_run, asap_sweep, asap_report)
set -euo pipefail
BIN=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$HERE/make_tiny_idx.py" "$T/data" 256 100 8  # 8x8: the checks are about files and processes, not accuracy
cat > "$T/tiny.yaml" <<YAML
data:
  root: $T/data
  batch_size: 32
  eval_batch_size: 50
search:
  epochs: 3
  network: {C: 4, layers: 3}
  alphas: {lr: 0.05}
  annealer: {warmup_epochs: 1, T0: 1.0, beta: 0.5}
train:
  epochs: 2
  batch_size: 32
  network: {C: 4, layers: 3, drop_path: 0.1}
run:
  seed: 3
  progress: false
  plots: false
YAML

# 1. Three seeds, two at a time: one complete run folder per seed, its seed recorded.
"$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0-2 --out "$T/sw" --jobs 2 > "$T/sw.log" 2>&1 || { cat "$T/sw.log"; fail "sweep"; }
grep -q "2 at a time, 1 threads each" "$T/sw.log" || fail "threads not divided: $(head -1 "$T/sw.log")"
for k in 0 1 2; do
  python3 - "$T/sw/seed-$k" "$k" <<'PY' || fail "seed-$k folder"
import json, sys
d, k = sys.argv[1], int(sys.argv[2])
s = json.load(open(f"{d}/summary.json"))
assert 0 <= s["test_accuracy"] <= 1 and s["seed"] == k, s
assert "fallback_genes" in s and 0 <= s["fallback_genes"] <= 16, s
assert f"seed: {k}" in open(f"{d}/config.yaml").read()
PY
done
# Rerunning a finished sweep starts nothing.
"$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0-2 --out "$T/sw" > "$T/sw2.log" 2>&1 || fail "rerun of a finished sweep"
[ "$(grep -c 'complete, skipped' "$T/sw2.log")" = 3 ] || fail "finished seeds not skipped: $(cat "$T/sw2.log")"

# 2. Interrupted sweep: SIGTERM once seed 5 has a search epoch; the sweep forwards it, asap_run
#    stops at a checkpoint, the sweep exits 143; rerunning the same command resumes seed 5 and runs 6.
cat > "$T/long.yaml" <<YAML
data:
  root: $T/data
  batch_size: 16
  eval_batch_size: 50
search:
  epochs: 8
  stop_when_converged: false
  network: {C: 4, layers: 3}
  alphas: {lr: 0.05}
  annealer: {warmup_epochs: 1, T0: 1.0, beta: 0.5}
train:
  epochs: 3
  batch_size: 16
  network: {C: 4, layers: 3, drop_path: 0.1}
run:
  progress: false
  plots: false
YAML
"$BIN/asap_sweep" "$T/long.yaml" --seeds 5,6 --out "$T/int" > "$T/int.log" 2>&1 &
SWEEP=$!
until [ -s "$T/int/seed-5/metrics.jsonl" ]; do
  kill -0 "$SWEEP" 2>/dev/null || fail "sweep ended before it could be interrupted: $(cat "$T/int.log")"
  sleep 0.2
done
kill -TERM "$SWEEP"
rc=0; wait "$SWEEP" || rc=$?
[ "$rc" = 143 ] || fail "interrupted sweep exit $rc, expected 143: $(cat "$T/int.log")"
grep -q "rerun the same command" "$T/int.log" || fail "no resume hint"
[ ! -e "$T/int/seed-6" ] || fail "seed 6 started after the signal"
python3 -c "import json,sys; s=json.load(open(sys.argv[1])) if __import__('os').path.exists(sys.argv[1]) else {}; assert 'test_accuracy' not in s" \
  "$T/int/seed-5/summary.json" || fail "seed 5 finished despite the signal"
"$BIN/asap_sweep" "$T/long.yaml" --seeds 5,6 --out "$T/int" > "$T/int2.log" 2>&1 || { cat "$T/int2.log"; fail "resumed sweep"; }
grep -q "seed 5: resuming" "$T/int2.log" || fail "seed 5 not resumed: $(cat "$T/int2.log")"
grep -q "seed 6: starting" "$T/int2.log" || fail "seed 6 not started"
grep -q "resumed search at epoch\|resumed" "$T/int/seed-5.log" || fail "asap_run did not resume seed 5"
python3 - "$T/int/seed-5" <<'PY' || fail "resumed seed-5 run folder"
import json, sys
d = sys.argv[1]
lines = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
search = [l["epoch"] for l in lines if l["stage"] == "search"]
train = [l["epoch"] for l in lines if l["stage"] == "train"]
assert search == list(range(8)) and train == [0, 1, 2], (search, train)
assert "test_accuracy" in json.load(open(f"{d}/summary.json"))
PY

# 3. --index runs one seed of the list (a Slurm array task).
"$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0,4,9 --out "$T/arr" --index 1 > "$T/arr.log" 2>&1 || fail "--index"
[ -d "$T/arr/seed-4" ] && [ ! -e "$T/arr/seed-0" ] && [ ! -e "$T/arr/seed-9" ] || fail "--index 1 ran the wrong seeds"

# 3b. The Slurm array script, run as task 1 of SEEDS=0,4, twice (a requeue): seed 4 runs, then is skipped.
for attempt in 1 2; do
  CONFIG="$T/tiny.yaml" SEEDS=0,4 OUT="$T/slurm" SLURM_ARRAY_TASK_ID=1 SLURM_CPUS_PER_TASK=1 ASAP_BIN="$BIN" \
    bash "$HERE/../tools/slurm/asap_array.sbatch" > "$T/slurm-$attempt.log" 2>&1 || { cat "$T/slurm-$attempt.log"; fail "sbatch script"; }
done
[ -s "$T/slurm/seed-4/summary.json" ] && [ ! -e "$T/slurm/seed-0" ] || fail "sbatch task 1 ran the wrong seed"
grep -q "seed 4: complete, skipped" "$T/slurm-2.log" || fail "requeued task did not skip its finished seed"

# 4. Refused command lines: exit 2, one line naming the problem.
expect2() {
  local want=$1; shift
  local rc=0
  "$@" > "$T/bad.out" 2> "$T/bad.err" || rc=$?
  [ "$rc" = 2 ] || fail "'$*' exit $rc, expected 2"
  head -1 "$T/bad.err" | grep -q -- "$want" || fail "'$*' said: $(head -1 "$T/bad.err")"
}
expect2 "seed 1 is listed twice" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 1,1 --out "$T/x"
expect2 "'a' is not a seed" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 1,a --out "$T/x"
expect2 "--out DIR is required" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 1
expect2 "--index 3 is past the 3 seeds" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0-2 --out "$T/x" --index 3
expect2 "sets run.seed" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0 --out "$T/x" --set run.seed=4
expect2 "--jobs '0'" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0 --out "$T/x" --jobs 0
[ ! -e "$T/x" ] || fail "a refused sweep created its folder"

# 5. A failing seed: the sweep goes on, names it with its exit code, exits 1.
rc=0
"$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0 --out "$T/bad" --set train.genotype=random:x > "$T/badrun.log" 2> "$T/badrun.err" || rc=$?
[ "$rc" = 1 ] || fail "failing seed: exit $rc"
grep -q "seed 0 failed with exit code 2" "$T/badrun.err" || fail "failing seed not named: $(cat "$T/badrun.err")"
grep -q "SEED must be a decimal integer" "$T/bad/seed-0.log" || fail "random:x error: $(cat "$T/bad/seed-0.log")"

# 5b. --stage train over seeds: a fixed cell, no search.
"$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0,1 --out "$T/cell" --stage train --set train.genotype=random:11 \
  --set train.epochs=1 > "$T/cell.log" 2>&1 || { cat "$T/cell.log"; fail "--stage train sweep"; }
for k in 0 1; do
  [ -s "$T/cell/seed-$k/summary.json" ] && [ ! -e "$T/cell/seed-$k/genotype.json" ] || fail "--stage train seed $k searched"
done
expect2 "--stage must be" "$BIN/asap_sweep" "$T/tiny.yaml" --seeds 0 --out "$T/x" --stage both

# 6. Named and random genotypes train through asap_run (AmoebaNet: five nodes, conv_7x1_1x7).
for g in random:7 AmoebaNet NASNet ASAP DARTS_V1; do
  "$BIN/asap_run" "$T/tiny.yaml" --stage train --out "$T/g-${g/:/-}" --set "train.genotype=$g" --set train.epochs=1 \
    > "$T/g.log" 2>&1 || { cat "$T/g.log"; fail "train.genotype=$g"; }
done
grep -q "conv_7x1_1x7" "$T/g-AmoebaNet/summary.json" || fail "AmoebaNet genotype not recorded"

# 7. The report: groups differ in config only (seeds grouped), sample std, every file written.
"$BIN/asap_report" "$T/sw" "$T/int" --out "$T/rep" > "$T/rep.log" 2>&1 || { cat "$T/rep.log"; fail "asap_report"; }
for f in report.md report.csv report.json; do [ -s "$T/rep/$f" ] || fail "report lacks $f"; done
python3 - "$T" <<'PY' || fail "report content"
import json, statistics, sys
t = sys.argv[1]
r = json.load(open(f"{t}/rep/report.json"))
g = {x["name"]: x for x in r["groups"]}
assert set(g) == {f"{t}/sw", f"{t}/int"}, list(g)
sw = g[f"{t}/sw"]
accs = [json.load(open(f"{t}/sw/seed-{k}/summary.json"))["test_accuracy"] for k in range(3)]
assert sw["runs"] == 3 and sorted(sw["seeds"]) == [0, 1, 2], sw
assert abs(sw["test_accuracy"]["mean"] - statistics.mean(accs)) < 1e-12, (sw, accs)
assert abs(sw["test_accuracy"]["std"] - statistics.stdev(accs)) < 1e-12, (sw, accs)  # sample std
assert 1 <= sw["distinct_genotypes"] <= 3
assert all(run["search_epochs"] for run in r["runs"]), "per-run sparsity/epoch-time series"
for run in r["runs"]:  # each run's own figures, as in its summary.json
    own = json.load(open(f"{run['dir']}/summary.json"))
    assert run["train_seconds"] == own["train_seconds"] and run["genotype"] == own["genotype"], (run, own)
md = open(f"{t}/rep/report.md").read()
assert "| group | runs | test accuracy (mean ± std) |" in md and f"| {t}/sw | 3 |" in md, md
csv = open(f"{t}/rep/report.csv").read().splitlines()
assert csv[0].startswith("group,runs,test_accuracy_mean,test_accuracy_std") and len(csv) == 3, csv
PY
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then  # the interpreter asap_report uses
  [ -s "$T/rep/search_time_vs_sparsity.png" ] || fail "no PNG although matplotlib is installed"
else
  grep -q "plot: skipped" "$T/rep.log" || fail "no advice about the missing matplotlib"
fi
rc=0; mkdir -p "$T/empty"; "$BIN/asap_report" "$T/empty" > /dev/null 2> "$T/e.err" || rc=$?
[ "$rc" = 3 ] && grep -q "no run folder" "$T/e.err" || fail "empty report folder: exit $rc $(cat "$T/e.err")"
rc=0; "$BIN/asap_report" "$T/nope" > /dev/null 2> "$T/e.err" || rc=$?
[ "$rc" = 3 ] && grep -q "no such folder" "$T/e.err" || fail "missing report folder: exit $rc"
echo "asap_sweep_e2e: all checks passed"
