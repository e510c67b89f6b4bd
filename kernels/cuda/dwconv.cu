// Depthwise convolution, forward / backward-data / backward-weight. Each block owns one output
// (or input-gradient) tile of one (n, c) plane and stages the input halo and the k*k filter in
// shared memory, so every input element is read from device memory about once per tile instead
// of k*k times. The weight gradient is a two-pass reduction: blocks (c, slice) write k*k partial
// sums, a second pass adds the slices in a fixed order (no atomics, deterministic).
#include "kernels/cuda/dwconv.cuh"

namespace asap::cuda {
namespace {

__host__ __device__ inline int floordiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

struct Tile {
  int tw, th, tiles_w, tiles_h;
};
// Tile width follows the plane width (8/16/32) so small reduction-cell planes don't idle threads.
Tile make_tile(int Ho, int Wo) {
  Tile t;
  t.tw = Wo <= 8 ? 8 : Wo <= 16 ? 16 : 32;
  int th = 256 / t.tw;
  while (th > 1 && th / 2 >= Ho) th /= 2;
  t.th = th;
  t.tiles_w = (Wo + t.tw - 1) / t.tw;
  t.tiles_h = (Ho + t.th - 1) / t.th;
  return t;
}

template <int K>
__global__ void dw_fwd_kernel(const float* __restrict__ x, const float* __restrict__ w,
                              float* __restrict__ y, DwShape s, int tiles_w, bool relu_in) {
  ASAP_DYNAMIC_SHARED(float, smem);
  const int plane = blockIdx.x, c = plane % s.C;
  const int oh0 = (blockIdx.y / tiles_w) * blockDim.y, ow0 = (blockIdx.y % tiles_w) * blockDim.x;
  const int IH = (blockDim.y - 1) * s.stride + (K - 1) * s.dil + 1;
  const int IW = (blockDim.x - 1) * s.stride + (K - 1) * s.dil + 1;
  float* tin = smem;
  float* wsh = smem + IH * IW;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x, nt = blockDim.x * blockDim.y;
  for (int i = tid; i < K * K; i += nt) wsh[i] = w[c * K * K + i];
  const float* xp = x + static_cast<int64_t>(plane) * s.H * s.W;
  const int ih0 = oh0 * s.stride - s.pad, iw0 = ow0 * s.stride - s.pad;
  for (int i = tid; i < IH * IW; i += nt) {
    const int ih = ih0 + i / IW, iw = iw0 + i % IW;
    float v = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) ? xp[ih * s.W + iw] : 0.f;
    tin[i] = relu_in ? fmaxf(v, 0.f) : v;
  }
  __syncthreads();
  const int oh = oh0 + threadIdx.y, ow = ow0 + threadIdx.x;
  if (oh >= s.Ho || ow >= s.Wo) return;
  const float* t = tin + threadIdx.y * s.stride * IW + threadIdx.x * s.stride;
  float acc = 0.f;
#pragma unroll
  for (int kh = 0; kh < K; ++kh)
#pragma unroll
    for (int kw = 0; kw < K; ++kw) acc += wsh[kh * K + kw] * t[kh * s.dil * IW + kw * s.dil];
  y[(static_cast<int64_t>(plane) * s.Ho + oh) * s.Wo + ow] = acc;
}

template <int K>
__global__ void dw_bwd_data_kernel(const float* __restrict__ dy, const float* __restrict__ w,
                                   const float* __restrict__ mask_x, float* __restrict__ dx, DwShape s,
                                   int tiles_w) {
  ASAP_DYNAMIC_SHARED(float, smem);
  const int plane = blockIdx.x, c = plane % s.C;
  const int ih0 = (blockIdx.y / tiles_w) * blockDim.y, iw0 = (blockIdx.y % tiles_w) * blockDim.x;
  // Output rows/cols that can reach this input tile.
  const int oh_lo = floordiv(ih0 + s.pad - (K - 1) * s.dil, s.stride);
  const int oh_hi = floordiv(ih0 + static_cast<int>(blockDim.y) - 1 + s.pad, s.stride);
  const int ow_lo = floordiv(iw0 + s.pad - (K - 1) * s.dil, s.stride);
  const int ow_hi = floordiv(iw0 + static_cast<int>(blockDim.x) - 1 + s.pad, s.stride);
  const int OH = oh_hi - oh_lo + 1, OW = ow_hi - ow_lo + 1;
  float* tdy = smem;
  float* wsh = smem + OH * OW;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x, nt = blockDim.x * blockDim.y;
  for (int i = tid; i < K * K; i += nt) wsh[i] = w[c * K * K + i];
  const float* dyp = dy + static_cast<int64_t>(plane) * s.Ho * s.Wo;
  for (int i = tid; i < OH * OW; i += nt) {
    const int oh = oh_lo + i / OW, ow = ow_lo + i % OW;
    tdy[i] = (oh >= 0 && oh < s.Ho && ow >= 0 && ow < s.Wo) ? dyp[oh * s.Wo + ow] : 0.f;
  }
  __syncthreads();
  const int ih = ih0 + threadIdx.y, iw = iw0 + threadIdx.x;
  if (ih >= s.H || iw >= s.W) return;
  const int64_t xi = (static_cast<int64_t>(plane) * s.H + ih) * s.W + iw;
  if (mask_x && !(mask_x[xi] > 0.f)) {
    dx[xi] = 0.f;
    return;
  }
  float acc = 0.f;
#pragma unroll
  for (int kh = 0; kh < K; ++kh) {
    const int th = ih + s.pad - kh * s.dil - oh_lo * s.stride;  // >= 0 by construction of oh_lo
    if (th % s.stride) continue;
    const int r = th / s.stride;
#pragma unroll
    for (int kw = 0; kw < K; ++kw) {
      const int tw = iw + s.pad - kw * s.dil - ow_lo * s.stride;
      if (tw % s.stride) continue;
      acc += wsh[kh * K + kw] * tdy[r * OW + tw / s.stride];
    }
  }
  dx[xi] = acc;
}

// Block (c, slice): k*k partial sums of dy * x over this slice of the N*Ho*Wo output positions.
template <int K>
__global__ void dw_bwd_weight_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                     double* __restrict__ partial, DwShape s, bool relu_in,
                                     float* __restrict__ dw_out) {
  const int c = blockIdx.x, slice = blockIdx.y, P = gridDim.y;
  const int64_t hw = static_cast<int64_t>(s.Ho) * s.Wo, total = s.N * hw;
  float acc[K * K];
#pragma unroll
  for (int j = 0; j < K * K; ++j) acc[j] = 0.f;
  for (int64_t idx = static_cast<int64_t>(slice) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(P) * blockDim.x) {
    const int n = static_cast<int>(idx / hw), r = static_cast<int>(idx % hw);
    const int oh = r / s.Wo, ow = r % s.Wo;
    const int64_t plane = static_cast<int64_t>(n) * s.C + c;
    const float g = dy[plane * hw + r];
    const float* xp = x + plane * s.H * s.W;
#pragma unroll
    for (int kh = 0; kh < K; ++kh) {
      const int ih = oh * s.stride - s.pad + kh * s.dil;
      if (ih < 0 || ih >= s.H) continue;
#pragma unroll
      for (int kw = 0; kw < K; ++kw) {
        const int iw = ow * s.stride - s.pad + kw * s.dil;
        if (iw < 0 || iw >= s.W) continue;
        float v = xp[ih * s.W + iw];
        if (relu_in) v = fmaxf(v, 0.f);
        acc[kh * K + kw] += g * v;
      }
    }
  }
  __shared__ double red[32][K * K];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int j = 0; j < K * K; ++j) {
    const float v = warp_sum(acc[j]);
    if (lane == 0) red[wid][j] = v;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < K * K; j += blockDim.x) {
    double t = 0;
    for (int q = 0; q < nw; ++q) t += red[q][j];
    // One slice (P == 1): this sum is the total reduce_partials would write; skip that pass.
    if (dw_out)
      dw_out[static_cast<int64_t>(c) * K * K + j] = static_cast<float>(t);
    else
      partial[(static_cast<int64_t>(c) * K * K + j) * P + slice] = t;
  }
}

void check_k(int k) {
  ASAP_CHECK(k == 1 || k == 3 || k == 5 || k == 7, "CUDA depthwise conv supports k in {1,3,5,7}, got ", k);
}

template <int K>
void fwd_k(const float* x, const float* w, float* y, const DwShape& s, bool relu_in) {
  Tile t = make_tile(s.Ho, s.Wo);
  const int IH = (t.th - 1) * s.stride + (K - 1) * s.dil + 1, IW = (t.tw - 1) * s.stride + (K - 1) * s.dil + 1;
  const size_t shm = sizeof(float) * (IH * IW + K * K);
  ASAP_CHECK(shm <= 48 * 1024, "depthwise conv tile needs ", shm, " bytes of shared memory");
  dim3 grid(s.N * s.C, t.tiles_w * t.tiles_h), block(t.tw, t.th);
  ASAP_LAUNCH(dw_fwd_kernel<K>, grid, block, shm, stream(), x, w, y, s, t.tiles_w, relu_in);
  ASAP_CUDA_LAUNCH_CHECK("depthwise_conv_fwd");
}

template <int K>
void bwd_data_k(const float* dy, const float* w, const float* mask_x, float* dx, const DwShape& s) {
  Tile t = make_tile(s.H, s.W);
  const int OH = floordiv(t.th - 1 + s.pad, s.stride) - floordiv(s.pad - (K - 1) * s.dil, s.stride) + 2;
  const int OW = floordiv(t.tw - 1 + s.pad, s.stride) - floordiv(s.pad - (K - 1) * s.dil, s.stride) + 2;
  const size_t shm = sizeof(float) * (OH * OW + K * K);  // +1 row/col of slack per tile offset
  ASAP_CHECK(shm <= 48 * 1024, "depthwise conv tile needs ", shm, " bytes of shared memory");
  dim3 grid(s.N * s.C, t.tiles_w * t.tiles_h), block(t.tw, t.th);
  ASAP_LAUNCH(dw_bwd_data_kernel<K>, grid, block, shm, stream(), dy, w, mask_x, dx, s, t.tiles_w);
  ASAP_CUDA_LAUNCH_CHECK("depthwise_conv_bwd_data");
}

template <int K>
void bwd_weight_k(const float* x, const float* dy, float* dw, const DwShape& s, bool relu_in) {
  const int64_t total = static_cast<int64_t>(s.N) * s.Ho * s.Wo;
  int64_t P = (total + 4 * kThreads - 1) / (4 * kThreads);
  const int64_t cap = std::max<int64_t>(1, (4LL * sm_count() + s.C - 1) / s.C);
  P = std::max<int64_t>(1, std::min(P, cap));
  DeviceBuffer partial(sizeof(double) * s.C * K * K * P);
  dim3 grid(s.C, static_cast<unsigned>(P));
  float* direct = P == 1 ? dw : nullptr;
  ASAP_LAUNCH(dw_bwd_weight_kernel<K>, grid, kThreads, 0, stream(), x, dy, partial.as<double>(), s, relu_in, direct);
  ASAP_CUDA_LAUNCH_CHECK("depthwise_conv_bwd_weight");
  if (!direct) reduce_partials(partial.as<double>(), static_cast<int>(P), s.C * K * K, dw, "depthwise_conv_bwd_weight");
}

}  // namespace

#define ASAP_DW_DISPATCH(fn, ...)              \
  switch (s.k) {                               \
    case 1: fn<1>(__VA_ARGS__); break;         \
    case 3: fn<3>(__VA_ARGS__); break;         \
    case 5: fn<5>(__VA_ARGS__); break;         \
    default: fn<7>(__VA_ARGS__); break;        \
  }

void dw_fwd(const float* x, const float* w, float* y, const DwShape& s, bool relu_in) {
  check_k(s.k);
  if (static_cast<int64_t>(s.N) * s.C * s.Ho * s.Wo == 0) return;
  ASAP_DW_DISPATCH(fwd_k, x, w, y, s, relu_in)
}
void dw_bwd_data(const float* dy, const float* w, const float* mask_x, float* dx, const DwShape& s) {
  check_k(s.k);
  if (static_cast<int64_t>(s.N) * s.C * s.H * s.W == 0) return;
  ASAP_DW_DISPATCH(bwd_data_k, dy, w, mask_x, dx, s)
}
void dw_bwd_weight(const float* x, const float* dy, float* dw, const DwShape& s, bool relu_in) {
  check_k(s.k);
  ASAP_DW_DISPATCH(bwd_weight_k, x, dy, dw, s, relu_in)
}

}  // namespace asap::cuda
