// Philox fills. Element i uses counter offset + i / 4 (engine/philox.h, shared with the CPU), so
// the numbers equal the CPU backend's for the same (seed, offset). Arithmetic is in double and
// rounded to float once, as on the CPU. The final a + b * c steps use __dadd_rn/__dmul_rn so nvcc
// cannot contract them into an FMA (the x86-64 CPU build rounds twice); the device's log/sin/cos
// are within an ulp of glibc's in double, which vanishes in the rounding to float except in rare
// ties. Uniform fills therefore match bit for bit; normal fills to float32 rounding.
#include "engine/philox.h"
#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

__global__ void normal_kernel(float* __restrict__ y, int64_t n, uint64_t seed, uint64_t offset, double mean,
                              double stddev) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<float>(
        __dadd_rn(mean, __dmul_rn(stddev, philox_normal_at(seed, offset, static_cast<uint64_t>(i)))));
}

__global__ void uniform_kernel(float* __restrict__ y, int64_t n, uint64_t seed, uint64_t offset, double lo,
                               double hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    // philox_uniform_at, spelled out so the multiply-add is not contracted.
    const Philox4 r = philox4x32(seed, offset + static_cast<uint64_t>(i) / 4);
    const double u = philox_uniform01(r.v[i % 4]);
    y[i] = static_cast<float>(__dadd_rn(lo, __dmul_rn(hi - lo, 1.0 - u)));
  }
}

// One thread per sample; the counter base and p are read from device memory (a replayed graph
// draws new masks each step). 1 - u is exact, so the comparison equals the host's bit for bit.
__global__ void drop_path_mask_kernel(const double* __restrict__ state, float* __restrict__ s, int64_t n,
                                      uint64_t seed, uint64_t delta, uint64_t first) {
  const uint64_t offset = static_cast<uint64_t>(state[0]) + delta;
  const double p = state[1];
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t e = first + static_cast<uint64_t>(i);  // the sample's element of the global batch
    const Philox4 r = philox4x32(seed, offset + e / 4);
    s[i] = 1.0 - philox_uniform01(r.v[e % 4]) >= p ? keep : 0.0f;
  }
}

__global__ void counter_advance_kernel(double* state, uint64_t counters) {
  state[0] += static_cast<double>(counters);
}

void drop_path_mask_cuda(const Tensor& state, uint64_t seed, uint64_t delta, uint64_t first, Tensor& s) {
  ASAP_CHECK(state.dtype() == DType::F64 && state.numel() == 2, "drop_path_mask: state must be float64 [2]");
  check_f32(s, "drop_path_mask");
  const int64_t n = s.numel();
  if (n == 0) return;
  ASAP_LAUNCH(drop_path_mask_kernel, grid_for(n), kThreads, 0, stream(), state.data<double>(), fptr(s), n, seed,
              delta, first);
  ASAP_CUDA_LAUNCH_CHECK("drop_path_mask");
}
void counter_advance_cuda(Tensor& state, uint64_t counters) {
  ASAP_CHECK(state.dtype() == DType::F64, "counter_advance: state must be float64");
  ASAP_LAUNCH(counter_advance_kernel, 1, 1, 0, stream(), state.data<double>(), counters);
  ASAP_CUDA_LAUNCH_CHECK("counter_advance");
}

void fill_normal_cuda(Tensor& y, uint64_t seed, uint64_t offset, double mean, double stddev) {
  check_f32(y, "fill_normal");
  const int64_t n = y.numel();
  if (n == 0) return;
  ASAP_LAUNCH(normal_kernel, grid_for(n), kThreads, 0, stream(), fptr(y), n, seed, offset, mean, stddev);
  ASAP_CUDA_LAUNCH_CHECK("fill_normal");
}
void fill_uniform_cuda(Tensor& y, uint64_t seed, uint64_t offset, double lo, double hi) {
  check_f32(y, "fill_uniform");
  const int64_t n = y.numel();
  if (n == 0) return;
  ASAP_LAUNCH(uniform_kernel, grid_for(n), kThreads, 0, stream(), fptr(y), n, seed, offset, lo, hi);
  ASAP_CUDA_LAUNCH_CHECK("fill_uniform");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, drop_path_mask, drop_path_mask_cuda);
ASAP_REGISTER_KERNEL(CUDA, counter_advance, counter_advance_cuda);
ASAP_REGISTER_KERNEL(CUDA, fill_normal, fill_normal_cuda);
ASAP_REGISTER_KERNEL(CUDA, fill_uniform, fill_uniform_cuda);

}  // namespace asap::cuda
