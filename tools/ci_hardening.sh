#!/usr/bin/env bash
# Hardening checks (docs/reliability.md), called by .ci/run after the normal tests:
#   1. the CPU test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan),
#      run through CTest; any sanitizer report fails it;
#   2. the libFuzzer targets in fuzz/ (build-fuzz, clang), each run for a bounded time from its
#      committed seed corpus; any crash, sanitizer report, leak, timeout or OOM fails it.
# Installs what it needs (Debian packages, only when missing). Knobs (environment):
#   ASAP_FUZZ_SECONDS  seconds per fuzz target (default 30; 0 skips fuzzing)
#   ASAP_ASAN_EXCLUDE  CTest -E regex of tests left out of the sanitizer run (default: crash_resume,
#                      which the normal test run already covers and which takes ~4 min under ASan;
#                      set it empty to run everything)
#   ASAP_HARDENING     "asan", "fuzz" or "all" (default)
#   ASAP_JOBS          parallel jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${ASAP_FUZZ_SECONDS:-30}
ASAN_EXCLUDE=${ASAP_ASAN_EXCLUDE-crash_resume}
WHAT=${ASAP_HARDENING:-all}
JOBS=${ASAP_JOBS:-$(nproc)}
T_START=$(date +%s)
since() { echo $(( $(date +%s) - $1 )); }

# ------------------------------------------------------------------ dependencies
bash tools/install_deps.sh clang libclang-rt-dev libomp-dev

# Sanitizers: stop at the first report so it fails the test instead of scrolling past.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Spinning OpenMP barriers on an oversubscribed 2-core runner cost 10x; results do not change.
export OMP_WAIT_POLICY=passive

# ------------------------------------------------------------------ 1. ASan + UBSan test suite
if [ "$WHAT" = all ] || [ "$WHAT" = asan ]; then
  echo "== sanitizer build (ASan + UBSan, build-asan) =="
  t0=$(date +%s)
  # -O1: sanitizer reports stay precise and the suite stays fast enough; asserts stay on.
  cmake -S . -B build-asan -G Ninja -DASAP_CUDA=OFF -DASAP_SANITIZE=ON -DASAP_BUILD_BENCHMARKS=OFF -DASAP_CPU_ISA_VARIANTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" >/dev/null
  ninja -C build-asan -j"$JOBS"
  echo "sanitizer build: $(since "$t0") s"
  t0=$(date +%s)
  exclude=()
  [ -n "$ASAN_EXCLUDE" ] && exclude=(-E "$ASAN_EXCLUDE")
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 900 "${exclude[@]}"
  echo "sanitizer tests: $(since "$t0") s"
fi

# ------------------------------------------------------------------ 2. fuzz targets
if { [ "$WHAT" = all ] || [ "$WHAT" = fuzz ]; } && [ "$FUZZ_SECONDS" -gt 0 ]; then
  echo "== fuzz targets (libFuzzer + ASan + UBSan, build-fuzz) =="
  t0=$(date +%s)
  CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja >/dev/null
  ninja -C build-fuzz -j"$JOBS"
  echo "fuzz build: $(since "$t0") s"
  t0=$(date +%s)
  targets=(fuzz_idx fuzz_cifar fuzz_safetensors fuzz_config fuzz_genotype fuzz_checkpoint)
  work=build-fuzz/work
  rm -rf "$work" && mkdir -p "$work" build-fuzz/artifacts
  run_one() {  # target -> log in $work/<target>.log, exit status of the fuzzer
    local t=$1 name=${1#fuzz_}
    local dict=()
    [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
    mkdir -p "$work/$name"
    # New inputs go to the scratch corpus (first folder); the committed seeds stay untouched.
    "build-fuzz/$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$name-" "${dict[@]}" "$work/$name" "fuzz/corpus/$name" \
      >"$work/$t.log" 2>&1
  }
  # $JOBS targets at a time; each uses one core.
  pids=() fail=0
  for t in "${targets[@]}"; do
    run_one "$t" & pids+=("$!:$t")
    if [ "${#pids[@]}" -ge "$JOBS" ]; then
      for pt in "${pids[@]}"; do wait "${pt%%:*}" || { echo "FAIL ${pt#*:}"; fail=1; }; done
      pids=()
    fi
  done
  for pt in "${pids[@]}"; do wait "${pt%%:*}" || { echo "FAIL ${pt#*:}"; fail=1; }; done
  printf '%-18s %12s %10s %8s\n' target executions exec/s corpus
  for t in "${targets[@]}"; do
    log="$work/$t.log"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(( $(ls "$work/${t#fuzz_}" | wc -l) + $(ls "fuzz/corpus/${t#fuzz_}" | wc -l) ))
    printf '%-18s %12s %10s %8s\n' "$t" "${runs:-?}" "${rate:-?}" "$corpus"
    if grep -q 'ERROR: \|SUMMARY: \|deadly signal\|fuzz invariant failed' "$log"; then
      echo "---- $t found a problem (input saved under build-fuzz/artifacts/):"
      grep -B2 -A30 'ERROR: \|fuzz invariant failed\|deadly signal' "$log" | head -60
      fail=1
    fi
  done
  echo "fuzzing: $(since "$t0") s"
  [ "$fail" -eq 0 ] || { echo "fuzzing found crashes"; exit 1; }
fi
echo "hardening checks passed in $(since "$T_START") s"
