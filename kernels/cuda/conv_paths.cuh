// The convolution paths behind conv2d_* and the fused separable block: 1x1 convs as cuBLAS
// strided-batched GEMMs, general convs via im2col + cuBLAS or cuDNN, depthwise in dwconv.cuh.
#pragma once
#include "kernels/cuda/common.cuh"

namespace asap::cuda {

// 1x1, contiguous x [N,C,HW], w [O,C], y [N,O,HW]. Outputs are written (beta = 0).
void pw_fwd(const float* x, const float* w, float* y, int N, int C, int O, int64_t HW);
void pw_bwd_data(const float* dy, const float* w, float* dx, int N, int C, int O, int64_t HW);
void pw_bwd_weight(const float* x, const float* dy, float* dw, int N, int C, int O, int64_t HW);

// out[j] = sum_n in[n * M + j], n in order (deterministic batch reduction of per-sample GEMMs).
void sum_batch(const float* in, int N, int64_t M, float* out, const char* op);

// General grouped conv via im2col (gather) + cuBLAS; x contiguous.
void im2col_conv_fwd(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p);
void im2col_conv_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p);
void im2col_conv_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p);

// cuDNN (legacy v9 API); available only when built with ASAP_WITH_CUDNN (never in the emulation
// build: cuDNN is not emulated). Each returns false, having done nothing, when cuDNN offers no
// FMA-math algorithm for the shape (the caller then takes im2col + cuBLAS).
bool cudnn_compiled();
bool cudnn_conv_fwd(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p);
bool cudnn_conv_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p);
bool cudnn_conv_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p);

}  // namespace asap::cuda
