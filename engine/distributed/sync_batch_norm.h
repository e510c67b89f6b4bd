// Batch norm over the global batch (distributed.sync_bn): the training-mode statistics of every
// BN layer are those of all ranks' samples together, so a data-parallel step normalises exactly
// as one process over the whole batch would. Forward: each rank's per-channel (count, mean,
// variance) are gathered and combined in rank order (the same bits on every rank); backward: the
// per-channel sums of dy and dy * xhat are summed over the ranks, weighted as the gradients are
// (grad_sync.h), and the kernel's per-rank dx gets the difference. Only the existing BN kernels
// run, so the CPU and CUDA backends both work; the statistics pass through host memory.
#pragma once
#include "engine/distributed/communicator.h"
#include "engine/kernel_table.h"

namespace asap::dist {

// The host communicator training-mode batch_norm synchronises over; null (the default): per-rank
// statistics, the single-process code path untouched.
void set_sync_batch_norm(Communicator* host);
Communicator* sync_batch_norm();

// ops::batch_norm's training mode with global statistics (called by it when set). x is
// contiguous; x_in is what the caller passed (the autograd input).
Tensor sync_batch_norm_train(const Tensor& x_in, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             Tensor& running_mean, Tensor& running_var, const BatchNormParams& p, Communicator& comm);

}  // namespace asap::dist
