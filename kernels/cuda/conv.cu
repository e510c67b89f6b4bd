// conv2d_fwd / bwd_data / bwd_weight: picks the path per call.
//   depthwise (groups == C == O, k in {1,3,5,7}) -> tiled shared-memory kernels (dwconv.cu)
//   1x1, groups 1, padding 0                     -> cuBLAS strided-batched GEMM (pwconv.cu); a
//       strided view or stride > 1 is gathered into a packed buffer first
//   anything else                                -> cuDNN or im2col + cuBLAS, chosen by the
//       environment variable ASAP_CONV_ALGO=cudnn|im2col (default: cudnn when compiled in)
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/conv_paths.cuh"
#include "kernels/cuda/dwconv.cuh"

namespace asap::cuda {
namespace {

enum class Path { Depthwise, Pointwise, General };

Path choose(int64_t C, const Tensor& w, const Conv2dParams& p) {
  const int64_t k = w.dim(2);
  if (p.groups > 1 && p.groups == C && w.dim(0) == C && w.dim(1) == 1 && w.dim(3) == k &&
      (k == 1 || k == 3 || k == 5 || k == 7))
    return Path::Depthwise;
  if (k == 1 && w.dim(3) == 1 && p.groups == 1 && p.padding == 0) return Path::Pointwise;
  return Path::General;
}

bool use_cudnn() {
  static const bool v = [] {
    const char* e = std::getenv("ASAP_CONV_ALGO");
    if (e && std::strcmp(e, "im2col") == 0) return false;
    if (e && std::strcmp(e, "cudnn") == 0 && !cudnn_compiled())
      throw Error("ASAP_CONV_ALGO=cudnn but cuDNN is not compiled into this build");
    if (e && *e && std::strcmp(e, "cudnn") != 0)
      throw Error(std::string("ASAP_CONV_ALGO must be cudnn or im2col, got '") + e + "'");
    return cudnn_compiled();
  }();
  return v;
}

struct View4 {
  int64_t n, c, h, w;  // element strides
};
View4 strides4(const Tensor& t) { return {t.strides()[0], t.strides()[1], t.strides()[2], t.strides()[3]}; }

// xg[n,c,oh,ow] = x[n,c,oh*s,ow*s] for any input strides (FactorizedReduce's shifted view).
__global__ void gather_kernel(const float* __restrict__ x, View4 st, float* __restrict__ xg, int64_t total,
                              int C, int Ho, int Wo, int s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int ow = static_cast<int>(i % Wo), oh = static_cast<int>((i / Wo) % Ho);
    const int64_t nc = i / (static_cast<int64_t>(Ho) * Wo);
    const int64_t c = nc % C, n = nc / C;
    xg[i] = x[n * st.n + c * st.c + static_cast<int64_t>(oh) * s * st.h + static_cast<int64_t>(ow) * s * st.w];
  }
}

// dx[n,c,h,w] = dxg[n,c,h/s,w/s] on the sampled grid, 0 elsewhere (writes every element).
__global__ void scatter_kernel(const float* __restrict__ dxg, float* __restrict__ dx, int64_t total, int H, int W,
                               int Ho, int Wo, int s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int w = static_cast<int>(i % W), h = static_cast<int>((i / W) % H);
    const int64_t nc = i / (static_cast<int64_t>(H) * W);
    float v = 0.f;
    if (h % s == 0 && w % s == 0 && h / s < Ho && w / s < Wo) v = dxg[(nc * Ho + h / s) * Wo + w / s];
    dx[i] = v;
  }
}

// Packed [N,C,Ho,Wo] input for the 1x1 GEMM: x itself when it already is, else a gathered copy.
const float* packed_pw_input(const Tensor& x, int Ho, int Wo, int s, DeviceBuffer& buf) {
  if (s == 1 && x.is_contiguous()) return fptr(x);
  const int64_t total = x.dim(0) * x.dim(1) * Ho * Wo;
  buf = DeviceBuffer(sizeof(float) * total);
  ASAP_LAUNCH(gather_kernel, grid_for(total), kThreads, 0, stream(), fptr(x), strides4(x), buf.as<float>(), total,
                                                             (int)x.dim(1), Ho, Wo, s);
  ASAP_CUDA_LAUNCH_CHECK("conv2d(1x1 gather)");
  return buf.as<float>();
}

void check_args(const Tensor& a, const Tensor& w, const Tensor& b, const char* op) {
  check_f32(a, op);
  check_f32(w, op);
  check_f32(b, op);
  ASAP_CHECK_SHAPE(a.ndim() == 4 && w.ndim() == 4 && b.ndim() == 4, op, ": expects 4-D tensors");
}

void conv2d_fwd_cuda(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) {
  check_args(x, w, y, "conv2d_fwd");
  const int N = (int)x.dim(0), C = (int)x.dim(1), O = (int)w.dim(0), Ho = (int)y.dim(2), Wo = (int)y.dim(3);
  switch (choose(C, w, p)) {
    case Path::Pointwise: {
      DeviceBuffer buf;
      pw_fwd(packed_pw_input(x, Ho, Wo, p.stride, buf), fptr(w), fptr(y), N, C, O, int64_t(Ho) * Wo);
      return;
    }
    case Path::Depthwise: {
      Tensor xc = x.contiguous();
      dw_fwd(fptr(xc), fptr(w), fptr(y), dw_shape(xc, (int)w.dim(2), Ho, Wo, p), false);
      return;
    }
    case Path::General: {
      Tensor xc = x.contiguous();
      if (!use_cudnn() || !cudnn_conv_fwd(xc, w, y, p)) im2col_conv_fwd(xc, w, y, p);
      return;
    }
  }
}

void conv2d_bwd_data_cuda(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p) {
  check_args(dy, w, dx, "conv2d_bwd_data");
  const int N = (int)dx.dim(0), C = (int)dx.dim(1), H = (int)dx.dim(2), W = (int)dx.dim(3);
  const int O = (int)w.dim(0), Ho = (int)dy.dim(2), Wo = (int)dy.dim(3);
  switch (choose(C, w, p)) {
    case Path::Pointwise: {
      if (p.stride == 1 && Ho == H && Wo == W) {
        pw_bwd_data(fptr(dy), fptr(w), fptr(dx), N, C, O, int64_t(H) * W);
        return;
      }
      DeviceBuffer dxg(sizeof(float) * N * C * Ho * Wo);
      pw_bwd_data(fptr(dy), fptr(w), dxg.as<float>(), N, C, O, int64_t(Ho) * Wo);
      const int64_t total = dx.numel();
      ASAP_LAUNCH(scatter_kernel, grid_for(total), kThreads, 0, stream(), dxg.as<float>(), fptr(dx), total, H, W, Ho, Wo,
                                                                  p.stride);
      ASAP_CUDA_LAUNCH_CHECK("conv2d_bwd_data(1x1 scatter)");
      return;
    }
    case Path::Depthwise:
      dw_bwd_data(fptr(dy), fptr(w), nullptr, fptr(dx), dw_shape(dx, (int)w.dim(2), Ho, Wo, p));
      return;
    case Path::General:
      if (!use_cudnn() || !cudnn_conv_bwd_data(dy, w, dx, p)) im2col_conv_bwd_data(dy, w, dx, p);
      return;
  }
}

void conv2d_bwd_weight_cuda(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p) {
  check_args(x, dw, dy, "conv2d_bwd_weight");
  const int N = (int)x.dim(0), C = (int)x.dim(1), O = (int)dw.dim(0), Ho = (int)dy.dim(2), Wo = (int)dy.dim(3);
  switch (choose(C, dw, p)) {
    case Path::Pointwise: {
      DeviceBuffer buf;
      pw_bwd_weight(packed_pw_input(x, Ho, Wo, p.stride, buf), fptr(dy), fptr(dw), N, C, O, int64_t(Ho) * Wo);
      return;
    }
    case Path::Depthwise: {
      Tensor xc = x.contiguous();
      dw_bwd_weight(fptr(xc), fptr(dy), fptr(dw), dw_shape(xc, (int)dw.dim(2), Ho, Wo, p), false);
      return;
    }
    case Path::General: {
      Tensor xc = x.contiguous();
      if (!use_cudnn() || !cudnn_conv_bwd_weight(xc, dy, dw, p)) im2col_conv_bwd_weight(xc, dy, dw, p);
      return;
    }
  }
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, conv2d_fwd, conv2d_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, conv2d_bwd_data, conv2d_bwd_data_cuda);
ASAP_REGISTER_KERNEL(CUDA, conv2d_bwd_weight, conv2d_bwd_weight_cuda);

}  // namespace asap::cuda
