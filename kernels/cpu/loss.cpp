// CPU softmax (with temperature) and softmax cross-entropy, row-wise over the last dim of [R, K].
// Rows are small (K = 8 ops or 10 classes), so the work is parallel over rows; exponent sums and
// the batch loss use double accumulators, and the mean is summed in row order (deterministic).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"

namespace asap {
namespace {

// y[r, :] = softmax(x[r, :] / t), shifted by the row max so exp never overflows.
template <typename T>
void softmax_row(const T* x, T* y, int64_t K, double inv_t) {
  T m = x[0];
  for (int64_t j = 1; j < K; ++j) m = std::max(m, x[j]);
  double s = 0.0;
  for (int64_t j = 0; j < K; ++j) {
    const double e = std::exp((static_cast<double>(x[j]) - static_cast<double>(m)) * inv_t);
    y[j] = static_cast<T>(e);
    s += e;
  }
  const double inv = 1.0 / s;
  for (int64_t j = 0; j < K; ++j) y[j] = static_cast<T>(static_cast<double>(y[j]) * inv);
}

template <typename T>
void softmax_fwd_impl(const Tensor& x, double inv_t, Tensor& y) {
  const int64_t R = x.dim(0), K = x.dim(1);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  cpu::parallel_for_each(R, R * K > 65536, [&](int64_t r) { softmax_row(xp + r * K, yp + r * K, K, inv_t); });
}

template <typename T>
void softmax_bwd_impl(const Tensor& y, const Tensor& dy, double inv_t, Tensor& dx) {
  const int64_t R = y.dim(0), K = y.dim(1);
  const T* yp = y.data<T>();
  const T* dyp = dy.data<T>();
  T* dxp = dx.data<T>();
  cpu::parallel_for_each(R, R * K > 65536, [&](int64_t r) {
    const T* yr = yp + r * K;
    const T* dyr = dyp + r * K;
    T* dxr = dxp + r * K;
    double dot = 0.0;
    for (int64_t j = 0; j < K; ++j) dot += static_cast<double>(dyr[j]) * static_cast<double>(yr[j]);
    for (int64_t j = 0; j < K; ++j)
      dxr[j] = static_cast<T>(static_cast<double>(yr[j]) * (static_cast<double>(dyr[j]) - dot) * inv_t);
  });
}

// Labels are checked before the parallel loop, so a bad label fails before any row is written.
void check_labels(const Tensor& labels, int64_t N, int64_t K, const char* kernel) {
  ASAP_CHECK(labels.dtype() == DType::I32, kernel, ": labels must be int32, got ", dtype_name(labels.dtype()));
  const int32_t* lp = labels.data<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    ASAP_CHECK_T(ShapeError, lp[n] >= 0 && lp[n] < K, kernel, ": label ", lp[n], " at row ", n,
                 " is outside [0, ", K, ")");
}

template <typename T>
void xent_fwd_impl(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& loss0d) {
  const int64_t N = logits.dim(0), K = logits.dim(1);
  check_labels(labels, N, K, "xent_fwd");
  const T* xp = logits.data<T>();
  const int32_t* lp = labels.data<int32_t>();
  T* pp = probs.data<T>();
  // Row losses are summed in row order after the loop, so the loss does not depend on threads.
  std::vector<double> row_loss(static_cast<size_t>(N));
  cpu::parallel_for_each(N, N * K > 65536, [&](int64_t n) {
    const T* xr = xp + n * K;
    T* pr = pp + n * K;
    double m = static_cast<double>(xr[0]);
    for (int64_t j = 1; j < K; ++j) m = std::max(m, static_cast<double>(xr[j]));
    double s = 0.0;
    for (int64_t j = 0; j < K; ++j) s += std::exp(static_cast<double>(xr[j]) - m);
    const double lse = m + std::log(s);
    for (int64_t j = 0; j < K; ++j) pr[j] = static_cast<T>(std::exp(static_cast<double>(xr[j]) - lse));
    row_loss[n] = lse - static_cast<double>(xr[lp[n]]);
  });
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += row_loss[n];
  loss0d.data<T>()[0] = static_cast<T>(N > 0 ? total / static_cast<double>(N) : 0.0);
}

template <typename T>
void xent_bwd_impl(const Tensor& probs, const Tensor& labels, const Tensor& dloss0d, Tensor& dlogits) {
  const int64_t N = probs.dim(0), K = probs.dim(1);
  check_labels(labels, N, K, "xent_bwd");
  const T* pp = probs.data<T>();
  const int32_t* lp = labels.data<int32_t>();
  T* dp = dlogits.data<T>();
  const T g = static_cast<T>(static_cast<double>(dloss0d.data<T>()[0]) / static_cast<double>(N));
  cpu::parallel_for_each(N, N * K > 65536, [&](int64_t n) {
    const T* pr = pp + n * K;
    T* dr = dp + n * K;
    for (int64_t j = 0; j < K; ++j) dr[j] = pr[j] * g;
    dr[lp[n]] -= g;
  });
}

bool is_f64(DType dt, const char* kernel) {
  ASAP_CHECK(dt == DType::F32 || dt == DType::F64, kernel, ": unsupported dtype ", dtype_name(dt));
  return dt == DType::F64;
}

// 1/T from the host value, or from the 0-d float64 tensor when one is given.
double inverse_temperature(double temperature, const Tensor& inv_t, const char* kernel) {
  if (!inv_t.defined()) return 1.0 / temperature;
  ASAP_CHECK(inv_t.dtype() == DType::F64 && inv_t.numel() == 1, kernel, ": inv_t must be a 0-d float64 tensor");
  return inv_t.data<double>()[0];
}

void softmax_fwd_cpu(const Tensor& x, double temperature, const Tensor& inv_t, Tensor& y) {
  const double it = inverse_temperature(temperature, inv_t, "softmax_fwd");
  if (is_f64(x.dtype(), "softmax_fwd")) softmax_fwd_impl<double>(x, it, y);
  else softmax_fwd_impl<float>(x, it, y);
}
void softmax_bwd_cpu(const Tensor& y, const Tensor& dy, double temperature, const Tensor& inv_t, Tensor& dx) {
  const double it = inverse_temperature(temperature, inv_t, "softmax_bwd");
  if (is_f64(y.dtype(), "softmax_bwd")) softmax_bwd_impl<double>(y, dy, it, dx);
  else softmax_bwd_impl<float>(y, dy, it, dx);
}
void xent_fwd_cpu(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& loss0d) {
  if (is_f64(logits.dtype(), "xent_fwd")) xent_fwd_impl<double>(logits, labels, probs, loss0d);
  else xent_fwd_impl<float>(logits, labels, probs, loss0d);
}
void xent_bwd_cpu(const Tensor& probs, const Tensor& labels, const Tensor& dloss0d, Tensor& dlogits) {
  if (is_f64(probs.dtype(), "xent_bwd")) xent_bwd_impl<double>(probs, labels, dloss0d, dlogits);
  else xent_bwd_impl<float>(probs, labels, dloss0d, dlogits);
}

}  // namespace

ASAP_REGISTER_KERNEL(CPU, softmax_fwd, softmax_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, softmax_bwd, softmax_bwd_cpu);
ASAP_REGISTER_KERNEL(CPU, xent_fwd, xent_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, xent_bwd, xent_bwd_cpu);

}  // namespace asap
