// Uploads from pageable host memory through a small ring of pinned staging buffers. A copy from
// pageable memory cannot be a DMA from the caller's pages, so the driver stages it itself and the
// host may wait on that; here the host copies the bytes into a pinned slot (a memcpy it does
// anyway), issues one asynchronous copy and records an event. The caller may reuse its buffer at
// once, the host never waits for the device unless the ring is full (the device is kSlots uploads
// behind, a counted sync), and a loader batch lands in a graph's static input overlapped with
// the previous step's replay.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "kernels/cuda/device.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/host_sync.h"

namespace asap::cuda {
namespace {

constexpr int kSlots = 4;
constexpr size_t kMaxStaged = size_t(64) << 20;  // larger uploads (weights at start-up) go direct
constexpr size_t kMinSlot = size_t(1) << 20;

struct Ring {
  std::mutex mu;
  PinnedBuffer buf[kSlots];
  cudaEvent_t done[kSlots] = {};
  int next = 0;
};

Ring& ring_of(int dev) {
  static Ring* rings = new Ring[kMaxDevices];  // leaked: uploads may run during static destruction
  return rings[dev];
}

}  // namespace

bool upload_staged(void* dst, const void* src, size_t bytes, cudaStream_t st, int dev) {
  if (bytes == 0 || bytes > kMaxStaged || dev < 0 || dev >= kMaxDevices) return false;
  // A capture would record the copy from a slot the host rewrites later: copy directly there.
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  ASAP_CUDA_CHECK(cudaStreamIsCapturing(st, &cap));
  if (cap != cudaStreamCaptureStatusNone) return false;
  Ring& r = ring_of(dev);
  std::lock_guard<std::mutex> lock(r.mu);
  const int i = r.next;
  r.next = (i + 1) % kSlots;
  if (!r.done[i]) {
    ASAP_CUDA_CHECK(cudaEventCreateWithFlags(&r.done[i], cudaEventDisableTiming));
  } else if (cudaEventQuery(r.done[i]) == cudaErrorNotReady) {
    stats::count_sync("pinned staging ring full");
    ASAP_CUDA_CHECK(cudaEventSynchronize(r.done[i]));  // counted: stats::count_sync above
  }
  if (r.buf[i].bytes() < bytes) r.buf[i] = PinnedBuffer(std::max(bytes, kMinSlot));
  std::memcpy(r.buf[i].get(), src, bytes);
  copy_async(dst, r.buf[i].get(), bytes, cudaMemcpyHostToDevice, st);
  stats::count_staged(bytes);
  ASAP_CUDA_CHECK(cudaEventRecord(r.done[i], st));
  return true;
}

}  // namespace asap::cuda
