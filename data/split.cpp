#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/seed.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace asap::data {

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), int64_t(0));
  Generator g(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(g.randint(static_cast<uint64_t>(i + 1)));
    std::swap(p[i], p[j]);
  }
  return p;
}

TrainValSplit split_train_val(int64_t n, double portion, bool shuffle, uint64_t seed, int64_t limit) {
  ASAP_CHECK_T(ConfigError, portion > 0.0 && portion <= 1.0, "train portion ", portion, " must be in (0, 1]");
  std::vector<int64_t> order = shuffle ? seeded_permutation(n, mix_seed(seed, kStreamSplit)) : first_indices(n);
  if (limit > 0 && limit < n) order.resize(limit);
  const int64_t kept = static_cast<int64_t>(order.size());
  const int64_t n_train = static_cast<int64_t>(std::floor(portion * static_cast<double>(kept)));
  ASAP_CHECK_T(ConfigError, n_train > 0, "train portion ", portion, " of ", kept, " samples leaves none for training");
  TrainValSplit s;
  s.train.assign(order.begin(), order.begin() + n_train);
  s.val.assign(order.begin() + n_train, order.end());
  return s;
}

std::vector<int64_t> first_indices(int64_t n, int64_t limit) {
  std::vector<int64_t> idx(limit > 0 ? std::min(n, limit) : n);
  std::iota(idx.begin(), idx.end(), int64_t(0));
  return idx;
}

}  // namespace asap::data
