// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ (DARTS clips at 5).
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace asap {

// No host synchronisation: the norm stays on the device.
// Returns a 0-d float64 tensor on the grads' device holding the L2 norm over every defined grad
// of `params` (params without a grad are ignored; all grads must be on one device; none: 0 on
// the first param's device, or the CPU). Accumulated in double in a fixed order. CUDA: at most 2
// kernel launches for any number of tensors (kernel entry multi_l2_norm), no copies after the
// first call with the same grad addresses.
Tensor grad_norm_device(const std::vector<Tensor>& params);

// The same norm; then every grad is scaled by min(1, max_norm / (norm + 1e-6)) computed on the
// device (one more launch, multi_clip_scale). When the norm is not finite the grads are left
// untouched (the caller skips the step). Returns the norm (before clipping). Grads must be
// contiguous.
Tensor clip_grad_norm_device(const std::vector<Tensor>& params, double max_norm);

// Host versions (one device read per device holding grads, usually one): the norm as a double.
// clip_grad_norm scales as clip_grad_norm_device; a non-finite total leaves the grads untouched
// and throws asap::NumericError when error_if_nonfinite is set.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite = false);

// The same norm without clipping.
double grad_norm(const std::vector<Tensor>& params);

}  // namespace asap
