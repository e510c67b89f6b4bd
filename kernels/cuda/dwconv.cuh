// Depthwise convolution launchers (one filter per channel, multiplier 1), shared by conv2d and the
// fused separable block. `relu_in` applies ReLU to x as it is loaded (the fused block's first stage);
// `relu_mask_x` multiplies the data gradient by (x > 0) in the same pass.
#pragma once
#include "kernels/cuda/common.cuh"

namespace asap::cuda {

struct DwShape {
  int N, C, H, W, Ho, Wo, k, stride, pad, dil;
};

inline DwShape dw_shape(const Tensor& x, int k, int Ho, int Wo, const Conv2dParams& p) {
  return DwShape{static_cast<int>(x.dim(0)), static_cast<int>(x.dim(1)), static_cast<int>(x.dim(2)),
                 static_cast<int>(x.dim(3)), Ho, Wo, k, p.stride, p.padding, p.dilation};
}

void dw_fwd(const float* x, const float* w, float* y, const DwShape& s, bool relu_in);
void dw_bwd_data(const float* dy, const float* w, const float* relu_mask_x, float* dx, const DwShape& s);
void dw_bwd_weight(const float* x, const float* dy, float* dw, const DwShape& s, bool relu_in);

}  // namespace asap::cuda
