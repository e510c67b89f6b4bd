// CPU Philox fills. Element i depends only on (seed, offset, i): same numbers as the CUDA backend.
#include "engine/kernel_table.h"
#include "engine/philox.h"
#include "kernels/cpu/cpu_dispatch.h"

namespace asap::cpu {
namespace {

template <typename T>
void fill_normal_t(Tensor& y, uint64_t seed, uint64_t offset, double mean, double stddev) {
  T* p = y.data<T>();
  const int64_t n = y.numel();
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    p[i] = static_cast<T>(mean + stddev * philox_normal_at(seed, offset, static_cast<uint64_t>(i)));
}
void fill_normal(Tensor& y, uint64_t seed, uint64_t offset, double mean, double stddev) {
  ASAP_CPU_DISPATCH(y, fill_normal_t, y, seed, offset, mean, stddev);
}

template <typename T>
void fill_uniform_t(Tensor& y, uint64_t seed, uint64_t offset, double lo, double hi) {
  T* p = y.data<T>();
  const int64_t n = y.numel();
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i)
    p[i] = static_cast<T>(philox_uniform_at(seed, offset, static_cast<uint64_t>(i), lo, hi));
}
void fill_uniform(Tensor& y, uint64_t seed, uint64_t offset, double lo, double hi) {
  ASAP_CPU_DISPATCH(y, fill_uniform_t, y, seed, offset, lo, hi);
}

}  // namespace

ASAP_REGISTER_KERNEL(CPU, fill_normal, fill_normal);
ASAP_REGISTER_KERNEL(CPU, fill_uniform, fill_uniform);

}  // namespace asap::cpu
