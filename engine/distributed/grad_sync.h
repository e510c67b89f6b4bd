// Data-parallel gradients: after a step's backward, every gradient becomes the global batch's
//   g = sum_r (n_r / N) g_r      (n_r: rank r's samples, N: the global batch),
// which is what one process would compute over the whole batch. The gradients are packed into
// flat buckets on the communicator's device, summed over the ranks in one collective each and
// unpacked. The buckets cover exactly the parameters passed in (the alive ones: a pruned op's
// parameters are no longer in Searcher's list), and are rebuilt whenever that list changes, so
// a re-plan never leaves a pruned op in a bucket and no rank ever waits for an unused gradient.
#pragma once
#include <vector>

#include "engine/distributed/communicator.h"

namespace asap::dist {

class GradAllReduce {
 public:
  explicit GradAllReduce(Communicator& comm, size_t bucket_bytes = size_t(16) << 20);
  // Averages the gradients of `params` over the ranks for a step in which this rank saw
  // `local_samples` samples. A parameter without a gradient counts as zeros and stays without
  // one (every rank runs the same plan, so it has none anywhere).
  void average(const std::vector<Tensor>& params, int64_t local_samples);
  int rebuilds() const { return rebuilds_; }  // how often the bucket layout was built (tests)
  size_t buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    size_t first = 0, count = 0;  // a range of params_
    int64_t elems = 0;
    Tensor flat;
  };
  void rebuild(const std::vector<Tensor>& params);
  Communicator& comm_;
  size_t bucket_bytes_;
  std::vector<const void*> keys_;  // identity of the parameter list the buckets were built for
  std::vector<Bucket> buckets_;
  int rebuilds_ = 0;
};

}  // namespace asap::dist
