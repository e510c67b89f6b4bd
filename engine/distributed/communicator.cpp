#include "engine/distributed/communicator.h"

namespace asap::dist {

void allreduce_sum(Communicator& comm, Tensor& t) {
  ASAP_CHECK_T(DistributedError, t.is_contiguous(), "all-reduce: the tensor must be contiguous");
  ASAP_CHECK_T(DistributedError, t.device() == comm.device(), "all-reduce: a tensor on ", t.device().str(),
               " through the ", comm.backend(), " communicator, whose buffers live on ", comm.device().str());
  if (t.dtype() == DType::F32) comm.allreduce_sum(t.data<float>(), static_cast<size_t>(t.numel()));
  else if (t.dtype() == DType::F64) comm.allreduce_sum(t.data<double>(), static_cast<size_t>(t.numel()));
  else throw DistributedError("all-reduce: only float32 and float64 tensors are summed");
}

void broadcast_tensor(Communicator& comm, Tensor& t, int root) {
  ASAP_CHECK_T(DistributedError, t.is_contiguous(), "broadcast: the tensor must be contiguous");
  if (t.device() == comm.device()) comm.broadcast(t.raw_data(), t.nbytes(), root);
  else if (!t.device().is_cuda()) comm.host().broadcast(t.raw_data(), t.nbytes(), root);
  else throw DistributedError("broadcast: a tensor on " + t.device().str() + " through the " + comm.backend() +
                              " communicator, whose buffers live on " + comm.device().str());
}

double allreduce_sum(Communicator& comm, double v) {
  comm.host().allreduce_sum(&v, 1);
  return v;
}

void broadcast_string(Communicator& comm, std::string& s, int root) {
  Communicator& h = comm.host();
  unsigned long long n = s.size();
  h.broadcast(&n, sizeof n, root);
  s.resize(static_cast<size_t>(n));
  if (n) h.broadcast(&s[0], static_cast<size_t>(n), root);
}

}  // namespace asap::dist
