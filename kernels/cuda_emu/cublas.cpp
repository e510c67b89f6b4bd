// Emulated cuBLAS GEMMs. Validation follows the cuBLAS documentation of cublas<t>gemm and
// cublas<t>gemmStridedBatched: CUBLAS_STATUS_NOT_INITIALIZED for a null or destroyed handle;
// CUBLAS_STATUS_INVALID_VALUE for m, n, k or batchCount < 0, an operation other than N/T/C, or
//   lda < max(1, transa == N ? m : k), ldb < max(1, transb == N ? k : n), ldc < max(1, m).
// Beyond the table, the emulator checks what the GPU would silently get wrong: every element of
// A, B and C that the call touches must lie inside one live device allocation (a wrong transpose
// or leading dimension that passes the table but reads past the tensor is a fault), C of one
// batch may not overlap another's, and alpha/beta must be readable host values. As cuBLAS does,
// C is not read when beta == 0 (NaN there does not propagate) and A, B are not read when k == 0
// or alpha == 0. Sums run in double in k order and round once to float (documented tolerance).
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <cublas_v2.h>

#include "kernels/cuda_emu/internal.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

std::mutex g_mu;
std::set<cublasContext*>& handles() {
  static auto* s = new std::set<cublasContext*>();
  return *s;
}

bool valid(cublasHandle_t h) {
  std::lock_guard<std::mutex> lock(g_mu);
  return h && handles().count(h);
}

bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

struct Operand {
  const char* name;
  const float* base;
  int rows, cols, ld;  // the stored matrix (column-major): rows x cols with leading dimension ld
  long long stride;
};

// Every batch's [first, last] element of the operand must be inside one device allocation.
void check_operand(const char* call, const Operand& o, int batches) {
  if (o.rows == 0 || o.cols == 0 || batches == 0) return;
  const long long span = static_cast<long long>(o.cols - 1) * o.ld + o.rows;  // elements from first to last
  for (int b = 0; b < batches; ++b) {
    const float* first = o.base + static_cast<long long>(b) * o.stride;
    const auto r = cuda_emu::detail::find_region(first, 0);
    std::string where = std::string(call) + ": " + o.name + (batches > 1 ? " of batch " + std::to_string(b) : "") +
                        " (" + std::to_string(o.rows) + " x " + std::to_string(o.cols) + ", ld " +
                        std::to_string(o.ld) + ")";
    if (r.kind != cuda_emu::detail::MemKind::Device)
      cuda_emu::detail::fault(where + " starts outside device memory (" + cuda_emu::detail::describe(first) + ")");
    const uintptr_t end = reinterpret_cast<uintptr_t>(first) + static_cast<uintptr_t>(span) * sizeof(float);
    if (end > r.base + r.size)
      cuda_emu::detail::fault(where + " reads " + std::to_string(end - (r.base + r.size)) +
                              " bytes past the end of " + cuda_emu::detail::describe(first) +
                              ": a wrong transpose or leading dimension");
  }
}

cublasStatus_t gemm(const char* call, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const float* alpha, const float* A, int lda, long long sA, const float* B, int ldb,
                    long long sB, const float* beta, float* C, int ldc, long long sC, int batches) {
  if (!valid(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_op(ta) || !valid_op(tb) || m < 0 || n < 0 || k < 0 || batches < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) ||
      ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batches == 0) return CUBLAS_STATUS_SUCCESS;
  if (cuda_emu::detail::find_region(alpha, 0).kind == cuda_emu::detail::MemKind::Device ||
      cuda_emu::detail::find_region(beta, 0).kind == cuda_emu::detail::MemKind::Device)
    cuda_emu::detail::fault(std::string(call) + ": alpha/beta are device pointers but the pointer mode is host");
  const float al = *alpha, be = *beta;
  const bool read_ab = k > 0 && al != 0.f;
  const bool ta_n = ta == CUBLAS_OP_N, tb_n = tb == CUBLAS_OP_N;
  if (read_ab) {
    check_operand(call, Operand{"A", A, ta_n ? m : k, ta_n ? k : m, lda, sA}, batches);
    check_operand(call, Operand{"B", B, tb_n ? k : n, tb_n ? n : k, ldb, sB}, batches);
  }
  check_operand(call, Operand{"C", C, m, n, ldc, sC}, batches);
  if (batches > 1) {
    const long long c_span = static_cast<long long>(n - 1) * ldc + m;
    if (sC >= 0 && sC < c_span)
      cuda_emu::detail::fault(std::string(call) + ": strideC " + std::to_string(sC) + " is smaller than one C (" +
                              std::to_string(c_span) + " elements): batches would overwrite each other");
  }
  cuda_emu::detail::count_blas();
  auto run = [=] {
    std::vector<double> col(static_cast<size_t>(m));
    for (int b = 0; b < batches; ++b) {
      const float* a = A + b * sA;
      const float* bm = B + b * sB;
      float* c = C + b * sC;
      for (int j = 0; j < n; ++j) {
        std::fill(col.begin(), col.end(), 0.0);
        if (read_ab) {
          for (int l = 0; l < k; ++l) {
            const double bv = tb_n ? bm[l + static_cast<long long>(j) * ldb] : bm[j + static_cast<long long>(l) * ldb];
            if (ta_n) {
              const float* acol = a + static_cast<long long>(l) * lda;
              for (int i = 0; i < m; ++i) col[i] += static_cast<double>(acol[i]) * bv;
            } else {
              for (int i = 0; i < m; ++i) col[i] += static_cast<double>(a[l + static_cast<long long>(i) * lda]) * bv;
            }
          }
        }
        float* ccol = c + static_cast<long long>(j) * ldc;
        for (int i = 0; i < m; ++i) {
          const double ab = static_cast<double>(al) * col[i];
          ccol[i] = static_cast<float>(be == 0.f ? ab : ab + static_cast<double>(be) * ccol[i]);
        }
      }
    }
  };
  if (cuda_emu::detail::capture_if_active(h->stream, call, run)) return CUBLAS_STATUS_SUCCESS;
  run();
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g_mu);
  *handle = new cublasContext();
  handles().insert(*handle);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!handle || !handles().erase(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!cuda_emu::detail::valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode < CUBLAS_DEFAULT_MATH || mode > CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && cuda_emu::detail::find_region(workspace, bytes).kind != cuda_emu::detail::MemKind::Device)
    return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  return gemm("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb, long long strideB,
                                         const float* beta, float* C, int ldc, long long strideC, int batchCount) {
  return gemm("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
              beta, C, ldc, strideC, batchCount);
}
