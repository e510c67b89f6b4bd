// Seed derivation: every random stream of the data layer (split permutation, epoch order, each
// sample's augmentation) gets its own seed computed from (run seed, stream tag, epoch, index), so a
// batch depends only on those numbers: not on prefetching, thread timing or where a run resumed.
#pragma once
#include <cstdint>

namespace asap::data {

// splitmix64 finaliser: consecutive inputs give unrelated outputs.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  return splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b) ^ c);
}

// Stream tags: distinct constants keep the streams apart for the same seed.
enum : uint64_t { kStreamSplit = 0x5350, kStreamOrder = 0x4F52, kStreamAugment = 0x4147 };

}  // namespace asap::data
