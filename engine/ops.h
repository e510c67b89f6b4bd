// The differentiable ops. Each validates its arguments (asap::ShapeError naming the op and the
// shapes), allocates its output, calls the device's kernel table and records one autograd node.
// Inputs may live on any backend; all tensor arguments of one call must share device and dtype.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/kernel_table.h"
#include "engine/tensor.h"

namespace asap::ops {

// elementwise (engine/ops/elementwise_ops.cpp)
Tensor relu(const Tensor& x);
Tensor add(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, const Tensor& s);  // s is 0-d; gradients to x and s
Tensor mul_scalar(const Tensor& x, double s);
Tensor sum(const Tensor& x);                     // 0-d sum of all elements
// Zeros shaped like the op's output; no gradient path (the `none` primitive).
Tensor zeros(const Shape& shape, DType dt, Device dev);
// View x.narrow(dim, start, length) with a gradient (scatter into zeros). No copy in forward.
Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length);

// convolution (engine/ops/conv_ops.cpp); w [O, C/groups, k, k], no bias
Tensor conv2d(const Tensor& x, const Tensor& w, const Conv2dParams& p);
// conv2d(relu(x), w, stride) for a 1x1 w [O,C,1,1] without padding, the ReLU fused into the conv
// where the backend has the kernel (relu_pw_*), else the two ops. x may be a strided view.
Tensor relu_conv1x1(const Tensor& x, const Tensor& w, int stride = 1);
// Fused ReLU -> depthwise (wd [C,1,k,k], stride/padding/dilation from p) -> 1x1 (wp [O,C,1,1]).
Tensor sep_block(const Tensor& x, const Tensor& wd, const Tensor& wp, const Conv2dParams& p);

// batch norm (engine/ops/norm_ops.cpp). gamma/beta undefined = affine off. In training mode the
// running statistics are updated in place (no autograd); eval uses them.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, const BatchNormParams& p = {});

// pooling (engine/ops/pool_ops.cpp)
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);  // padding not counted
Tensor global_avg_pool(const Tensor& x);                    // [N,C,H,W] -> [N,C]

// dense (engine/ops/linear_ops.cpp): x [N,in], w [out,in], b [out] or undefined
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor matmul(const Tensor& a, const Tensor& b);  // [M,K] x [K,N]

// softmax / loss (engine/ops/loss_ops.cpp)
Tensor softmax(const Tensor& x, double temperature = 1.0);  // over the last dim; 1-D or 2-D
// The same with 1/temperature read on the device from a 0-d float64 tensor (not differentiated):
// the annealed temperature of a captured CUDA graph.
Tensor softmax(const Tensor& x, const Tensor& inv_temperature);
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);  // labels I32 [N]; mean

// mixed op (engine/ops/mixed_ops.cpp): sum_k w[k] * xs[k], ONE node; w is 1-D [K]
Tensor weighted_sum(const std::vector<Tensor>& xs, const Tensor& w);
Tensor concat_channels(const std::vector<Tensor>& xs);

// drop-path (engine/ops/drop_path_ops.cpp): zeroes whole samples with probability p and scales
// survivors by 1/(1-p). The mask comes from Philox(seed, offset), so it is backend independent.
Tensor drop_path(const Tensor& x, double p, uint64_t seed, uint64_t offset);
// The same with the counter base and p read from device memory: state is float64 [2]
// {base, p} on x's device and the mask uses counter base + delta (p here is the host's copy, used
// for validation and the p = 0 shortcut). A captured step replays with new masks.
// `first`: x is samples [first, first + N) of a larger batch whose masks are drawn (data parallel).
Tensor drop_path(const Tensor& x, double p, const Tensor& state, uint64_t seed, uint64_t delta, uint64_t first = 0);

}  // namespace asap::ops
