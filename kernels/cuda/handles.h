// Library handles bound to the compute stream, created once per device and reused (creation costs
// milliseconds). cuBLAS keeps its default FP32 math (no TF32) so results track the CPU backend.
#pragma once
#include <cublas_v2.h>

#if defined(ASAP_WITH_CUDNN)
#include <cudnn.h>
#endif

namespace asap::cuda {

cublasHandle_t cublas_handle();

// The backend's GEMMs: cuBLAS on the compute stream, column-major, host alpha/beta; counted in
// kernels/cuda/stats.h and checked (a failure throws DeviceError naming the routine).
void sgemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);
void sgemm_strided_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                           const float* A, int lda, long long stride_a, const float* B, int ldb, long long stride_b,
                           float beta, float* C, int ldc, long long stride_c, int batches);
#if defined(ASAP_WITH_CUDNN)
cudnnHandle_t cudnn_handle();
#endif

}  // namespace asap::cuda
