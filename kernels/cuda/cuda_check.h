// Error checks for CUDA, cuBLAS and cuDNN calls. Each throws asap::DeviceError naming file:line,
// the failing expression and the library's own message; ASAP_CUDA_LAUNCH_CHECK(op) runs after every
// kernel launch so an invalid configuration is reported with the op that launched it.
// Destructors must not use these macros (they throw): use ASAP_CUDA_WARN instead.
#pragma once
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <cstdio>
#include <string>

#include "engine/error.h"

namespace asap::cuda {

const char* cublas_status_name(cublasStatus_t s);

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  throw DeviceError(detail::concat(file, ":", line, ": CUDA error ", cudaGetErrorName(e), " (",
                                   cudaGetErrorString(e), ") in ", expr));
}
[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* expr, const char* file, int line) {
  throw DeviceError(detail::concat(file, ":", line, ": cuBLAS error ", cublas_status_name(s), " (",
                                   static_cast<int>(s), ") in ", expr));
}
[[noreturn]] inline void throw_launch(cudaError_t e, const char* op, const char* file, int line) {
  throw DeviceError(detail::concat(file, ":", line, ": kernel launch for op '", op, "' failed: ",
                                   cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"));
}

}  // namespace asap::cuda

#define ASAP_CUDA_CHECK(expr)                                                  \
  do {                                                                         \
    cudaError_t asap_e_ = (expr);                                              \
    if (asap_e_ != cudaSuccess) ::asap::cuda::throw_cuda(asap_e_, #expr, __FILE__, __LINE__); \
  } while (0)

#define ASAP_CUBLAS_CHECK(expr)                                                \
  do {                                                                         \
    cublasStatus_t asap_s_ = (expr);                                           \
    if (asap_s_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::asap::cuda::throw_cublas(asap_s_, #expr, __FILE__, __LINE__);          \
  } while (0)

// After a <<<...>>> launch: configuration errors surface here, named by op.
#define ASAP_CUDA_LAUNCH_CHECK(op)                                             \
  do {                                                                         \
    cudaError_t asap_e_ = cudaGetLastError();                                  \
    if (asap_e_ != cudaSuccess) ::asap::cuda::throw_launch(asap_e_, op, __FILE__, __LINE__); \
  } while (0)

// For destructors and noexcept paths: log, never throw.
#define ASAP_CUDA_WARN(expr)                                                   \
  do {                                                                         \
    cudaError_t asap_e_ = (expr);                                              \
    if (asap_e_ != cudaSuccess)                                                \
      std::fprintf(stderr, "%s:%d: warning: %s failed: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(asap_e_));                               \
  } while (0)

#if defined(ASAP_WITH_CUDNN)
#include <cudnn.h>
#define ASAP_CUDNN_CHECK(expr)                                                 \
  do {                                                                         \
    cudnnStatus_t asap_s_ = (expr);                                            \
    if (asap_s_ != CUDNN_STATUS_SUCCESS)                                       \
      throw ::asap::DeviceError(::asap::detail::concat(__FILE__, ":", __LINE__, ": cuDNN error ", \
                                                       cudnnGetErrorString(asap_s_), " in ", #expr)); \
  } while (0)
#endif
