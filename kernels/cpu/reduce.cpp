// CPU reductions. Accumulate in double over fixed chunks of kParallelGrain elements whose partial
// sums are added in chunk order: the result is bit-identical for any thread count.
#include <algorithm>
#include <vector>

#include "engine/kernel_table.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/cpu/parallel.h"

namespace asap::cpu {
namespace {

template <typename T, typename F>
double reduce_sum(int64_t n, F term) {
  const int64_t chunks = (n + kParallelGrain - 1) / kParallelGrain;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(chunks, 1)), 0.0);
  parallel_for_each(chunks, chunks > 1, [&](int64_t c) {
    const int64_t lo = c * kParallelGrain, hi = std::min(n, lo + kParallelGrain);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; ++i) s += term(i);
    part[static_cast<size_t>(c)] = s;
  });
  double total = 0;
  for (double v : part) total += v;
  return total;
}

template <typename T>
void sum_all_t(const Tensor& x, Tensor& out) {
  const T* p = x.data<T>();
  out.data<T>()[0] = static_cast<T>(reduce_sum<T>(x.numel(), [p](int64_t i) { return double(p[i]); }));
}
void sum_all(const Tensor& x, Tensor& out) { ASAP_CPU_DISPATCH(x, sum_all_t, x, out); }

template <typename T>
void dot_t(const Tensor& a, const Tensor& b, Tensor& out) {
  const T* p = a.data<T>();
  const T* q = b.data<T>();
  out.data<T>()[0] =
      static_cast<T>(reduce_sum<T>(a.numel(), [p, q](int64_t i) { return double(p[i]) * double(q[i]); }));
}
void dot(const Tensor& a, const Tensor& b, Tensor& out) { ASAP_CPU_DISPATCH(a, dot_t, a, b, out); }

template <typename T>
void sum_sq_t(const Tensor& x, Tensor& out) {
  const T* p = x.data<T>();
  out.data<T>()[0] =
      static_cast<T>(reduce_sum<T>(x.numel(), [p](int64_t i) { return double(p[i]) * double(p[i]); }));
}
void sum_sq(const Tensor& x, Tensor& out) { ASAP_CPU_DISPATCH(x, sum_sq_t, x, out); }

}  // namespace

ASAP_REGISTER_KERNEL(CPU, sum_all, sum_all);
ASAP_REGISTER_KERNEL(CPU, dot, dot);
ASAP_REGISTER_KERNEL(CPU, sum_sq, sum_sq);

}  // namespace asap::cpu
