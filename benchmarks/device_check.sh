#!/usr/bin/env bash
# The ONE script to run on the GPU machine (H200, sm_90). From the repository root:
#   benchmarks/device_check.sh            # build (or use a carried build), test, sanitize, benchmark
#   benchmarks/device_check.sh --pack     # run HERE after building build-cuda: stage binaries + their
#                                         # non-CUDA shared libraries into build-cuda/device-bin so a
#                                         # device run can skip the build (carry build-cuda/device-bin)
# Stages (each with its own timeout, all inside a 4-minute budget: a lent GPU machine gives about
# 15 minutes, and starting it costs minutes of that):
#   1 build    configure + build with -DASAP_CUDA=ON (cuDNN from the toolkit or the nvidia-cudnn wheel),
#              skipped when a carried build-cuda/device-bin runs here
#   2 tests    the tests the CUDA emulator already proves on the CPU, first: asap_tests "[cuda]"
#              (CUDA vs CPU, every op and gradient) and "[cuda-step]" (the whole search step), then
#              the conv tests again with ASAP_CONV_ALGO=im2col so both general-conv paths are checked
#   3 memcheck compute-sanitizer --tool memcheck on one small [cuda] test
#   3b nccl    asap_dist_tests "[nccl]": the NCCL communicator at world size 1 (built with MPI + NCCL)
#   4 kernels  gpu_kernel_bench: GB/s and % of measured d2d cudaMemcpy bandwidth (L2 flushed)
#   5 step     tools' asap_bench on the gpu-darts configuration, if that binary exists
# Writes $OUT/device_check.log, $OUT/device_check.json (+ kernel_bench.json, asap_bench.jsonl) where
# OUT defaults to ./device-out; prints a short table last.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# ---------------------------------------------------------------- pack mode (no GPU needed)
if [ "${1:-}" = "--pack" ]; then
  B=${2:-build-cuda}
  D="$B/device-bin"
  rm -rf "$D" && mkdir -p "$D/bin" "$D/lib"
  for exe in tests/asap_tests tests/asap_dist_tests benchmarks/gpu_kernel_bench tools/asap_bench tools/asap_run; do
    [ -x "$B/$exe" ] && cp "$B/$exe" "$D/bin/"
  done
  find "$B" -path "$D" -prune -o -name '*.so' -print | while read -r so; do cp -L "$so" "$D/lib/"; done
  # Non-system, non-CUDA dependencies (OpenBLAS, yaml-cpp, gfortran, gomp ...). CUDA libraries come
  # from the device's toolkit / Python wheels: they are large and must match its driver anyway.
  for f in "$D"/bin/* "$D"/lib/*; do
    LD_LIBRARY_PATH="$D/lib" ldd "$f" 2>/dev/null | awk '/=> \//{print $1" "$3}'
  done | sort -u | while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*) continue ;;
      libcuda*|libcudart*|libcublas*|libcudnn*|libnvrtc*|libnvJitLink*|libcupti*) continue ;;
    esac
    [ -e "$D/lib/$name" ] || cp -L "$path" "$D/lib/$name"
  done
  du -sh "$D"
  echo "carry: $D   (then run: benchmarks/device_check.sh)"
  exit 0
fi

# ---------------------------------------------------------------- device mode
OUT=${OUT:-$ROOT/device-out}
mkdir -p "$OUT"
LOG="$OUT/device_check.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
BUDGET=${ASAP_CHECK_BUDGET_S:-230}   # seconds; the whole check must end within 4 minutes
T0=$(date +%s)
NAMES=()
STATUS=()
SECS=()
NOTES=()
elapsed() { echo $(($(date +%s) - T0)); }
# Stage timeout: its own cap, but never past the budget (leaving 10 s for the summary).
cap() { local want=$1 left=$((BUDGET - $(elapsed) - 10)); [ "$left" -lt "$want" ] && want=$left; [ "$want" -lt 1 ] && want=1; echo "$want"; }
record() { NAMES+=("$1"); STATUS+=("$2"); SECS+=("$3"); NOTES+=("$4"); }
# run_stage NAME CAP_S NOTE -- command...
run_stage() {
  local name=$1 capw=$2 note=$3
  shift 4
  local t=$(cap "$capw") s=$(date +%s) rc
  echo "=== [$name] (timeout ${t}s): $*"
  timeout --kill-after=5 "$t" "$@"
  rc=$?
  local d=$(($(date +%s) - s)) st=ok
  [ $rc -ne 0 ] && st="FAIL(rc=$rc)"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && st="TIMEOUT"
  record "$name" "$st" "$d" "$note"
  return $rc
}

# run_stage_out NAME CAP_S NOTE FILE -- command...: as run_stage, stdout also saved to FILE; the
# status is the command's own, never the tee's.
run_stage_out() {
  local name=$1 capw=$2 note=$3 file=$4
  shift 5
  local t=$(cap "$capw") s=$(date +%s) rc
  echo "=== [$name] (timeout ${t}s): $*"
  timeout --kill-after=5 "$t" "$@" | tee "$file"
  rc=${PIPESTATUS[0]}
  local d=$(($(date +%s) - s)) st=ok
  [ $rc -ne 0 ] && st="FAIL(rc=$rc)"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && st="TIMEOUT"
  record "$name" "$st" "$d" "$note"
  return $rc
}

# Summary: JSON + short table, printed last; runs on any exit (also when a stage is killed).
PYTABLE='import json, sys
d = json.load(open(sys.argv[1]))
for k in d["kernels"]:
    print(f"{k[\"name\"]:<42} {k[\"ms\"]:9.4f} ms {k[\"gbs\"]:8.1f} GB/s {k[\"pct_copy\"]:6.1f} %")'
summary() {
  {
    echo "{\"date\": \"$(date -u +%FT%TZ)\", \"elapsed_s\": $(elapsed), \"gpu\": \"$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)\", \"stages\": ["
    for i in "${!NAMES[@]}"; do
      sep=","; [ "$i" -eq $((${#NAMES[@]} - 1)) ] && sep=""
      echo "  {\"stage\": \"${NAMES[$i]}\", \"status\": \"${STATUS[$i]}\", \"seconds\": ${SECS[$i]}, \"note\": \"${NOTES[$i]//\"/\'}\"}$sep"
    done
    echo "]}"
  } >"$OUT/device_check.json"
  echo
  if [ -f "$OUT/kernel_bench.json" ]; then
    echo "=== kernel bandwidth (GB/s on minimum bytes, % of d2d cudaMemcpy)"
    python3 -c "$PYTABLE" "$OUT/kernel_bench.json" || true
  fi
  if [ -f "$OUT/asap_bench.jsonl" ]; then
    echo "=== asap_bench (one JSON line per sparsity)"
    cat "$OUT/asap_bench.jsonl"
  fi
  echo
  echo "=== device_check summary ($(elapsed) s, log: $LOG)"
  printf '%-14s %-14s %6s  %s\n' stage status secs note
  local failed=0
  for i in "${!NAMES[@]}"; do
    printf '%-14s %-14s %6s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "${NOTES[$i]}"
    case "${STATUS[$i]}" in FAIL*|TIMEOUT) failed=1 ;; esac
  done
  return $failed
}
trap 'summary; exit $?' EXIT

echo "=== device_check $(date -u +%FT%TZ) in $ROOT"
if nvidia-smi -L 2>/dev/null; then
  record gpu ok 0 "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
else
  record gpu "FAIL(no GPU)" 0 "nvidia-smi found no GPU: the [cuda] tests will only print SKIPPED"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>/dev/null || true

# CUDA / cuDNN / cuBLAS libraries from the toolkit and from Python's nvidia-* wheels.
export PATH="/usr/local/cuda/bin:/usr/local/cuda/compute-sanitizer:$PATH"
NV=$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
LIBDIRS="/usr/local/cuda/lib64"
if [ -n "$NV" ] && [ -d "$NV" ]; then
  LIBDIRS="$LIBDIRS:$(find "$NV" -maxdepth 4 \( -name 'libcudnn*.so*' -o -name 'libcublas*.so*' \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)"
fi
CUDNN_ROOT=""
if [ ! -f /usr/local/cuda/include/cudnn.h ]; then
  CUDNN_ROOT=$(python3 -c 'import nvidia.cudnn as m, os; print(os.path.dirname(m.__file__) if getattr(m, "__file__", None) else list(m.__path__)[0])' 2>/dev/null || true)
  if [ -z "$CUDNN_ROOT" ] && [ -n "$NV" ]; then
    h=$(find "$NV" -maxdepth 4 -name cudnn.h 2>/dev/null | head -1)
    [ -n "$h" ] && CUDNN_ROOT=$(dirname "$(dirname "$h")")
  fi
fi
echo "cuDNN root: ${CUDNN_ROOT:-toolkit (/usr/local/cuda)}"

# ---- stage 1: binaries (carried, else build here)
BIN=""
PRE="$ROOT/build-cuda/device-bin"
if [ -x "$PRE/bin/asap_tests" ]; then
  export LD_LIBRARY_PATH="$PRE/lib:$LIBDIRS:${LD_LIBRARY_PATH:-}"
  # Catch2 v2 exits with the number of tests listed; a loader failure exits 127.
  timeout 30 "$PRE/bin/asap_tests" "[cuda]" --list-test-names-only >/dev/null 2>&1
  lrc=$?
  if [ "$lrc" -lt 124 ]; then
    BIN="$PRE/bin"
    record build "carried" 0 "using $PRE"
    echo "using carried binaries in $PRE"
  else
    echo "carried binaries do not run here (missing libraries?): building"
    ldd "$PRE/bin/asap_tests" | grep 'not found' || true
  fi
fi
if [ -z "$BIN" ]; then
  B="$ROOT/build-device"
  export LD_LIBRARY_PATH="$LIBDIRS:${LD_LIBRARY_PATH:-}"
  run_stage configure 90 "cmake -DASAP_CUDA=ON sm_90" -- cmake -S "$ROOT" -B "$B" -G Ninja -DASAP_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release ${CUDNN_ROOT:+-DCUDNN_ROOT=$CUDNN_ROOT}
  TARGETS="asap_tests"
  for t in gpu_kernel_bench asap_bench asap_dist_tests; do
    ninja -C "$B" -t targets all 2>/dev/null | grep -q "^$t:" && TARGETS="$TARGETS $t"
  done
  run_stage build 300 "ninja $TARGETS" -- ninja -C "$B" -j"$(nproc)" $TARGETS
  mkdir -p "$B/device-bin-links"
  for f in tests/asap_tests tests/asap_dist_tests benchmarks/gpu_kernel_bench tools/asap_bench; do
    [ -x "$B/$f" ] && ln -sf "$B/$f" "$B/device-bin-links/$(basename "$f")"
  done
  BIN="$B/device-bin-links"
  export LD_LIBRARY_PATH="$(find "$B" -name '*.so' -printf '%h\n' | sort -u | paste -sd:):$LD_LIBRARY_PATH"
  # Harness not wired into CMake yet: build it directly against the engine library.
  if [ ! -x "$BIN/gpu_kernel_bench" ] && [ -f "$B/engine/libasap_engine.so" ]; then
    run_stage build_bench 120 "nvcc gpu_kernel_bench.cu" -- nvcc -std=c++17 -O3 -arch=sm_90 -I"$ROOT" \
      -DASAP_WITH_CUDA "$ROOT/benchmarks/gpu_kernel_bench.cu" -o "$B/gpu_kernel_bench" \
      -L"$B/engine" -lasap_engine -lcudart -Xlinker -rpath="$B/engine" && ln -sf "$B/gpu_kernel_bench" "$BIN/"
  fi
fi

# cuDNN: compiled into the binaries (they link it), and which version.
CUDNN_LINKED=no
[ -x "$BIN/asap_tests" ] && ldd "$BIN/asap_tests" 2>/dev/null | grep -q libcudnn && CUDNN_LINKED=yes
[ -n "${B:-}" ] && [ -f "$B/engine/libasap_engine.so" ] && ldd "$B/engine/libasap_engine.so" | grep -q libcudnn && CUDNN_LINKED=yes
for so in "$PRE/lib/libasap_engine.so"; do
  [ -f "$so" ] && LD_LIBRARY_PATH="$PRE/lib:$LIBDIRS" ldd "$so" 2>/dev/null | grep -q libcudnn && CUDNN_LINKED=yes
done
CUDNN_VERSION=unknown
for h in "${CUDNN_ROOT:+$CUDNN_ROOT/include/cudnn_version.h}" /usr/local/cuda/include/cudnn_version.h; do
  if [ -n "$h" ] && [ -f "$h" ]; then
    CUDNN_VERSION=$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{v=v (v?".":"") $3} END{print v}' "$h")
    break
  fi
done
echo "cuDNN compiled in: $CUDNN_LINKED (headers: $CUDNN_VERSION)"
record cudnn "$CUDNN_LINKED" 0 "cuDNN linked: $CUDNN_LINKED, version $CUDNN_VERSION"

# ---- stage 2: CUDA vs CPU tests, those the emulator proves first
if [ -x "$BIN/asap_tests" ]; then
  run_stage tests 90 "asap_tests [cuda] (emulation-proven), conv algo default" -- "$BIN/asap_tests" "[cuda]" --durations yes
  run_stage tests_step 60 "asap_tests [cuda-step]: the search step vs the CPU" -- "$BIN/asap_tests" "[cuda-step]"
  run_stage tests_im2col 30 "conv tests, ASAP_CONV_ALGO=im2col" -- \
    env ASAP_CONV_ALGO=im2col "$BIN/asap_tests" "cuda: conv2d paths*"
  # ---- stage 3: memory checker on one small test
  if command -v compute-sanitizer >/dev/null; then
    run_stage memcheck 45 "compute-sanitizer memcheck, sep block test" -- compute-sanitizer --tool memcheck \
      --error-exitcode 3 "$BIN/asap_tests" "cuda: fused separable block matches the CPU"
  else
    record memcheck "skipped" 0 "compute-sanitizer not found"
  fi
else
  record tests "FAIL" 0 "no asap_tests binary"
fi

# ---- stage 3b: the NCCL communicator at world size 1 (a singleton MPI process; docs/distributed.md)
if [ -x "$BIN/asap_dist_tests" ]; then
  run_stage nccl 30 "asap_dist_tests [nccl], world size 1" -- "$BIN/asap_dist_tests" "[nccl]" --warn NoTests
else
  record nccl "skipped" 0 "asap_dist_tests not built (no MPI or no NCCL in this build)"
fi

# ---- stage 4: kernel bandwidth
if [ -x "$BIN/gpu_kernel_bench" ]; then
  run_stage kernels 40 "gpu_kernel_bench, L2 flushed, median of 20" -- "$BIN/gpu_kernel_bench" --json "$OUT/kernel_bench.json"
else
  record kernels "skipped" 0 "gpu_kernel_bench not built"
fi

# ---- stage 5: search-step benchmark
if [ -x "$BIN/asap_bench" ]; then
  run_stage_out step 60 "asap_bench gpu-darts" "$OUT/asap_bench.jsonl" -- "$BIN/asap_bench" --device cuda --C 16 \
    --layers 8 --batch 64 --hw 32 --cin 3 --steps 10 --sparsity 0,0.43,0.71,0.86
else
  record step "skipped" 0 "tools/asap_bench not built"
fi

# The EXIT trap prints the summary and sets the exit status (1 if any stage failed).
