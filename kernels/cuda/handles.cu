// cuBLAS/cuDNN handles, device properties and the shared second reduction pass.
#include "kernels/cuda/handles.h"

#include <mutex>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/device.h"

namespace asap::cuda {
namespace {
std::mutex g_mu;
}  // namespace

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

int sm_count() {
  static int cached[kMaxDevices] = {0};
  const int dev = current_device();
  if (cached[dev] == 0) {
    int n = 0;
    ASAP_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    cached[dev] = n;
  }
  return cached[dev];
}

// Handles are leaked on purpose: destroying them during static teardown races the driver's own.
// Each is bound once, at creation, to the device's compute stream (which never changes) and, for
// cuBLAS, to a workspace from our caching allocator: with a workspace set explicitly cuBLAS never
// allocates on its own, which a captured graph requires, and the bytes show in our counters.
// 32 MiB is NVIDIA's recommendation for Hopper (cuBLAS docs, cublasSetWorkspace).
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

cublasHandle_t cublas_handle() {
  static cublasHandle_t handles[kMaxDevices] = {};
  const int dev = current_device();
  std::lock_guard<std::mutex> lock(g_mu);
  if (!handles[dev]) {
    ASAP_CUBLAS_CHECK(cublasCreate(&handles[dev]));
    ASAP_CUBLAS_CHECK(cublasSetMathMode(handles[dev], CUBLAS_DEFAULT_MATH));
    ASAP_CUBLAS_CHECK(cublasSetStream(handles[dev], stream()));
    static DeviceBuffer* workspaces = new DeviceBuffer[kMaxDevices];  // leaked with the handles
    workspaces[dev] = DeviceBuffer(kCublasWorkspaceBytes);
    ASAP_CUBLAS_CHECK(cublasSetWorkspace(handles[dev], workspaces[dev].get(), kCublasWorkspaceBytes));
  }
  return handles[dev];
}

void sgemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  stats::count_blas("sgemm");
  ASAP_CUBLAS_CHECK(cublasSgemm(cublas_handle(), ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc));
}

void sgemm_strided_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                           const float* A, int lda, long long stride_a, const float* B, int ldb, long long stride_b,
                           float beta, float* C, int ldc, long long stride_c, int batches) {
  stats::count_blas("sgemm_strided_batched");
  ASAP_CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), ta, tb, m, n, k, &alpha, A, lda, stride_a, B, ldb,
                                              stride_b, &beta, C, ldc, stride_c, batches));
}

#if defined(ASAP_WITH_CUDNN)
cudnnHandle_t cudnn_handle() {
  static cudnnHandle_t handles[kMaxDevices] = {};
  const int dev = current_device();
  std::lock_guard<std::mutex> lock(g_mu);
  if (!handles[dev]) {
    ASAP_CUDNN_CHECK(cudnnCreate(&handles[dev]));
    ASAP_CUDNN_CHECK(cudnnSetStream(handles[dev], stream()));
  }
  return handles[dev];
}
#endif

namespace {
__global__ void reduce_partials_kernel(const double* __restrict__ partial, int nb,
                                       float* __restrict__ out) {
  const double* p = partial + static_cast<int64_t>(blockIdx.x) * nb;
  double s = 0;
  for (int i = threadIdx.x; i < nb; i += blockDim.x) s += p[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<float>(s);
}
}  // namespace

void reduce_partials(const double* partial, int nb, int count, float* out, const char* op) {
  if (count <= 0) return;
  ASAP_LAUNCH(reduce_partials_kernel, count, kThreads, 0, stream(), partial, nb, out);
  ASAP_CUDA_LAUNCH_CHECK(op);
}

}  // namespace asap::cuda
