// Max / average pooling and global average pooling. Backward passes are gathers: every input
// element visits the (few) windows that cover it and sums in output scan order, which equals the
// CPU's accumulation order, needs no atomics and writes each dx element once.
#include <cfloat>

#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

struct PoolDims {
  int64_t planes;
  int H, W, Ho, Wo, k, s, p;
};
PoolDims pool_dims(const Tensor& x, const Tensor& y, const Pool2dParams& p) {
  return PoolDims{x.dim(0) * x.dim(1), (int)x.dim(2), (int)x.dim(3), (int)y.dim(2), (int)y.dim(3),
                  p.kernel, p.stride, p.padding};
}

// Output rows whose window [o*s - p, o*s - p + k) contains input row i, clipped to [0, O).
__device__ __forceinline__ void covering(int i, int s, int p, int k, int O, int& lo, int& hi) {
  const int t = i + p - k + 1;
  lo = t <= 0 ? 0 : (t + s - 1) / s;
  hi = (i + p) / s;
  if (hi > O - 1) hi = O - 1;
}

__global__ void maxpool_fwd_kernel(const float* __restrict__ x, float* __restrict__ y, int32_t* __restrict__ am,
                                   PoolDims d) {
  const int64_t total = d.planes * d.Ho * d.Wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int ow = static_cast<int>(i % d.Wo), oh = static_cast<int>((i / d.Wo) % d.Ho);
    const float* xp = x + (i / (int64_t(d.Ho) * d.Wo)) * d.H * d.W;
    const int hs = oh * d.s - d.p, ws = ow * d.s - d.p;
    const int h0 = max(hs, 0), h1 = min(hs + d.k, d.H), w0 = max(ws, 0), w1 = min(ws + d.k, d.W);
    float best = -INFINITY;
    int arg = h0 * d.W + w0;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) {
        const float v = xp[h * d.W + w];
        // NaN propagates and the LAST NaN of the window (scan order) takes the index, exactly as
        // the CPU backend and PyTorch's `(val > maxval) || isnan(val)` (a [cuda] test pins it).
        if (v > best || v != v) {
          best = v;
          arg = h * d.W + w;
        }
      }
    y[i] = best;
    am[i] = arg;
  }
}

__global__ void maxpool_bwd_kernel(const float* __restrict__ dy, const int32_t* __restrict__ am,
                                   float* __restrict__ dx, PoolDims d) {
  const int64_t total = d.planes * d.H * d.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int iw = static_cast<int>(i % d.W), ih = static_cast<int>((i / d.W) % d.H);
    const int64_t base = (i / (int64_t(d.H) * d.W)) * d.Ho * d.Wo;
    const int me = ih * d.W + iw;
    int oh0, oh1, ow0, ow1;
    covering(ih, d.s, d.p, d.k, d.Ho, oh0, oh1);
    covering(iw, d.s, d.p, d.k, d.Wo, ow0, ow1);
    float acc = 0.f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + oh * d.Wo + ow;
        if (am[o] == me) acc += dy[o];
      }
    dx[i] = acc;
  }
}

__device__ __forceinline__ int avg_count(int oh, int ow, const PoolDims& d) {
  const int hs = oh * d.s - d.p, ws = ow * d.s - d.p;
  const int h = min(hs + d.k, d.H) - max(hs, 0), w = min(ws + d.k, d.W) - max(ws, 0);
  return h * w;
}

__global__ void avgpool_fwd_kernel(const float* __restrict__ x, float* __restrict__ y, PoolDims d) {
  const int64_t total = d.planes * d.Ho * d.Wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int ow = static_cast<int>(i % d.Wo), oh = static_cast<int>((i / d.Wo) % d.Ho);
    const float* xp = x + (i / (int64_t(d.Ho) * d.Wo)) * d.H * d.W;
    const int hs = oh * d.s - d.p, ws = ow * d.s - d.p;
    const int h0 = max(hs, 0), h1 = min(hs + d.k, d.H), w0 = max(ws, 0), w1 = min(ws + d.k, d.W);
    float acc = 0.f;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) acc += xp[h * d.W + w];
    const int cnt = (h1 - h0) * (w1 - w0);
    y[i] = cnt > 0 ? acc / static_cast<float>(cnt) : 0.f;
  }
}

__global__ void avgpool_bwd_kernel(const float* __restrict__ dy, float* __restrict__ dx, PoolDims d) {
  const int64_t total = d.planes * d.H * d.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int iw = static_cast<int>(i % d.W), ih = static_cast<int>((i / d.W) % d.H);
    const float* dyp = dy + (i / (int64_t(d.H) * d.W)) * d.Ho * d.Wo;
    int oh0, oh1, ow0, ow1;
    covering(ih, d.s, d.p, d.k, d.Ho, oh0, oh1);
    covering(iw, d.s, d.p, d.k, d.Wo, ow0, ow1);
    float acc = 0.f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) acc += dyp[oh * d.Wo + ow] / static_cast<float>(avg_count(oh, ow, d));
    dx[i] = acc;
  }
}

// One warp per (n, c) plane: coalesced reads, a fixed shuffle tree (deterministic).
__global__ void gap_fwd_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t planes, int64_t hw) {
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= planes) return;
  const float* xp = x + warp * hw;
  float s = 0.f;
  for (int64_t i = lane; i < hw; i += 32) s += xp[i];
  s = warp_sum(s);
  if (lane == 0) y[warp] = s / static_cast<float>(hw);
}

__global__ void gap_bwd_kernel(const float* __restrict__ dy, float* __restrict__ dx, int64_t n, int64_t hw) {
  const float inv = 1.f / static_cast<float>(hw);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dy[i / hw] * inv;
}

void maxpool_fwd_cuda(const Tensor& x, Tensor& y, Tensor& argmax, const Pool2dParams& p) {
  check_f32(x, "maxpool_fwd");
  check_i32(argmax, "maxpool_fwd");
  const PoolDims d = pool_dims(x, y, p);
  const int64_t n = y.numel();
  if (n == 0) return;
  ASAP_LAUNCH(maxpool_fwd_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), fptr(y), iptr(argmax), d);
  ASAP_CUDA_LAUNCH_CHECK("maxpool_fwd");
}
void maxpool_bwd_cuda(const Tensor& dy, const Tensor& argmax, Tensor& dx, const Pool2dParams& p) {
  check_f32(dy, "maxpool_bwd");
  check_i32(argmax, "maxpool_bwd");
  const PoolDims d = pool_dims(dx, dy, p);
  const int64_t n = dx.numel();
  if (n == 0) return;
  ASAP_LAUNCH(maxpool_bwd_kernel, grid_for(n), kThreads, 0, stream(), fptr(dy), iptr(argmax), fptr(dx), d);
  ASAP_CUDA_LAUNCH_CHECK("maxpool_bwd");
}
void avgpool_fwd_cuda(const Tensor& x, Tensor& y, const Pool2dParams& p) {
  check_f32(x, "avgpool_fwd");
  const PoolDims d = pool_dims(x, y, p);
  const int64_t n = y.numel();
  if (n == 0) return;
  ASAP_LAUNCH(avgpool_fwd_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), fptr(y), d);
  ASAP_CUDA_LAUNCH_CHECK("avgpool_fwd");
}
void avgpool_bwd_cuda(const Tensor& dy, Tensor& dx, const Pool2dParams& p) {
  check_f32(dy, "avgpool_bwd");
  const PoolDims d = pool_dims(dx, dy, p);
  const int64_t n = dx.numel();
  if (n == 0) return;
  ASAP_LAUNCH(avgpool_bwd_kernel, grid_for(n), kThreads, 0, stream(), fptr(dy), fptr(dx), d);
  ASAP_CUDA_LAUNCH_CHECK("avgpool_bwd");
}
void gap_fwd_cuda(const Tensor& x, Tensor& y) {
  check_f32(x, "gap_fwd");
  const int64_t planes = x.dim(0) * x.dim(1), hw = x.numel() / std::max<int64_t>(planes, 1);
  if (planes == 0) return;
  const int64_t threads = planes * 32;
  ASAP_LAUNCH(gap_fwd_kernel, (unsigned)((threads + kThreads - 1) / kThreads), kThreads, 0, stream(), fptr(x), fptr(y),
                                                                                             planes, hw);
  ASAP_CUDA_LAUNCH_CHECK("gap_fwd");
}
void gap_bwd_cuda(const Tensor& dy, Tensor& dx) {
  check_f32(dy, "gap_bwd");
  const int64_t planes = dx.dim(0) * dx.dim(1), n = dx.numel();
  if (n == 0) return;
  ASAP_LAUNCH(gap_bwd_kernel, grid_for(n), kThreads, 0, stream(), fptr(dy), fptr(dx), n, n / planes);
  ASAP_CUDA_LAUNCH_CHECK("gap_bwd");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, maxpool_fwd, maxpool_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, maxpool_bwd, maxpool_bwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, avgpool_fwd, avgpool_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, avgpool_bwd, avgpool_bwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, gap_fwd, gap_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, gap_bwd, gap_bwd_cuda);

}  // namespace asap::cuda
