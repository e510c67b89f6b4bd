#!/usr/bin/env bash
# End-to-end checks of asap_run on a tiny generated dataset: a full run and its run folder,
# resume of a finished search, exit codes and one-line errors for bad input.
# Usage: asap_run_e2e.sh PATH/TO/asap_run
set -euo pipefail
ASAP_RUN=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=2
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$HERE/make_tiny_idx.py" "$T/data" 256 100 16
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
  threads: 2
  progress: false
  plots: false
YAML

# 1. A full run writes the whole run folder.
"$ASAP_RUN" "$T/tiny.yaml" --out "$T/run1" > "$T/run1.log"
for f in config.yaml metrics.jsonl prune_events.jsonl genotype.txt genotype.json cell_normal.dot \
         cell_reduce.dot summary.json checkpoints/search.safetensors checkpoints/train.safetensors; do
  [ -s "$T/run1/$f" ] || [ "$f" = prune_events.jsonl ] || fail "run folder lacks $f"
done
grep -q "^Genotype(normal=\[" "$T/run1/genotype.txt" || fail "genotype.txt is not DARTS text"
python3 - "$T/run1" <<'PY' || fail "summary/metrics content"
import json, sys
run = sys.argv[1]
s = json.load(open(f"{run}/summary.json"))
assert 0.0 <= s["test_accuracy"] <= 1.0, s
assert s["parameters"] > 0 and s["search_seconds"] > 0 and s["train_seconds"] > 0, s
lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
search = [l for l in lines if l["stage"] == "search"]
train = [l for l in lines if l["stage"] == "train"]
assert [l["epoch"] for l in search] == list(range(len(search))) and search, lines
assert [l["epoch"] for l in train] == [0, 1], lines
sp = [l["sparsity"] for l in search]
assert sp == sorted(sp), sp  # sparsity never falls
for l in search:
    for k in ("epoch_seconds", "train_loss", "train_acc", "val_loss", "val_acc", "sparsity", "alive_ops", "T", "theta", "peak_mem_mb"):
        assert k in l, (k, l)
assert "val_acc" in train[-1]
PY

# 2. Same seed, same genotype (CPU determinism), and --stage search then --resume finishes the run.
"$ASAP_RUN" "$T/tiny.yaml" --out "$T/run2" --stage search > "$T/run2.log"
cmp -s "$T/run1/genotype.txt" "$T/run2/genotype.txt" || fail "same seed gave a different genotype"
"$ASAP_RUN" --resume "$T/run2" > "$T/run2b.log"
grep -q "resumed search" "$T/run2b.log" || fail "resume did not pick up the search checkpoint"
cmp -s "$T/run1/genotype.txt" "$T/run2/genotype.txt" || fail "resume changed the genotype"
python3 - "$T/run1" "$T/run2" <<'PY' || fail "resumed run differs from the uninterrupted one"
import json, sys
a = json.load(open(sys.argv[1] + "/summary.json")); b = json.load(open(sys.argv[2] + "/summary.json"))
assert a["test_accuracy"] == b["test_accuracy"], (a, b)
PY

# 3. Bad input: one line on stderr naming the problem, a non-zero exit, nothing overwritten.
expect() {  # expect CODE PATTERN -- command...
  local code=$1 pat=$2; shift 3
  set +e; "$@" > "$T/out.log" 2> "$T/err.log"; local rc=$?; set -e
  [ "$rc" = "$code" ] || fail "expected exit $code, got $rc: $* ($(cat "$T/err.log"))"
  grep -q -- "$pat" "$T/err.log" || fail "stderr lacks '$pat': $(cat "$T/err.log")"
}
printf 'search:\n  epohcs: 3\n' > "$T/typo.yaml"
expect 2 "typo.yaml:2: key 'search.epohcs': unknown key" -- "$ASAP_RUN" "$T/typo.yaml"
printf 'search:\n  epochs: [3\n' > "$T/syntax.yaml"
expect 2 "YAML syntax error" -- "$ASAP_RUN" "$T/syntax.yaml"
expect 2 "search.epochs" -- "$ASAP_RUN" "$T/tiny.yaml" --set search.epochs=zero
expect 2 "unknown option '--bogus'" -- "$ASAP_RUN" "$T/tiny.yaml" --bogus
expect 2 "a CONFIG file is required" -- "$ASAP_RUN"
expect 3 "already holds a run" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/run1"
expect 3 "cifar" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/run3" --set data.dataset=cifar10 --set data.root="$T/nowhere"
expect 3 "no such run folder" -- "$ASAP_RUN" --resume "$T/missing"
touch "$T/afile"
expect 3 "output folder" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/afile/run"
cmp -s "$T/run1/genotype.txt" "$T/run2/genotype.txt" || fail "a refused run touched an existing folder"
echo "asap_run end-to-end: all checks passed"
