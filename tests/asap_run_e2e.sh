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
assert s["cpu_isa"] in ("sse2", "avx2", "avx512"), s  # the CPU kernels' instruction set (kernels/cpu/isa.h)
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
    # The epoch's time split: steps and batch waits are parts of the epoch's wall time.
    assert 0 < l["step_seconds"] <= l["epoch_seconds"] and 0 <= l["data_seconds"], l
    assert l["step_seconds"] + l["data_seconds"] <= l["epoch_seconds"] * 1.0001, l
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
expect 2 "key 'search.epochs' (from --set)" -- "$ASAP_RUN" "$T/tiny.yaml" --set search.epochs=zero
expect 2 "unknown option '--bogus'" -- "$ASAP_RUN" "$T/tiny.yaml" --bogus
expect 2 "a CONFIG file is required" -- "$ASAP_RUN"
expect 2 "ASAP_CPU_ISA=avx9: unknown instruction set" -- env ASAP_CPU_ISA=avx9 "$ASAP_RUN" "$T/tiny.yaml" --out "$T/isa"
[ ! -e "$T/isa" ] || fail "a refused ASAP_CPU_ISA created the run folder"
expect 3 "already holds a run" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/run1"
expect 3 "cifar" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/run3" --set data.dataset=cifar10 --set data.root="$T/nowhere"
expect 3 "no such run folder" -- "$ASAP_RUN" --resume "$T/missing"
touch "$T/afile"
expect 3 "output folder" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/afile/run"
cmp -s "$T/run1/genotype.txt" "$T/run2/genotype.txt" || fail "a refused run touched an existing folder"

# 4. Issue 11: every bad input is one line and the documented exit code before any work.
expect1() {  # like expect, and stderr is exactly one line
  expect "$@"
  [ "$(wc -l < "$T/err.log")" = 1 ] || fail "stderr is not one line: $(cat "$T/err.log")"
}
absent() { [ ! -e "$1" ] || fail "$1 was created by a run that should have stopped first"; }
snapshot() { (cd "$1" && find . -type f ! -name asap_run.lock | sort | xargs sha256sum); }

# No shell: a run folder full of shell syntax is just a name (dot still draws the cells).
odd="$T/x'; touch $T/PWNED; echo '\$(id)"
"$ASAP_RUN" "$T/tiny.yaml" --out "$odd" --stage search --set run.plots=true > "$T/odd.log"
absent "$T/PWNED"
[ -s "$odd/genotype.txt" ] || fail "the run into a folder with quotes in its name did not finish"
if command -v dot > /dev/null; then [ -s "$odd/cell_normal.png" ] || fail "dot did not draw cell_normal.png"; fi

# CONFIG must be a regular file under 1 MiB.
expect1 2 "is a folder, not a config file (to continue a run in it: asap_run --resume" -- "$ASAP_RUN" "$T/run1"
mkfifo "$T/fifo.yaml"
expect1 2 "not a regular file" -- timeout 20 "$ASAP_RUN" "$T/fifo.yaml"
python3 -c "print('# ' + 'x' * (1 << 20))" > "$T/big.yaml"
expect1 2 "at most 1048576 bytes" -- "$ASAP_RUN" "$T/big.yaml"

# Config errors of the train stage are found before the search starts.
expect1 2 "train.epochs" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e0" --set train.epochs=0
absent "$T/e0"
expect1 2 "key 'train.genotype'" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e1" --set "train.genotype=Genotype(normal=[('sep_conv_3x3', 0)"
absent "$T/e1"
expect1 2 "gives no value (from --set)" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e2" --set search.epochs=
expect1 2 "space.primitives' (from --set): an empty list" -- "$ASAP_RUN" "$T/tiny.yaml" --set 'space.primitives=[]'
expect1 2 "-5 is not a cell index in \[0, 3)" -- "$ASAP_RUN" "$T/tiny.yaml" --set 'search.network.reduction_cells=[-5, 99]'
printf 'search:\n  epochs: 3\nrun:\n  seed: 1\nsearch:\n  epochs: 4\n' > "$T/dup.yaml"
expect1 2 "dup.yaml:5: key 'search' appears twice (lines 1 and 5)" -- "$ASAP_RUN" "$T/dup.yaml"

# Data of every stage is checked before any work: missing, empty or mismatched test sets, and
# paths that are not regular files.
cp -r "$T/data" "$T/notest" && rm "$T/notest"/t10k-images-idx3-ubyte*
expect1 3 "t10k-images-idx3-ubyte" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e3" --set data.root="$T/notest"
absent "$T/e3"
python3 "$HERE/make_tiny_idx.py" "$T/emptytest" 256 0 16
expect1 3 "the test set holds no images" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e4" --set data.root="$T/emptytest"
absent "$T/e4"
python3 "$HERE/make_tiny_idx.py" "$T/d12" 64 20 12
cp -r "$T/data" "$T/mixed" && cp "$T/d12"/t10k-* "$T/mixed/"
expect1 3 "test images are 1x12x12 but train images 1x16x16" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e5" --set data.root="$T/mixed"
cp -r "$T/data" "$T/dirdata" && rm "$T/dirdata"/train-images-idx3-ubyte* && mkdir "$T/dirdata/train-images-idx3-ubyte.gz"
expect1 3 "not a regular file (a folder)" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e6" --set data.root="$T/dirdata"
cp -r "$T/data" "$T/fifodata" && rm "$T/fifodata"/train-labels-idx1-ubyte* && mkfifo "$T/fifodata/train-labels-idx1-ubyte.gz"
expect1 3 "not a regular file (a FIFO)" -- timeout 20 "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e7" --set data.root="$T/fifodata"
expect1 3 "data folder $T/afile: not a folder" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/e8" --set data.root="$T/afile"

# Resume runs what the folder recorded; a changed key is refused, listing it.
expect1 2 "changes run.seed of the recorded" -- "$ASAP_RUN" --resume "$T/run2" --set run.seed=99
expect1 2 "changes search.epochs, train.batch_size of the recorded" -- "$ASAP_RUN" "$T/tiny.yaml" --resume "$T/run2" --set search.epochs=9 --set train.batch_size=8

# Resuming a finished run verifies it, reports, and changes nothing (allowed keys may differ).
before=$(snapshot "$T/run1")
"$ASAP_RUN" --resume "$T/run1" --set run.threads=1 > "$T/done.log"
grep -q "is complete (all); checkpoints verified, test accuracy" "$T/done.log" || fail "finished run not reported: $(cat "$T/done.log")"
[ "$before" = "$(snapshot "$T/run1")" ] || fail "resuming a finished run changed its files"

# Checkpoints are verified: one flipped data byte is refused by name.
cp -r "$T/run1" "$T/flip"
python3 - "$T/flip/checkpoints/train.safetensors" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-5] ^= 0x01; open(p, "wb").write(b)
PY
expect1 3 "train.safetensors': checksum mismatch\|train.safetensors: checksum mismatch" -- "$ASAP_RUN" --resume "$T/flip"

# Nothing written is lost: a folder with run files but no checkpoints is never reused, and a
# finished run whose search checkpoint is gone is not searched again over its results.
cp -r "$T/run1" "$T/nockpt" && rm -r "$T/nockpt/checkpoints"
expect1 3 "already holds a run (config.yaml, metrics.jsonl" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/nockpt"
expect1 3 "search.safetensors is missing but" -- "$ASAP_RUN" --resume "$T/nockpt"
cp -r "$T/run1" "$T/nosearch" && rm "$T/nosearch/checkpoints/search.safetensors"
expect1 3 "search.safetensors is missing but" -- "$ASAP_RUN" --resume "$T/nosearch"
cmp -s "$T/run1/metrics.jsonl" "$T/nosearch/metrics.jsonl" || fail "a refused resume changed metrics.jsonl"
# Stale temporaries of a crashed write are removed at start.
cp -r "$T/run1" "$T/stale"
touch "$T/stale/checkpoints/train.safetensors.tmp.99999.0" "$T/stale/summary.json.tmp.99999"
"$ASAP_RUN" --resume "$T/stale" > "$T/stale.log"
grep -q "removed .*train.safetensors.tmp.99999.0" "$T/stale.log" || fail "stale temporary not reported"
[ -z "$(find "$T/stale" -name '*.tmp.*')" ] || fail "stale temporaries left behind"

# One writer per folder; SIGTERM and SIGINT finish the current write, say how to resume, and
# exit 143 / 130.
wait_lines() {  # wait_lines FILE N: until FILE has N lines (60 s at most)
  for _ in $(seq 600); do
    [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "$1 never reached $2 lines"
}
long=(--set search.epochs=60 --set search.stop_when_converged=false)
"$ASAP_RUN" "$T/tiny.yaml" --out "$T/long" "${long[@]}" > "$T/long.log" 2> "$T/long.err" &
pid=$!
wait_lines "$T/long/metrics.jsonl" 1
expect1 3 "run folder $T/long is in use by another asap_run (PID $pid)" -- "$ASAP_RUN" --resume "$T/long"
expect1 3 "in use by another asap_run (PID $pid)" -- "$ASAP_RUN" "$T/tiny.yaml" --out "$T/long" "${long[@]}"
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" = 143 ] || fail "SIGTERM: exit $rc, expected 143 ($(cat "$T/long.err"))"
grep -q "^asap_run: interrupted at epoch [0-9]* step [0-9]* (search stage); resume with: asap_run --resume $T/long\$" "$T/long.err" \
  || fail "SIGTERM message: $(cat "$T/long.err")"
n=$(wc -l < "$T/long/metrics.jsonl")
"$ASAP_RUN" --resume "$T/long" > "$T/long2.log" 2> "$T/long2.err" &
pid=$!
wait_lines "$T/long/metrics.jsonl" $((n + 1))
kill -INT "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" = 130 ] || fail "SIGINT: exit $rc, expected 130 ($(cat "$T/long2.err"))"
grep -q "resumed search at epoch" "$T/long2.log" || fail "the resume after SIGTERM did not continue the search"
grep -q "interrupted at epoch .*resume with: asap_run --resume $T/long" "$T/long2.err" || fail "SIGINT message"
python3 - "$T/long/metrics.jsonl" <<'PY' || fail "metrics.jsonl after two interruptions"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["epoch"] for l in lines] == list(range(len(lines))), [l["epoch"] for l in lines]
PY
echo "asap_run end-to-end: all checks passed"
