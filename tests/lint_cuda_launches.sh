#!/usr/bin/env bash
# The counts in kernels/cuda/stats.h are only exact if nothing bypasses the helpers: kernels are
# launched only through ASAP_LAUNCH (kernels/cuda/launch.cuh), and the host waits for the device
# or copies through kernels/cuda/host_sync.h. A line that must call the runtime directly says
# why with a trailing `// counted: ...` comment.
# Usage: lint_cuda_launches.sh SOURCE_DIR
set -euo pipefail
cd "$1"
status=0
files=$(ls kernels/cuda/*.cu kernels/cuda/*.cuh kernels/cuda/*.h kernels/cuda/*.cpp 2>/dev/null)
bad=$(grep -n '<<<' $files | grep -v '^kernels/cuda/launch.cuh:' | grep -v '^[^:]*:[0-9]*: *//' || true)
if [ -n "$bad" ]; then
  echo "kernel launched without ASAP_LAUNCH (uncounted):"; echo "$bad"; status=1
fi
bad=$(grep -nE '\b(cudaStreamSynchronize|cudaDeviceSynchronize|cudaEventSynchronize|cudaMemcpy|cudaMemcpyAsync|cudaMemcpy2DAsync)\(' $files \
      | grep -v '^kernels/cuda/host_sync.h:' | grep -v '// counted:' || true)
if [ -n "$bad" ]; then
  echo "host sync or copy outside kernels/cuda/host_sync.h (uncounted):"; echo "$bad"; status=1
fi
[ "$status" -eq 0 ] && echo "lint: every launch, sync and copy in kernels/cuda is counted"
exit "$status"
