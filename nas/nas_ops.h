// Small differentiable helpers the NAS layer needs beyond engine/ops.h, built on the tape API.
#pragma once
#include "engine/tensor.h"

namespace asap::nas {

// A view of contiguous x with another shape of the same numel; the gradient is reshaped back.
// Lets 2-D results (softmax rows, matmul) feed ops that want 1-D tensors (weighted_sum weights).
Tensor reshape(const Tensor& x, const Shape& shape);

}  // namespace asap::nas
