#include "engine/distributed/grad_sync.h"

#include "engine/autograd.h"
#include "engine/ops.h"

namespace asap::dist {

GradAllReduce::GradAllReduce(Communicator& comm, size_t bucket_bytes) : comm_(comm), bucket_bytes_(bucket_bytes) {}

void GradAllReduce::rebuild(const std::vector<Tensor>& params) {
  keys_.clear();
  buckets_.clear();
  Bucket cur;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    ASAP_CHECK_T(DistributedError, p.dtype() == DType::F32, "gradient all-reduce: parameters must be float32");
    keys_.push_back(p.impl());
    const size_t bytes = size_t(cur.elems + p.numel()) * sizeof(float);
    if (cur.count > 0 && bytes > bucket_bytes_) {
      buckets_.push_back(cur);
      cur = Bucket{i, 0, 0, Tensor()};
    }
    cur.count++;
    cur.elems += p.numel();
  }
  if (cur.count > 0) buckets_.push_back(cur);
  for (Bucket& b : buckets_) b.flat = Tensor::empty({b.elems}, DType::F32, comm_.device());
  ++rebuilds_;
}

void GradAllReduce::average(const std::vector<Tensor>& params, int64_t local_samples) {
  NoGradGuard ng;
  bool same = keys_.size() == params.size();
  for (size_t i = 0; same && i < params.size(); ++i) same = keys_[i] == params[i].impl();
  if (!same) rebuild(params);
  // Every rank learns N in the same collective, so ranks with a short last batch weigh right.
  const double total = allreduce_sum(comm_, double(local_samples));
  ASAP_CHECK_T(DistributedError, total > 0, "gradient all-reduce: the global batch is empty");
  const double weight = double(local_samples) / total;
  for (Bucket& b : buckets_) {
    int64_t off = 0;
    for (size_t i = b.first; i < b.first + b.count; ++i) {
      const Tensor& p = params[i];
      Tensor slot = b.flat.narrow(0, off, p.numel()).view(p.shape());
      const Tensor g = p.grad();
      if (g.defined()) slot.copy_(ops::mul_scalar(g, weight));
      else slot.copy_(Tensor::zeros(p.shape(), DType::F32, slot.device()));
      off += p.numel();
    }
    allreduce_sum(comm_, b.flat);
    off = 0;
    for (size_t i = b.first; i < b.first + b.count; ++i) {
      const Tensor& p = params[i];
      Tensor g = p.grad();
      if (g.defined()) g.copy_(b.flat.narrow(0, off, p.numel()).view(p.shape()));
      off += p.numel();
    }
  }
}

}  // namespace asap::dist
