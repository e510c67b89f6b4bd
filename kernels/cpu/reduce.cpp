// CPU reductions. Accumulate in double with a fixed per-thread partition (static schedule and a
// fixed thread count give bit-identical results run to run).
#include "engine/kernel_table.h"
#include "kernels/cpu/cpu_dispatch.h"

namespace asap::cpu {
namespace {

template <typename T, typename F>
double reduce_sum(int64_t n, F term) {
  double total = 0;
#pragma omp parallel for simd reduction(+ : total) schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) total += term(i);
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
