// General (grouped, any k/stride/padding/dilation) convolution via im2col + cuBLAS. The column
// buffer is built for a chunk of samples at a time (capped at 256 MiB) and consumed by one
// strided-batched GEMM per group. col2im is a gather (each input-gradient element sums its own
// kh*kw contributions), so no atomics and a deterministic result. Kernels may be non-square
// (conv_7x1_1x7's 1x7 and 7x1); stride, padding and dilation are the same on both dims.
#include "kernels/cuda/conv_paths.cuh"
#include "kernels/cuda/handles.h"

namespace asap::cuda {
namespace {

struct ConvDims {
  int N, C, H, W, O, Ho, Wo, kh, kw, s, p, d, groups;
  __host__ __device__ int64_t hw_out() const { return static_cast<int64_t>(Ho) * Wo; }
  __host__ __device__ int kk() const { return kh * kw; }
  __host__ __device__ int64_t ckk() const { return static_cast<int64_t>(C) * kh * kw; }
};

ConvDims dims_of(const Tensor& x_or_dx, const Tensor& w, const Tensor& y_or_dy, const Conv2dParams& p) {
  return ConvDims{(int)x_or_dx.dim(0), (int)x_or_dx.dim(1), (int)x_or_dx.dim(2), (int)x_or_dx.dim(3),
                  (int)w.dim(0),       (int)y_or_dy.dim(2), (int)y_or_dy.dim(3), (int)w.dim(2),
                  (int)w.dim(3),       p.stride,            p.padding,           p.dilation,
                  p.groups};
}

__global__ void im2col_kernel(const float* __restrict__ x, float* __restrict__ col, int nb, ConvDims c) {
  const int64_t hw = c.hw_out(), total = static_cast<int64_t>(nb) * c.ckk() * hw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t q = i % hw, row = (i / hw) % c.ckk(), n = i / (hw * c.ckk());
    const int oh = static_cast<int>(q / c.Wo), ow = static_cast<int>(q % c.Wo);
    const int ch = static_cast<int>(row / c.kk()), kk = static_cast<int>(row % c.kk());
    const int ih = oh * c.s - c.p + (kk / c.kw) * c.d, iw = ow * c.s - c.p + (kk % c.kw) * c.d;
    col[i] = (ih >= 0 && ih < c.H && iw >= 0 && iw < c.W)
                 ? x[((n * c.C + ch) * c.H + ih) * static_cast<int64_t>(c.W) + iw] : 0.f;
  }
}

__global__ void col2im_kernel(const float* __restrict__ col, float* __restrict__ dx, int nb, ConvDims c) {
  const int64_t hw = c.hw_out(), total = static_cast<int64_t>(nb) * c.C * c.H * c.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int iw = static_cast<int>(i % c.W), ih = static_cast<int>((i / c.W) % c.H);
    const int64_t nc = i / (static_cast<int64_t>(c.H) * c.W);
    const int ch = static_cast<int>(nc % c.C);
    const int64_t n = nc / c.C;
    const float* cp = col + (n * c.ckk() + static_cast<int64_t>(ch) * c.kk()) * hw;
    float acc = 0.f;
    for (int kh = 0; kh < c.kh; ++kh) {
      const int th = ih + c.p - kh * c.d;
      if (th < 0 || th % c.s) continue;
      const int oh = th / c.s;
      if (oh >= c.Ho) continue;
      for (int kw = 0; kw < c.kw; ++kw) {
        const int tw = iw + c.p - kw * c.d;
        if (tw < 0 || tw % c.s) continue;
        const int ow = tw / c.s;
        if (ow >= c.Wo) continue;
        acc += cp[(kh * c.kw + kw) * hw + oh * c.Wo + ow];
      }
    }
    dx[i] = acc;
  }
}

int chunk_size(const ConvDims& c) {
  const int64_t per = c.ckk() * c.hw_out() * static_cast<int64_t>(sizeof(float));
  const int64_t cap = int64_t(256) << 20;
  int64_t nb = per > 0 ? cap / per : c.N;
  if (nb < 1) nb = 1;
  if (nb > c.N) nb = c.N;
  return static_cast<int>(nb);
}

}  // namespace

void im2col_conv_fwd(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) {
  const ConvDims c = dims_of(x, w, y, p);
  if (c.N == 0 || c.hw_out() == 0) return;
  const int G = c.groups, Og = c.O / G;
  const int64_t Kg = c.ckk() / G, hw = c.hw_out();
  const int nb = chunk_size(c);
  DeviceBuffer col(sizeof(float) * nb * c.ckk() * hw);
    for (int n0 = 0; n0 < c.N; n0 += nb) {
    const int cnt = std::min(nb, c.N - n0);
    ASAP_LAUNCH(im2col_kernel, grid_for(cnt * c.ckk() * hw), kThreads, 0, stream(), fptr(x) + static_cast<int64_t>(n0) * c.C * c.H * c.W, col.as<float>(), cnt, c);
    ASAP_CUDA_LAUNCH_CHECK("conv2d_fwd(im2col)");
    for (int g = 0; g < G; ++g)
      sgemm_strided_batched(
          CUBLAS_OP_N, CUBLAS_OP_N, (int)hw, Og, (int)Kg, 1.f, col.as<float>() + g * Kg * hw,
          (int)hw, c.ckk() * hw, fptr(w) + g * Og * Kg, (int)Kg, 0, 0.f,
          fptr(y) + (static_cast<int64_t>(n0) * c.O + g * Og) * hw, (int)hw, c.O * hw, cnt);
  }
}

void im2col_conv_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p) {
  const ConvDims c = dims_of(dx, w, dy, p);
  if (c.N == 0) return;
  const int G = c.groups, Og = c.O / G;
  const int64_t Kg = c.ckk() / G, hw = c.hw_out();
  if (hw == 0) {
    ASAP_CUDA_CHECK(cudaMemsetAsync(fptr(dx), 0, dx.nbytes(), stream()));
    return;
  }
  const int nb = chunk_size(c);
  DeviceBuffer col(sizeof(float) * nb * c.ckk() * hw);
    for (int n0 = 0; n0 < c.N; n0 += nb) {
    const int cnt = std::min(nb, c.N - n0);
    for (int g = 0; g < G; ++g)
      sgemm_strided_batched(
          CUBLAS_OP_N, CUBLAS_OP_T, (int)hw, (int)Kg, Og, 1.f,
          fptr(dy) + (static_cast<int64_t>(n0) * c.O + g * Og) * hw, (int)hw, c.O * hw, fptr(w) + g * Og * Kg,
          (int)Kg, 0, 0.f, col.as<float>() + g * Kg * hw, (int)hw, c.ckk() * hw, cnt);
    const int64_t total = static_cast<int64_t>(cnt) * c.C * c.H * c.W;
    ASAP_LAUNCH(col2im_kernel, grid_for(total), kThreads, 0, stream(), col.as<float>(), fptr(dx) + static_cast<int64_t>(n0) * c.C * c.H * c.W, cnt, c);
    ASAP_CUDA_LAUNCH_CHECK("conv2d_bwd_data(col2im)");
  }
}

void im2col_conv_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p) {
  const ConvDims c = dims_of(x, dw, dy, p);
  const int G = c.groups, Og = c.O / G;
  const int64_t Kg = c.ckk() / G, hw = c.hw_out(), wsize = static_cast<int64_t>(c.O) * Kg;
  if (c.N == 0 || hw == 0) {
    ASAP_CUDA_CHECK(cudaMemsetAsync(fptr(dw), 0, dw.nbytes(), stream()));
    return;
  }
  const int nb = chunk_size(c);
  DeviceBuffer col(sizeof(float) * nb * c.ckk() * hw);
  DeviceBuffer ws(sizeof(float) * c.N * wsize);  // per-sample weight gradients, summed below
    for (int n0 = 0; n0 < c.N; n0 += nb) {
    const int cnt = std::min(nb, c.N - n0);
    ASAP_LAUNCH(im2col_kernel, grid_for(cnt * c.ckk() * hw), kThreads, 0, stream(), fptr(x) + static_cast<int64_t>(n0) * c.C * c.H * c.W, col.as<float>(), cnt, c);
    ASAP_CUDA_LAUNCH_CHECK("conv2d_bwd_weight(im2col)");
    for (int g = 0; g < G; ++g)
      sgemm_strided_batched(
          CUBLAS_OP_T, CUBLAS_OP_N, (int)Kg, Og, (int)hw, 1.f, col.as<float>() + g * Kg * hw,
          (int)hw, c.ckk() * hw, fptr(dy) + (static_cast<int64_t>(n0) * c.O + g * Og) * hw, (int)hw, c.O * hw,
          0.f, ws.as<float>() + n0 * wsize + g * Og * Kg, (int)Kg, wsize, cnt);
  }
  sum_batch(ws.as<float>(), c.N, wsize, fptr(dw), "conv2d_bwd_weight(im2col)");
}

}  // namespace asap::cuda
