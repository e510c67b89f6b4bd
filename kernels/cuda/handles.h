// Library handles bound to the compute stream, created once per device and reused (creation costs
// milliseconds). cuBLAS keeps its default FP32 math (no TF32) so results track the CPU backend.
#pragma once
#include <cublas_v2.h>

#if defined(ASAP_WITH_CUDNN)
#include <cudnn.h>
#endif

namespace asap::cuda {

cublasHandle_t cublas_handle();
#if defined(ASAP_WITH_CUDNN)
cudnnHandle_t cudnn_handle();
#endif

}  // namespace asap::cuda
