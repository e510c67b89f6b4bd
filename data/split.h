// Train/validation splits and subsets, as index lists into one Dataset (no pixel copies).
#pragma once
#include <cstdint>
#include <vector>

namespace asap::data {

struct TrainValSplit {
  std::vector<int64_t> train;  // DARTS: trains the network weights
  std::vector<int64_t> val;    // DARTS: trains the architecture parameters (alphas)
};

// Fisher-Yates permutation of 0..n-1 from a Philox generator seeded with `seed`.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// The first `limit` samples are kept (limit <= 0: all), then the first floor(portion * kept) go to
// train and the rest to val, which is what DARTS's search does with portion 0.5 on the train set.
// shuffle: the order is a seeded permutation first, so the subset and both halves are random.
TrainValSplit split_train_val(int64_t n, double portion, bool shuffle = false, uint64_t seed = 0,
                              int64_t limit = 0);

// 0..min(n, limit)-1 (limit <= 0: 0..n-1): a whole split, or a quick-run subset of it.
std::vector<int64_t> first_indices(int64_t n, int64_t limit = 0);

}  // namespace asap::data
