#include "engine/distributed/agreement.h"

namespace asap::dist {

uint64_t digest_bytes(const void* data, size_t bytes, uint64_t h) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t digest_tensors(const std::vector<Tensor>& ts, uint64_t h) {
  for (const Tensor& t : ts) {
    const Tensor c = t.to(Device::cpu()).contiguous();
    h = digest_bytes(c.raw_data(), c.nbytes(), h);
  }
  return h;
}

void check_agreement(Communicator& comm, uint64_t digest, const std::string& where, const std::string& what) {
  Communicator& h = comm.host();
  const int W = h.size();
  // Two exact 32-bit halves per rank in doubles: a sum that only gathers.
  std::vector<double> all(2 * size_t(W), 0.0);
  all[2 * h.rank()] = double(digest >> 32);
  all[2 * h.rank() + 1] = double(digest & 0xffffffffull);
  h.allreduce_sum(all.data(), all.size());
  std::string differ;
  for (int r = 1; r < W; ++r)
    if (all[2 * r] != all[0] || all[2 * r + 1] != all[1]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    throw DistributedError("distributed: the ranks diverged at " + where + ": the " + what + " of rank(s) " + differ +
                           " differ from rank 0's (a different architecture on each rank is never kept)");
}

Shard shard_of(int64_t n, int rank, int size) {
  const int64_t base = n / size, extra = n % size;
  Shard s;
  s.count = base + (rank < extra ? 1 : 0);
  s.start = rank * base + std::min<int64_t>(rank, extra);
  return s;
}

}  // namespace asap::dist
