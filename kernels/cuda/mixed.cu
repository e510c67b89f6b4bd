// Fused mixed-op weighted sum y = sum_k w[k] x_k over the K alive inputs. Forward reads the K
// inputs once and writes y once (one launch, pointers passed by value in a kernel-parameter
// struct, up to 8 per launch). Backward reads dy once and each x_k once, writes every dx_k and
// accumulates the K dot products <x_k, dy> per block in registers; a second pass adds the block
// partials in a fixed order (no atomics, deterministic). Dead ops are simply absent from xs.
#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

constexpr int kMaxK = 8;

struct WsumPtrs {
  const float* x[kMaxK];
  float* dx[kMaxK];  // backward only; null = not wanted
  int K;
  int k0;            // index of x[0] in the full list (weights are w[k0 + k])
};

__global__ void wsum_fwd_kernel(WsumPtrs p, const float* __restrict__ w, float* __restrict__ y, int64_t n,
                                bool accumulate) {
  float wk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) wk[k] = k < p.K ? w[p.k0 + k] : 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float acc = accumulate ? y[i] : 0.f;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k)
      if (k < p.K) acc += wk[k] * p.x[k][i];
    y[i] = acc;
  }
}

// Vectorised variant: all pointers 16-byte aligned, n % 4 == 0.
__global__ void wsum_fwd_kernel4(WsumPtrs p, const float* __restrict__ w, float4* __restrict__ y, int64_t n4,
                                 bool accumulate) {
  float wk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) wk[k] = k < p.K ? w[p.k0 + k] : 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    float4 acc = accumulate ? y[i] : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int k = 0; k < kMaxK; ++k)
      if (k < p.K) {
        const float4 v = reinterpret_cast<const float4*>(p.x[k])[i];
        acc.x += wk[k] * v.x; acc.y += wk[k] * v.y; acc.z += wk[k] * v.z; acc.w += wk[k] * v.w;
      }
    y[i] = acc;
  }
}

// partial[k * gridDim.x + block] = this block's share of <x_k, dy>.
__global__ void wsum_bwd_kernel(WsumPtrs p, const float* __restrict__ w, const float* __restrict__ dy, int64_t n,
                                bool want_dw, double* __restrict__ partial, float* __restrict__ dw_out) {
  float wk[kMaxK], dot[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) {
    wk[k] = k < p.K ? w[p.k0 + k] : 0.f;
    dot[k] = 0.f;
  }
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = dy[i];
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      if (k >= p.K) continue;
      if (p.dx[k]) p.dx[k][i] = wk[k] * g;
      if (want_dw) dot[k] += p.x[k][i] * g;
    }
  }
  if (!want_dw) return;
  __shared__ double red[32][kMaxK];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) {
    const float v = warp_sum(dot[k]);
    if (lane == 0) red[wid][k] = v;
  }
  __syncthreads();
  if (threadIdx.x < p.K) {
    double t = 0;
    for (int q = 0; q < nw; ++q) t += red[q][threadIdx.x];
    // One block: its sum is the total (what reduce_partials would write), so no second pass.
    if (dw_out)
      dw_out[threadIdx.x] = static_cast<float>(t);
    else
      partial[static_cast<int64_t>(threadIdx.x) * gridDim.x + blockIdx.x] = t;
  }
}

bool aligned16(const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; }

void wsum_fwd_cuda(const std::vector<Tensor>& xs, const Tensor& w, Tensor& y) {
  check_f32(y, "wsum_fwd");
  const int K = static_cast<int>(xs.size());
  const int64_t n = y.numel();
  if (n == 0) return;
  if (K == 0) {
    ASAP_CUDA_CHECK(cudaMemsetAsync(fptr(y), 0, y.nbytes(), stream()));
    return;
  }
  check_f32(w, "wsum_fwd");
  for (int k0 = 0; k0 < K; k0 += kMaxK) {  // K > 8 (never in DARTS) takes extra accumulate passes
    WsumPtrs p{};
    p.K = std::min(kMaxK, K - k0);
    p.k0 = k0;
    bool vec = n % 4 == 0 && aligned16(fptr(y));
    for (int k = 0; k < p.K; ++k) {
      const Tensor& x = xs[k0 + k];
      check_f32(x, "wsum_fwd");
      ASAP_CHECK_SHAPE(x.numel() == n, "wsum_fwd: input ", k0 + k, " has ", x.numel(), " elements, output ", n);
      p.x[k] = fptr(x);
      vec = vec && aligned16(p.x[k]);
    }
    if (vec) {
      ASAP_LAUNCH(wsum_fwd_kernel4, grid_for(n / 4), kThreads, 0, stream(), p, fptr(w), reinterpret_cast<float4*>(fptr(y)),
                                                                  n / 4, k0 > 0);
    } else {
      ASAP_LAUNCH(wsum_fwd_kernel, grid_for(n), kThreads, 0, stream(), p, fptr(w), fptr(y), n, k0 > 0);
    }
    ASAP_CUDA_LAUNCH_CHECK("wsum_fwd");
  }
}

void wsum_bwd_cuda(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& dy, std::vector<Tensor>& dxs,
                   Tensor& dw) {
  check_f32(dy, "wsum_bwd");
  check_f32(w, "wsum_bwd");
  check_f32(dw, "wsum_bwd");
  const int K = static_cast<int>(xs.size());
  const int64_t n = dy.numel();
  if (K == 0) return;
  const bool want_dw = dw.defined();
  if (n == 0) {
    if (want_dw) ASAP_CUDA_CHECK(cudaMemsetAsync(fptr(dw), 0, dw.nbytes(), stream()));
    return;
  }
  const int nb = reduce_blocks(n);
  DeviceBuffer partial(want_dw ? sizeof(double) * nb * std::min(K, kMaxK) : 0);
  for (int k0 = 0; k0 < K; k0 += kMaxK) {
    WsumPtrs p{};
    p.K = std::min(kMaxK, K - k0);
    p.k0 = k0;
    for (int k = 0; k < p.K; ++k) {
      const int j = k0 + k;
      check_f32(xs[j], "wsum_bwd");
      p.x[k] = fptr(xs[j]);
      p.dx[k] = (j < static_cast<int>(dxs.size()) && dxs[j].defined()) ? fptr(dxs[j]) : nullptr;
    }
    float* direct = want_dw && nb == 1 ? fptr(dw) + k0 : nullptr;
    ASAP_LAUNCH(wsum_bwd_kernel, nb, kThreads, 0, stream(), p, fptr(w), fptr(dy), n, want_dw, partial.as<double>(),
                direct);
    ASAP_CUDA_LAUNCH_CHECK("wsum_bwd");
    if (want_dw && !direct) reduce_partials(partial.as<double>(), nb, p.K, fptr(dw) + k0, "wsum_bwd(dw)");
  }
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, wsum_fwd, wsum_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, wsum_bwd, wsum_bwd_cuda);

}  // namespace asap::cuda
