// Turning a silent divergence between ranks into an error: each rank hashes what must be equal
// everywhere (the alphas and alive masks after a search epoch, the weights after a train epoch)
// and the digests are compared on every rank. A mismatch throws DistributedError naming the
// point (e.g. "search epoch 3") and the ranks that differ from rank 0, on every rank alike.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/distributed/communicator.h"

namespace asap::dist {

// FNV-1a over bytes, chained through `h`.
uint64_t digest_bytes(const void* data, size_t bytes, uint64_t h = 1469598103934665603ull);
// The digest of tensors' values (copied to the host), in order.
uint64_t digest_tensors(const std::vector<Tensor>& ts, uint64_t h = 1469598103934665603ull);

void check_agreement(Communicator& comm, uint64_t digest, const std::string& where, const std::string& what);

// Rank `rank`'s part of a batch of n samples: [start, start + count), the first n % size ranks
// taking one more. A pure function of (n, rank, size), and the concatenation over ranks in rank
// order is the whole batch, so a rank's shard depends only on seed, epoch, step and rank.
struct Shard {
  int64_t start = 0, count = 0;
};
Shard shard_of(int64_t n, int rank, int size);

}  // namespace asap::dist
