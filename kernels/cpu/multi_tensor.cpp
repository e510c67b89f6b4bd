// CPU multi-tensor kernels (see engine/kernel_table.h): the L2 norm over a list of tensors and the
// clip scaling that reads the norm from a tensor. Same semantics as the CUDA entries: double
// accumulation in a fixed order (tensor by tensor, each element in order, then the tensors' sums
// in list order), so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

void check_xs(const std::vector<Tensor>& xs, const char* op) {
  for (const Tensor& x : xs) {
    ASAP_CHECK(x.defined(), op, ": undefined tensor in the list");
    ASAP_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, op, ": float32/float64 only, got ",
               dtype_name(x.dtype()));
    ASAP_CHECK(x.device().type == DeviceType::CPU, op, ": tensor on ", x.device().str());
    ASAP_CHECK(x.is_contiguous(), op, ": tensors must be contiguous");
  }
}

template <typename T>
double sum_sq_of(const Tensor& x) {
  const T* p = x.data<T>();
  double s = 0;
  for (int64_t i = 0, n = x.numel(); i < n; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  return s;
}

void multi_l2_norm_cpu(const std::vector<Tensor>& xs, Tensor& out) {
  check_xs(xs, "multi_l2_norm");
  ASAP_CHECK(out.dtype() == DType::F64 && out.numel() == 1 && out.device().type == DeviceType::CPU,
             "multi_l2_norm: the output must be a one-element float64 CPU tensor");
  const int64_t n = static_cast<int64_t>(xs.size());
  std::vector<double> part(xs.size(), 0.0);
  int64_t total = 0;
  for (const Tensor& x : xs) total += x.numel();
  cpu::parallel_for_each(n, total > (int64_t{1} << 16), [&](int64_t t) {
    part[t] = xs[t].dtype() == DType::F32 ? sum_sq_of<float>(xs[t]) : sum_sq_of<double>(xs[t]);
  });
  double s = 0;
  for (double v : part) s += v;
  out.data<double>()[0] = std::sqrt(s);
}

void multi_clip_scale_cpu(std::vector<Tensor>& xs, const Tensor& norm, double max_norm) {
  check_xs(xs, "multi_clip_scale");
  ASAP_CHECK(norm.dtype() == DType::F64 && norm.numel() == 1 && norm.device().type == DeviceType::CPU,
             "multi_clip_scale: the norm must be a one-element float64 CPU tensor");
  const double nv = norm.data<double>()[0];
  const double c = max_norm / (nv + 1e-6);
  if (!std::isfinite(nv) || !(c < 1.0)) return;
  for (Tensor& x : xs) {
    const int64_t n = x.numel();
    if (x.dtype() == DType::F32) {
      float* p = x.data<float>();
      const float cf = static_cast<float>(c);
      for (int64_t i = 0; i < n; ++i) p[i] = cf * p[i];
    } else {
      double* p = x.data<double>();
      for (int64_t i = 0; i < n; ++i) p[i] = c * p[i];
    }
  }
}

template <typename T>
void accumulate_n_t(Tensor& y, const std::vector<Tensor>& xs) {
  const int64_t n = y.numel();
  T* py = y.data<T>();
  std::vector<const T*> px;
  for (const Tensor& x : xs) px.push_back(x.data<T>());
  const size_t K = px.size();
  // Blocks that stay in L1, each input added to the block in turn: the element loop is innermost
  // and vectorises (an inner loop over a runtime list of pointers did not), and every element still
  // adds y, x0, x1, ... in that order, so the sums are the same to the bit.
  constexpr int64_t kBlock = 2048;
  cpu::parallel_for(n, n * static_cast<int64_t>(K) > (int64_t{1} << 15), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; b += kBlock) {
      const int64_t e = std::min(hi, b + kBlock);
      for (size_t k = 0; k < K; ++k) {
        const T* xk = px[k];
#pragma omp simd
        for (int64_t i = b; i < e; ++i) py[i] += xk[i];
      }
    }
  });
}

void accumulate_n_cpu(Tensor& y, const std::vector<Tensor>& xs) {
  ASAP_CHECK(y.dtype() == DType::F32 || y.dtype() == DType::F64, "accumulate_n: float32/float64 only");
  ASAP_CHECK(y.is_contiguous(), "accumulate_n: the output must be contiguous");
  for (size_t k = 0; k < xs.size(); ++k) {
    ASAP_CHECK(xs[k].dtype() == y.dtype() && xs[k].device() == y.device() && xs[k].is_contiguous(),
               "accumulate_n: input ", k, " must be contiguous with the output's dtype and device");
    ASAP_CHECK_SHAPE(xs[k].numel() == y.numel(), "accumulate_n: input ", k, " has ", xs[k].numel(),
                     " elements, output ", y.numel());
  }
  if (y.dtype() == DType::F32)
    accumulate_n_t<float>(y, xs);
  else
    accumulate_n_t<double>(y, xs);
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, accumulate_n, accumulate_n_cpu);
ASAP_REGISTER_KERNEL(CPU, multi_l2_norm, multi_l2_norm_cpu);
ASAP_REGISTER_KERNEL(CPU, multi_clip_scale, multi_clip_scale_cpu);

}  // namespace asap
