// CPU mixed-op weighted sum y = sum_k w[k] * x_k over the K alive inputs, and its backward.
// Both run on every edge of every search step, so they stream memory once: the element range is
// cut into fixed chunks that stay in L1 while all K inputs are folded in (forward) or while dy is
// reused for every dx_k and every <x_k, dy> (backward). The dot products are summed per chunk in
// double and the chunk partials are added in chunk order, so dw is identical for any thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

using cpu::parallel_for;

constexpr int64_t kChunk = 2048;          // elements per chunk: 8 KiB of float32
constexpr int64_t kParallelMin = 32768;   // below this, thread start-up costs more than it saves

// Host copies of the K pointers and weights: a mixed op has at most 8 alive inputs, so this is a
// stack array in practice; larger K falls back to a heap vector.
template <typename V, int kInline = 16>
class SmallBuf {
 public:
  explicit SmallBuf(size_t n) : n_(n) {
    if (n > kInline) heap_.resize(n);
  }
  V* data() { return n_ > kInline ? heap_.data() : inline_; }
  V& operator[](size_t i) { return data()[i]; }

 private:
  size_t n_;
  V inline_[kInline] = {};
  std::vector<V> heap_;
};

template <typename T>
void wsum_fwd_impl(const std::vector<Tensor>& xs, const Tensor& w, Tensor& y) {
  const int64_t K = static_cast<int64_t>(xs.size());
  const int64_t n = y.numel();
  T* yp = y.data<T>();
  if (K == 0) {
    std::fill(yp, yp + n, T(0));
    return;
  }
  SmallBuf<const T*> xp(K);
  SmallBuf<T> wv(K);
  const T* wp = w.data<T>();
  for (int64_t k = 0; k < K; ++k) {
    xp[k] = xs[k].data<T>();
    wv[k] = wp[k];
  }
  const T* const* xpp = xp.data();
  const T* wvp = wv.data();
  const int64_t nch = (n + kChunk - 1) / kChunk;
  parallel_for(nch, n > kParallelMin, [&](int64_t lo_, int64_t hi_) {
    for (int64_t ch = lo_; ch < hi_; ++ch) {
      const int64_t i0 = ch * kChunk, i1 = std::min(n, i0 + kChunk);
      T* yc = yp + i0;
      const int64_t len = i1 - i0;
      {
        const T* x0 = xpp[0] + i0;
        const T w0 = wvp[0];
  #pragma omp simd
        for (int64_t i = 0; i < len; ++i) yc[i] = w0 * x0[i];
      }
      for (int64_t k = 1; k < K; ++k) {
        const T* xk = xpp[k] + i0;
        const T wk = wvp[k];
  #pragma omp simd
        for (int64_t i = 0; i < len; ++i) yc[i] += wk * xk[i];
      }
    }
  });
}

template <typename T>
void wsum_bwd_impl(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& dy,
                   std::vector<Tensor>& dxs, Tensor& dw) {
  const int64_t K = static_cast<int64_t>(xs.size());
  const int64_t n = dy.numel();
  if (K == 0) return;
  const T* dyp = dy.data<T>();
  const T* wp = w.data<T>();
  const bool want_dw = dw.defined();
  SmallBuf<const T*> xp(K);
  SmallBuf<T*> dxp(K);
  SmallBuf<T> wv(K);
  for (int64_t k = 0; k < K; ++k) {
    // x_k is only read for dw; a caller that needs no dw may pass undefined inputs.
    xp[k] = want_dw ? xs[k].data<T>() : nullptr;
    dxp[k] = (k < static_cast<int64_t>(dxs.size()) && dxs[k].defined()) ? dxs[k].data<T>() : nullptr;
    wv[k] = wp[k];
  }
  const T* const* xpp = xp.data();
  T* const* dxpp = dxp.data();
  const T* wvp = wv.data();
  const int64_t nch = (n + kChunk - 1) / kChunk;
  // Chunk partials of <x_k, dy>; thread_local so the hot path does not allocate every call.
  thread_local std::vector<double> partial;
  if (want_dw) partial.assign(static_cast<size_t>(nch * K), 0.0);
  double* part = partial.data();
  parallel_for(nch, n > kParallelMin, [&](int64_t lo_, int64_t hi_) {
    for (int64_t ch = lo_; ch < hi_; ++ch) {
      const int64_t i0 = ch * kChunk, i1 = std::min(n, i0 + kChunk);
      const int64_t len = i1 - i0;
      const T* dyc = dyp + i0;
      for (int64_t k = 0; k < K; ++k) {
        if (dxpp[k]) {
          T* dxc = dxpp[k] + i0;
          const T wk = wvp[k];
  #pragma omp simd
          for (int64_t i = 0; i < len; ++i) dxc[i] = wk * dyc[i];
        }
        if (want_dw) {
          const T* xc = xpp[k] + i0;
          double acc = 0.0;
  #pragma omp simd reduction(+ : acc)
          for (int64_t i = 0; i < len; ++i) acc += static_cast<double>(xc[i]) * static_cast<double>(dyc[i]);
          part[ch * K + k] = acc;
        }
      }
    }
  });
  if (want_dw) {
    T* dwp = dw.data<T>();
    for (int64_t k = 0; k < K; ++k) {
      double s = 0.0;
      for (int64_t ch = 0; ch < nch; ++ch) s += part[ch * K + k];
      dwp[k] = static_cast<T>(s);
    }
  }
}

bool is_f64(DType dt, const char* kernel) {
  ASAP_CHECK(dt == DType::F32 || dt == DType::F64, kernel, ": unsupported dtype ", dtype_name(dt));
  return dt == DType::F64;
}

void wsum_fwd_cpu(const std::vector<Tensor>& xs, const Tensor& w, Tensor& y) {
  if (is_f64(y.dtype(), "wsum_fwd")) wsum_fwd_impl<double>(xs, w, y);
  else wsum_fwd_impl<float>(xs, w, y);
}
// dw may be undefined (weights need no gradient): then the x_k are not read at all.
void wsum_bwd_cpu(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& dy,
                  std::vector<Tensor>& dxs, Tensor& dw) {
  if (is_f64(dy.dtype(), "wsum_bwd")) wsum_bwd_impl<double>(xs, w, dy, dxs, dw);
  else wsum_bwd_impl<float>(xs, w, dy, dxs, dw);
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, wsum_fwd, wsum_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, wsum_bwd, wsum_bwd_cpu);

}  // namespace asap
