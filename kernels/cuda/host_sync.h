// Every point where the CUDA backend makes the host wait for the device, or moves bytes between
// host and device, goes through these helpers, so kernels/cuda/stats.h counts them exactly (a
// lint test keeps raw cudaStreamSynchronize / cudaMemcpy* out of the other files). `reason`
// names why the host must wait (it appears in asap_bench's per-reason counts).
#pragma once
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/stats.h"

namespace asap::cuda {

inline void sync_stream(cudaStream_t s, const char* reason) {
  stats::count_sync(reason);
  ASAP_CUDA_CHECK(cudaStreamSynchronize(s));
}

inline stats::Copy copy_direction(cudaMemcpyKind kind) {
  return kind == cudaMemcpyHostToDevice   ? stats::Copy::HostToDevice
         : kind == cudaMemcpyDeviceToHost ? stats::Copy::DeviceToHost
                                          : stats::Copy::DeviceToDevice;
}

// Asynchronous copy on `s` (host memory must stay valid until the stream reaches it).
inline void copy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  stats::count_copy(copy_direction(kind), bytes);
  ASAP_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
}

// `height` rows of `width` bytes between pitched buffers.
inline void copy_2d_async(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                          cudaMemcpyKind kind, cudaStream_t s) {
  stats::count_copy(copy_direction(kind), static_cast<uint64_t>(width) * height);
  ASAP_CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, s));
}

}  // namespace asap::cuda
