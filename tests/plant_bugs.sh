#!/usr/bin/env bash
# Proves that the emulated CUDA tests catch real kernel bugs: plants, one at a time, in a scratch
# copy of the repository (a git worktree of HEAD, never the caller's tree),
#   1. a removed barrier in the block reduction (kernels/cuda/common.cuh, block_sum),
#   2. an off-by-one in the depthwise forward tile origin (kernels/cuda/dwconv.cu),
#   3. a wrong transpose in the 1x1 data-gradient GEMM (kernels/cuda/pwconv.cu),
# rebuilds the emulation build incrementally and runs `ctest -L cuda-emu`; each plant must make
# it fail (CI shows the unplanted tree passes). Prints which tests caught each bug.
# Usage: tests/plant_bugs.sh [SCRATCH_DIR]     (about 10 minutes on 2 cores)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=${1:-$(mktemp -d)/asap-plant}
git -C "$ROOT" worktree add --detach "$S" HEAD >/dev/null
trap 'git -C "$ROOT" worktree remove --force "$S" >/dev/null 2>&1 || true' EXIT
cd "$S"
cmake -S . -B build-emu -G Ninja -DASAP_CUDA_EMU=ON -DASAP_BUILD_BENCHMARKS=OFF >/dev/null
ninja -C build-emu -j"$(nproc)" asap_tests asap_run >/dev/null

# plant NAME FILE PYTHON-REPLACEMENT(old -> new, must match exactly once)
plant() {
  local name=$1 file=$2 old=$3 new=$4
  python3 - "$file" "$old" "$new" <<'PY'
import sys
f, old, new = sys.argv[1:]
s = open(f).read()
assert s.count(old) == 1, f"{f}: pattern found {s.count(old)} times"
open(f, "w").write(s.replace(old, new))
PY
  ninja -C build-emu -j"$(nproc)" asap_tests asap_run >/dev/null
  if ctest --test-dir build-emu -L cuda-emu -j"$(nproc)" --timeout 900 --stop-on-failure > "ctest-$name.log" 2>&1; then
    echo "NOT CAUGHT: $name"; git checkout -- "$file"; return 1
  fi
  echo "caught: $name by:"; grep -E "\*\*\*Failed|Failed  |Exception" "ctest-$name.log" | sed 's/^/    /'
  git checkout -- "$file"
}

status=0
plant barrier kernels/cuda/common.cuh \
  $'  if (lane == 0) shared[wid] = v;\n  __syncthreads();\n  const int nw = blockDim.x >> 5;\n  T r = lane < nw ? shared[lane] : T(0);' \
  $'  if (lane == 0) shared[wid] = v;\n  const int nw = blockDim.x >> 5;\n  T r = lane < nw ? shared[lane] : T(0);' || status=1
plant dw_tile_origin kernels/cuda/dwconv.cu \
  'const int ih0 = oh0 * s.stride - s.pad, iw0 = ow0 * s.stride - s.pad;' \
  'const int ih0 = oh0 * s.stride - s.pad, iw0 = ow0 * s.stride - s.pad + 1;' || status=1
plant gemm_transpose kernels/cuda/pwconv.cu \
  'sgemm_strided_batched(CUBLAS_OP_N, CUBLAS_OP_T, (int)HW, C, O, 1.f,' \
  'sgemm_strided_batched(CUBLAS_OP_N, CUBLAS_OP_N, (int)HW, C, O, 1.f,' || status=1
exit $status
