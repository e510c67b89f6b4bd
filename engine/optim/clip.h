// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ (DARTS clips at 5).
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace asap {

// Returns the L2 norm over all defined grads of `params` (before clipping). When
// max_norm / (total + 1e-6) < 1, scales every grad in place by that factor. Params without a
// grad are ignored. Works on any device through the sum_sq/axpy/mul_scalar kernels, with one
// host read per (device, dtype) group. A non-finite total throws asap::NumericError when
// error_if_nonfinite is set; otherwise (PyTorch's default) the grads are scaled anyway.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = false);

// The same norm without clipping.
double grad_norm(const std::vector<Tensor>& params);

}  // namespace asap
