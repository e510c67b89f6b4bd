// Dense layers: row-major GEMM through cuBLAS (column-major) by computing C^T = op(B)^T op(A)^T,
// i.e. swapping the operands; no transposed copies. bias_add_rows and sum_rows are small kernels
// (sum_rows: one thread per column, rows in order: deterministic).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/handles.h"

namespace asap::cuda {
namespace {

void gemm_cuda(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  check_f32(a, "gemm");
  check_f32(b, "gemm");
  check_f32(c, "gemm");
  ASAP_CHECK_SHAPE(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2 && a.is_contiguous() && b.is_contiguous() &&
                       c.is_contiguous(),
                   "gemm: expects contiguous 2-D tensors");
  const int M = (int)(trans_a ? a.dim(1) : a.dim(0)), K = (int)(trans_a ? a.dim(0) : a.dim(1));
  const int Kb = (int)(trans_b ? b.dim(1) : b.dim(0)), N = (int)(trans_b ? b.dim(0) : b.dim(1));
  ASAP_CHECK_SHAPE(K == Kb && c.dim(0) == M && c.dim(1) == N, "gemm: op(A) ", M, "x", K, ", op(B) ", Kb, "x", N,
                   ", C ", c.shape().str());
  if (M == 0 || N == 0) return;
  const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
  if (K == 0) {  // cuBLAS would leave C untouched for beta = 0: make it C = beta * C explicitly
    ASAP_CHECK(beta == 0.0 || beta == 1.0, "gemm: K == 0 with beta not in {0, 1}");
    if (beta == 0.0) ASAP_CUDA_CHECK(cudaMemsetAsync(fptr(c), 0, c.nbytes(), stream()));
    return;
  }
  sgemm(trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, al, fptr(b), (int)b.dim(1), fptr(a),
                                (int)a.dim(1), be, fptr(c), N);
}

__global__ void bias_add_rows_kernel(const float* __restrict__ bias, float* __restrict__ y, int64_t n, int64_t J) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += bias[i % J];
}

__global__ void sum_rows_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t R, int64_t J) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < J; j += int64_t(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int64_t r = 0; r < R; ++r) s += dy[r * J + j];
    db[j] = static_cast<float>(s);
  }
}

void bias_add_rows_cuda(const Tensor& bias, Tensor& y) {
  check_f32(bias, "bias_add_rows");
  check_f32(y, "bias_add_rows");
  const int64_t n = y.numel(), J = y.dim(y.ndim() - 1);
  ASAP_CHECK_SHAPE(bias.numel() == J, "bias_add_rows: bias ", bias.shape().str(), " vs y ", y.shape().str());
  if (n == 0) return;
  ASAP_LAUNCH(bias_add_rows_kernel, grid_for(n), kThreads, 0, stream(), fptr(bias), fptr(y), n, J);
  ASAP_CUDA_LAUNCH_CHECK("bias_add_rows");
}

void sum_rows_cuda(const Tensor& dy, Tensor& db) {
  check_f32(dy, "sum_rows");
  check_f32(db, "sum_rows");
  const int64_t J = dy.dim(dy.ndim() - 1), R = J ? dy.numel() / J : 0;
  ASAP_CHECK_SHAPE(db.numel() == J, "sum_rows: dbias ", db.shape().str(), " vs dy ", dy.shape().str());
  if (J == 0) return;
  ASAP_LAUNCH(sum_rows_kernel, grid_for(J, 128), 128, 0, stream(), fptr(dy), fptr(db), R, J);
  ASAP_CUDA_LAUNCH_CHECK("sum_rows");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, gemm, gemm_cuda);
ASAP_REGISTER_KERNEL(CUDA, bias_add_rows, bias_add_rows_cuda);
ASAP_REGISTER_KERNEL(CUDA, sum_rows, sum_rows_cuda);

}  // namespace asap::cuda
