// Dense GEMM entries on the CPU: row-major C = alpha op(A) op(B) + beta C through OpenBLAS, plus
// the bias helpers of the linear layer. Called from serial op code, so OpenBLAS may use its own
// threads here (unlike conv_common.h's gemm_local, used inside OpenMP regions).
#include "kernels/cpu/conv_common.h"

namespace asap::cpu {
namespace {

void check_2d(const Tensor& t, const char* what) {
  ASAP_CHECK_SHAPE(t.ndim() == 2 && t.is_contiguous(), "gemm: ", what,
                   " must be a contiguous 2-D tensor, got ", t.shape().str());
  ASAP_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64,
             "gemm: CPU kernels support float32 and float64, got ", dtype_name(t.dtype()));
}

void gemm_cpu(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  check_2d(a, "A");
  check_2d(b, "B");
  check_2d(c, "C");
  const int m = int(ta ? a.dim(1) : a.dim(0)), k = int(ta ? a.dim(0) : a.dim(1));
  const int kb = int(tb ? b.dim(1) : b.dim(0)), n = int(tb ? b.dim(0) : b.dim(1));
  ASAP_CHECK_SHAPE(k == kb && c.dim(0) == m && c.dim(1) == n, "gemm: op(A) ", m, "x", k, ", op(B) ", kb,
                   "x", n, ", C ", c.shape().str());
  ASAP_CHECK(a.dtype() == b.dtype() && b.dtype() == c.dtype(), "gemm: mixed dtypes");
  if (m == 0 || n == 0) return;
  if (k == 0) {  // empty reduction: C = beta C (BLAS implementations disagree on this edge)
    const int64_t total = c.numel();
    if (c.dtype() == DType::F32)
      for (int64_t i = 0; i < total; ++i) c.data<float>()[i] = beta == 0.0 ? 0.f : float(beta) * c.data<float>()[i];
    else
      for (int64_t i = 0; i < total; ++i) c.data<double>()[i] = beta == 0.0 ? 0.0 : beta * c.data<double>()[i];
    return;
  }
  const int lda = int(a.dim(1)), ldb = int(b.dim(1)), ldc = int(c.dim(1));
  if (a.dtype() == DType::F32)
    blas_gemm(ta, tb, m, n, k, float(alpha), a.data<float>(), lda, b.data<float>(), ldb, float(beta),
              c.data<float>(), ldc);
  else
    blas_gemm(ta, tb, m, n, k, alpha, a.data<double>(), lda, b.data<double>(), ldb, beta,
              c.data<double>(), ldc);
}

template <typename T>
void bias_add_rows_t(const Tensor& bias, Tensor& y) {
  const T* b = bias.data<T>();
  T* Y = y.data<T>();
  const int64_t R = y.dim(0), J = y.dim(1);
  parallel_for_each(R, R * J > 65536, [&](int64_t r) {
    T* row = Y + r * J;
#pragma omp simd
    for (int64_t j = 0; j < J; ++j) row[j] += b[j];
  });
}

void bias_add_rows_cpu(const Tensor& bias, Tensor& y) {
  check_2d(y, "y");
  ASAP_CHECK_SHAPE(bias.numel() == y.dim(1), "bias_add_rows: bias ", bias.shape().str(), " vs y ",
                   y.shape().str());
  if (y.dtype() == DType::F32) bias_add_rows_t<float>(bias, y);
  else bias_add_rows_t<double>(bias, y);
}

// Column sums in row order (deterministic): rows are few (the batch), columns are the classes.
template <typename T>
void sum_rows_t(const Tensor& dy, Tensor& db) {
  const T* D = dy.data<T>();
  T* out = db.data<T>();
  const int64_t R = dy.dim(0), J = dy.dim(1);
  for (int64_t j = 0; j < J; ++j) out[j] = T(0);
  for (int64_t r = 0; r < R; ++r) {
    const T* row = D + r * J;
#pragma omp simd
    for (int64_t j = 0; j < J; ++j) out[j] += row[j];
  }
}

void sum_rows_cpu(const Tensor& dy, Tensor& db) {
  check_2d(dy, "dy");
  ASAP_CHECK_SHAPE(db.numel() == dy.dim(1), "sum_rows: dbias ", db.shape().str(), " vs dy ",
                   dy.shape().str());
  if (dy.dtype() == DType::F32) sum_rows_t<float>(dy, db);
  else sum_rows_t<double>(dy, db);
}

}  // namespace

ASAP_REGISTER_KERNEL(CPU, gemm, gemm_cpu);
ASAP_REGISTER_KERNEL(CPU, bias_add_rows, bias_add_rows_cpu);
ASAP_REGISTER_KERNEL(CPU, sum_rows, sum_rows_cpu);

}  // namespace asap::cpu
