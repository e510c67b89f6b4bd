// Batches as the NAS layer consumes them: asap_run's data loaders adapt to a BatchSource.
#pragma once
#include <cstdint>
#include <functional>

#include "engine/tensor.h"

namespace asap::nas {

struct Batch {
  Tensor x;  // [N, Cin, H, W] float32 (any device; moved to the model's device)
  Tensor y;  // [N] int32 labels
  // Data parallel: x is samples [first, first + N) of a global batch of `total` (0: the whole batch).
  int64_t total = 0, first = 0;
};
// Fills the batch and returns true, or returns false at the end of the epoch.
using BatchSource = std::function<bool(Batch&)>;

struct EvalStats {
  double loss = 0, acc = 0;
  int64_t samples = 0;
};

// Fraction of rows whose argmax equals the label (host-side; reads logits back).
double accuracy(const Tensor& logits, const Tensor& labels);

// Data parallel: the batches of `src` numbered k = 0, 1, ... with k % shards == shard (each rank
// one interleaved share of an evaluation set; the shares of all ranks tile it exactly once).
BatchSource shard_batches(BatchSource src, int shard, int shards);

class Module;
// Mean cross-entropy and accuracy of `net` over every batch of `src`, in eval mode (BN running
// statistics) without a tape; batches are moved to `dev`. Leaves the module in training mode.
EvalStats evaluate_classifier(Module& net, const BatchSource& src, Device dev);

}  // namespace asap::nas
