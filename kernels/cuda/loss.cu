// Softmax with temperature and softmax cross-entropy, row-wise over [R, K]. One warp per row
// (K is 8 ops or 10 classes), exponent sums in double as on the CPU. The batch loss sums the
// per-row losses in row order in one block (deterministic). An out-of-range label cannot throw
// from the device without a synchronisation per step; it makes the loss NaN instead, which the
// NaN guard reports, and its row gets no one-hot term in backward.
#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

// inv_t_dev, when set, overrides inv_t (the temperature lives on the device; see kernel_table.h).
__global__ void softmax_fwd_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t R, int64_t K,
                                   double inv_t, const double* __restrict__ inv_t_dev) {
  const int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= R) return;
  if (inv_t_dev) inv_t = *inv_t_dev;
  const float* xr = x + r * K;
  float* yr = y + r * K;
  float m = -INFINITY;
  for (int64_t j = lane; j < K; j += 32) m = fmaxf(m, xr[j]);
  m = warp_max(m);
  double s = 0;
  for (int64_t j = lane; j < K; j += 32) s += exp((static_cast<double>(xr[j]) - m) * inv_t);
  s = warp_sum(s);
  const double inv = 1.0 / s;
  // y = (float)((float)e * inv): the CPU stores e as T first, then rescales
  for (int64_t j = lane; j < K; j += 32) {
    const float e = static_cast<float>(exp((static_cast<double>(xr[j]) - m) * inv_t));
    yr[j] = static_cast<float>(static_cast<double>(e) * inv);
  }
}

__global__ void softmax_bwd_kernel(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx,
                                   int64_t R, int64_t K, double inv_t, const double* __restrict__ inv_t_dev) {
  const int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= R) return;
  if (inv_t_dev) inv_t = *inv_t_dev;
  const float *yr = y + r * K, *dyr = dy + r * K;
  double dot = 0;
  for (int64_t j = lane; j < K; j += 32) dot += static_cast<double>(dyr[j]) * yr[j];
  dot = warp_sum(dot);
  for (int64_t j = lane; j < K; j += 32)
    dx[r * K + j] = static_cast<float>(static_cast<double>(yr[j]) * (static_cast<double>(dyr[j]) - dot) * inv_t);
}

__global__ void xent_rows_kernel(const float* __restrict__ x, const int32_t* __restrict__ labels,
                                 float* __restrict__ probs, double* __restrict__ row_loss, int64_t N, int64_t K) {
  const int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= N) return;
  const float* xr = x + r * K;
  double m = -INFINITY;
  for (int64_t j = lane; j < K; j += 32) m = fmax(m, static_cast<double>(xr[j]));
  m = warp_max(m);
  double s = 0;
  for (int64_t j = lane; j < K; j += 32) s += exp(static_cast<double>(xr[j]) - m);
  s = warp_sum(s);
  const double lse = m + log(s);
  for (int64_t j = lane; j < K; j += 32) probs[r * K + j] = static_cast<float>(exp(static_cast<double>(xr[j]) - lse));
  if (lane == 0) {
    const int32_t l = labels[r];
    row_loss[r] = (l >= 0 && l < K) ? lse - static_cast<double>(xr[l]) : NAN;
  }
}

// One block: sum in row order (thread t owns rows t, t+B, ...; fixed tree across threads).
__global__ void mean_kernel(const double* __restrict__ v, int64_t n, float* __restrict__ out) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += v[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = static_cast<float>(n > 0 ? s / static_cast<double>(n) : 0.0);
}

__global__ void xent_bwd_kernel(const float* __restrict__ probs, const int32_t* __restrict__ labels,
                                const float* __restrict__ dloss, float* __restrict__ dl, int64_t N, int64_t K) {
  const float g = static_cast<float>(static_cast<double>(dloss[0]) / static_cast<double>(N));
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * K; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / K, j = i % K;
    float v = probs[i] * g;
    if (labels[r] == j) v -= g;
    dl[i] = v;
  }
}

unsigned warps_grid(int64_t rows) { return static_cast<unsigned>((rows * 32 + kThreads - 1) / kThreads); }

const double* inv_t_ptr(const Tensor& inv_t, const char* op) {
  if (!inv_t.defined()) return nullptr;
  ASAP_CHECK(inv_t.dtype() == DType::F64 && inv_t.numel() == 1 && inv_t.device().is_cuda(), op,
             ": inv_t must be a 0-d float64 CUDA tensor");
  return inv_t.data<double>();
}

void softmax_fwd_cuda(const Tensor& x, double t, const Tensor& inv_t, Tensor& y) {
  check_f32(x, "softmax_fwd");
  const int64_t K = x.dim(x.ndim() - 1), R = K ? x.numel() / K : 0;
  if (R == 0) return;
  ASAP_LAUNCH(softmax_fwd_kernel, warps_grid(R), kThreads, 0, stream(), fptr(x), fptr(y), R, K, 1.0 / t,
              inv_t_ptr(inv_t, "softmax_fwd"));
  ASAP_CUDA_LAUNCH_CHECK("softmax_fwd");
}
void softmax_bwd_cuda(const Tensor& y, const Tensor& dy, double t, const Tensor& inv_t, Tensor& dx) {
  check_f32(y, "softmax_bwd");
  check_f32(dy, "softmax_bwd");
  const int64_t K = y.dim(y.ndim() - 1), R = K ? y.numel() / K : 0;
  if (R == 0) return;
  ASAP_LAUNCH(softmax_bwd_kernel, warps_grid(R), kThreads, 0, stream(), fptr(y), fptr(dy), fptr(dx), R, K, 1.0 / t,
              inv_t_ptr(inv_t, "softmax_bwd"));
  ASAP_CUDA_LAUNCH_CHECK("softmax_bwd");
}
void xent_fwd_cuda(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& loss0d) {
  check_f32(logits, "xent_fwd");
  check_i32(labels, "xent_fwd");
  const int64_t N = logits.dim(0), K = logits.dim(1);
  ASAP_CHECK_SHAPE(labels.numel() == N, "xent_fwd: ", N, " rows but ", labels.numel(), " labels");
  DeviceBuffer rows(sizeof(double) * std::max<int64_t>(N, 1));
  if (N > 0) {
    ASAP_LAUNCH(xent_rows_kernel, warps_grid(N), kThreads, 0, stream(), fptr(logits), iptr(labels), fptr(probs),
                                                               rows.as<double>(), N, K);
    ASAP_CUDA_LAUNCH_CHECK("xent_fwd");
  }
  ASAP_LAUNCH(mean_kernel, 1, kThreads, 0, stream(), rows.as<double>(), N, fptr(loss0d));
  ASAP_CUDA_LAUNCH_CHECK("xent_fwd(mean)");
}
void xent_bwd_cuda(const Tensor& probs, const Tensor& labels, const Tensor& dloss0d, Tensor& dlogits) {
  check_f32(probs, "xent_bwd");
  check_i32(labels, "xent_bwd");
  const int64_t N = probs.dim(0), K = probs.dim(1);
  if (N * K == 0) return;
  ASAP_LAUNCH(xent_bwd_kernel, grid_for(N * K), kThreads, 0, stream(), fptr(probs), iptr(labels), fptr(dloss0d),
                                                              fptr(dlogits), N, K);
  ASAP_CUDA_LAUNCH_CHECK("xent_bwd");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, softmax_fwd, softmax_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, softmax_bwd, softmax_bwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, xent_fwd, xent_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, xent_bwd, xent_bwd_cuda);

}  // namespace asap::cuda
