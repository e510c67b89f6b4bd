// CPU Philox fills. Element i depends only on (seed, offset, i): same numbers as the CUDA backend.
#include "engine/kernel_table.h"
#include "engine/philox.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/cpu/parallel.h"

namespace asap::cpu {
namespace {

template <typename T>
void fill_normal_t(Tensor& y, uint64_t seed, uint64_t offset, double mean, double stddev) {
  T* p = y.data<T>();
  const int64_t n = y.numel();
  parallel_for(n, n > kParallelGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      p[i] = static_cast<T>(mean + stddev * philox_normal_at(seed, offset, static_cast<uint64_t>(i)));
  });
}
void fill_normal(Tensor& y, uint64_t seed, uint64_t offset, double mean, double stddev) {
  ASAP_CPU_DISPATCH(y, fill_normal_t, y, seed, offset, mean, stddev);
}

template <typename T>
void fill_uniform_t(Tensor& y, uint64_t seed, uint64_t offset, double lo, double hi) {
  T* p = y.data<T>();
  const int64_t n = y.numel();
  parallel_for(n, n > kParallelGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      p[i] = static_cast<T>(philox_uniform_at(seed, offset, static_cast<uint64_t>(i), lo, hi));
  });
}
void fill_uniform(Tensor& y, uint64_t seed, uint64_t offset, double lo, double hi) {
  ASAP_CPU_DISPATCH(y, fill_uniform_t, y, seed, offset, lo, hi);
}

template <typename T>
void drop_path_mask_t(const Tensor& state, uint64_t seed, uint64_t delta, uint64_t first, Tensor& s) {
  const double* st = state.data<double>();
  const uint64_t offset = static_cast<uint64_t>(st[0]) + delta;
  const double p = st[1];
  const T keep = static_cast<T>(1.0 / (1.0 - p));
  T* m = s.data<T>();
  for (int64_t n = 0; n < s.numel(); ++n)
    m[n] = philox_uniform_at(seed, offset, first + static_cast<uint64_t>(n), 0.0, 1.0) >= p ? keep : T(0);
}
void drop_path_mask(const Tensor& state, uint64_t seed, uint64_t delta, uint64_t first, Tensor& s) {
  ASAP_CHECK(state.dtype() == DType::F64 && state.numel() == 2, "drop_path_mask: state must be float64 [2]");
  ASAP_CPU_DISPATCH(s, drop_path_mask_t, state, seed, delta, first, s);
}
void counter_advance(Tensor& state, uint64_t counters) {
  ASAP_CHECK(state.dtype() == DType::F64, "counter_advance: state must be float64");
  state.data<double>()[0] += static_cast<double>(counters);
}

}  // namespace

ASAP_REGISTER_KERNEL(CPU, drop_path_mask, drop_path_mask);
ASAP_REGISTER_KERNEL(CPU, counter_advance, counter_advance);
ASAP_REGISTER_KERNEL(CPU, fill_normal, fill_normal);
ASAP_REGISTER_KERNEL(CPU, fill_uniform, fill_uniform);

}  // namespace asap::cpu
