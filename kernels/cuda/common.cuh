// Shared helpers for the CUDA kernel files: argument checks, launch sizing on the compute stream,
// and a deterministic block reduction (fixed shuffle tree, fixed block count: the same inputs
// give the same bits on every run, with no atomics).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "engine/nvtx.h"
#include "engine/tensor.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"

namespace asap::cuda {

constexpr int kThreads = 256;

inline void check_f32(const Tensor& t, const char* op) {
  if (!t.defined()) return;
  ASAP_CHECK(t.dtype() == DType::F32, "CUDA kernel '", op, "' supports float32 only, got ",
             dtype_name(t.dtype()));
  ASAP_CHECK(t.device().is_cuda(), "CUDA kernel '", op, "' got a tensor on ", t.device().str());
}
inline void check_i32(const Tensor& t, const char* op) {
  ASAP_CHECK(t.dtype() == DType::I32, "CUDA kernel '", op, "' expects an int32 tensor, got ",
             dtype_name(t.dtype()));
}

inline float* fptr(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
inline int32_t* iptr(const Tensor& t) { return t.defined() ? t.data<int32_t>() : nullptr; }

int sm_count();  // multiprocessors of the current device (cached)

// Grid for a grid-stride loop over n items: enough blocks to fill the chip, never more than needed.
inline int grid_for(int64_t n, int threads = kThreads) {
  int64_t want = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(sm_count()) * 8;
  if (want > cap) want = cap;
  return want < 1 ? 1 : static_cast<int>(want);
}

// Number of partial-sum blocks for deterministic two-pass reductions (depends only on n and the
// device, so results are reproducible on one device).
inline int reduce_blocks(int64_t n, int threads = kThreads) {
  int64_t want = (n + threads * 4 - 1) / (threads * 4);
  int64_t cap = static_cast<int64_t>(sm_count()) * 4;
  if (want > cap) want = cap;
  return want < 1 ? 1 : static_cast<int>(want);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block; every thread gets the result. blockDim.x must be a multiple of 32, <= 1024.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T shared[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // protect `shared` from a previous call
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  T r = lane < nw ? shared[lane] : T(0);
  return warp_sum(r);
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename T>
__device__ T block_max(T v) {
  __shared__ T shared[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  T r = lane < nw ? shared[lane] : shared[0];
  return warp_max(r);
}

// Second pass of a two-pass reduction: out[j] = (float) sum_b partial[j * nb + b], one block per j.
void reduce_partials(const double* partial, int nb, int count, float* out, const char* op);

}  // namespace asap::cuda
