// Fused separable block y = pw(dw(relu(x))).
// What is fused: ReLU is applied while the depthwise kernel stages its input tile in shared memory,
// so relu(x) is never written or re-read; in backward the ReLU mask is applied inside the
// depthwise data-gradient kernel and the depthwise weight gradient re-applies ReLU on load, so
// neither relu(x) nor its gradient exists as a tensor. The depthwise output `mid` is written
// once (backward needs it for the 1x1 weight gradient) and the 1x1 conv is one cuBLAS
// strided-batched GEMM over it. Per direction: forward 1 kernel + 1 GEMM (the unfused chain is
// 3 kernels and 2 extra full-tensor passes); backward 2 GEMMs + 2 depthwise kernels (+ reduce).
#include <initializer_list>

#include "kernels/cuda/conv_paths.cuh"
#include "kernels/cuda/dwconv.cuh"

namespace asap::cuda {
namespace {

struct SepDims {
  DwShape dw;
  int O;
  int64_t hw_out() const { return static_cast<int64_t>(dw.Ho) * dw.Wo; }
  int64_t mid_numel() const { return static_cast<int64_t>(dw.N) * dw.C * hw_out(); }
};

SepDims sep_dims(const Tensor& x, const Tensor& wd, const Tensor& wp, int Ho, int Wo, const Conv2dParams& p) {
  ASAP_CHECK_SHAPE(x.ndim() == 4 && wd.ndim() == 4 && wp.ndim() == 4 && wd.dim(0) == x.dim(1) && wd.dim(1) == 1 &&
                       wp.dim(1) == x.dim(1) && wp.dim(2) == 1 && wp.dim(3) == 1,
                   "sepblock: x ", x.shape().str(), ", wd ", wd.shape().str(), ", wp ", wp.shape().str());
  return SepDims{dw_shape(x, static_cast<int>(wd.dim(2)), Ho, Wo, p), static_cast<int>(wp.dim(0))};
}

void sepblock_fwd_cuda(const Tensor& x, const Tensor& wd, const Tensor& wp, Tensor& mid, Tensor& y,
                       const Conv2dParams& p) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&x, &wd, &wp, &y}) check_f32(*t, "sepblock_fwd");
  check_f32(mid, "sepblock_fwd");
  ASAP_NVTX_RANGE("sepblock_fwd(relu+dw, 1x1 gemm)");
  const Tensor xc = x.contiguous();
  const SepDims s = sep_dims(xc, wd, wp, static_cast<int>(y.dim(2)), static_cast<int>(y.dim(3)), p);
  DeviceBuffer scratch;
  float* m = fptr(mid);
  if (!m) {
    scratch = DeviceBuffer(sizeof(float) * s.mid_numel());
    m = scratch.as<float>();
  }
  dw_fwd(fptr(xc), fptr(wd), m, s.dw, /*relu_in=*/true);
  pw_fwd(m, fptr(wp), fptr(y), s.dw.N, s.dw.C, s.O, s.hw_out());
}

void sepblock_bwd_cuda(const Tensor& x, const Tensor& wd, const Tensor& wp, const Tensor& mid, const Tensor& dy,
                       Tensor& dx, Tensor& dwd, Tensor& dwp, const Conv2dParams& p) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&x, &wd, &wp, &dy}) check_f32(*t, "sepblock_bwd");
  check_f32(mid, "sepblock_bwd");
  check_f32(dx, "sepblock_bwd");
  check_f32(dwd, "sepblock_bwd");
  check_f32(dwp, "sepblock_bwd");
  ASAP_NVTX_RANGE("sepblock_bwd");
  const Tensor xc = x.contiguous();
  const SepDims s = sep_dims(xc, wd, wp, static_cast<int>(dy.dim(2)), static_cast<int>(dy.dim(3)), p);
  if (dwp.defined()) {
    ASAP_NVTX_RANGE("sepblock_bwd/1x1 weight");
    DeviceBuffer scratch;
    const float* m = fptr(mid);
    if (!m) {  // the forward did not keep mid: recompute it
      scratch = DeviceBuffer(sizeof(float) * s.mid_numel());
      dw_fwd(fptr(xc), fptr(wd), scratch.as<float>(), s.dw, true);
      m = scratch.as<float>();
    }
    pw_bwd_weight(m, fptr(dy), fptr(dwp), s.dw.N, s.dw.C, s.O, s.hw_out());
  }
  if (!dx.defined() && !dwd.defined()) return;
  DeviceBuffer dmid(sizeof(float) * s.mid_numel());
  {
    ASAP_NVTX_RANGE("sepblock_bwd/1x1 data");
    pw_bwd_data(fptr(dy), fptr(wp), dmid.as<float>(), s.dw.N, s.dw.C, s.O, s.hw_out());
  }
  if (dwd.defined()) {
    ASAP_NVTX_RANGE("sepblock_bwd/dw weight");
    dw_bwd_weight(fptr(xc), dmid.as<float>(), fptr(dwd), s.dw, /*relu_in=*/true);
  }
  if (dx.defined()) {
    ASAP_NVTX_RANGE("sepblock_bwd/dw data+relu mask");
    dw_bwd_data(dmid.as<float>(), fptr(wd), /*relu_mask_x=*/fptr(xc), fptr(dx), s.dw);
  }
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, sepblock_fwd, sepblock_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, sepblock_bwd, sepblock_bwd_cuda);

}  // namespace asap::cuda
