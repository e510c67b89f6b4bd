#!/usr/bin/env bash
# Rehearses, on a machine without a GPU, the carried-binary route of device_check.sh: the GPU
# image has nvcc, cmake, ninja and PyTorch but none of our Debian -dev packages (Catch2, OpenBLAS,
# yaml-cpp, ...). Packs the CUDA build (device_check.sh --pack), then runs the packed binaries in
# a chroot holding ONLY the pack, glibc/libstdc++/libgcc (every image has them) and the CUDA
# toolkit's runtime libraries (the image's toolkit) - no build dependency, no /usr/lib. The
# binaries must load and pass the CPU-vs-CPU harness; the [cuda] cases report SKIPPED (no driver
# in the chroot), which proves they would reach the device on the GPU machine.
# Usage (as root, from the repository root, after `ninja -C build-cuda`):
#   benchmarks/rehearse_carry.sh [build-cuda]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
B=${1:-build-cuda}
[ -x "$B/tests/asap_tests" ] || { echo "rehearse_carry: $B/tests/asap_tests not built" >&2; exit 2; }
bash benchmarks/device_check.sh --pack "$B" >/dev/null
D="$B/device-bin"
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
mkdir -p "$R/carry" "$R/usr/local/cuda/lib64" "$R/lib/x86_64-linux-gnu" "$R/lib64" "$R/tmp"
cp -a "$D/." "$R/carry/"
# Whatever the packed files need from outside the pack: base system or CUDA toolkit, nothing else.
status=0
for f in "$D"/bin/* "$D"/lib/*; do
  LD_LIBRARY_PATH="$D/lib:/usr/local/cuda/lib64" ldd "$f" 2>/dev/null | awk '/=> \//{print $1" "$3}'
done | sort -u | while read -r name path; do
  [ -e "$D/lib/$name" ] && continue
  case "$name" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libstdc++*|libgcc_s*|libz.so*) cp -L "$path" "$R/lib/x86_64-linux-gnu/" ;;
    libcuda.so*) ;;  # the driver: only on the GPU machine
    libcudart*|libcublas*|libcudnn*|libnvrtc*|libnvJitLink*|libcupti*) cp -L "$path" "$R/usr/local/cuda/lib64/" ;;
    *) echo "NOT CARRIED: $name ($path) - the GPU image would not have it"; exit 1 ;;
  esac
done || status=1
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
if [ "$status" -ne 0 ]; then exit 1; fi
echo "chroot: $(du -sh "$R" | cut -f1) (pack $(du -sh "$D" | cut -f1)); running the carried asap_tests"
LD_LIBRARY_PATH=/carry/lib:/usr/local/cuda/lib64 chroot "$R" /carry/bin/asap_tests "[harness]"
out=$(LD_LIBRARY_PATH=/carry/lib:/usr/local/cuda/lib64 chroot "$R" /carry/bin/asap_tests "[cuda]" 2>&1)
echo "$out" | tail -2
n=$(echo "$out" | grep -c "SKIPPED: no CUDA device" || true)
[ "$n" -gt 0 ] || { echo "the carried [cuda] tests did not reach the device check" >&2; exit 1; }
echo "rehearsal ok: carried binaries load without the build dependencies; $n [cuda] cases wait for a device"
