// A seeded stream of Philox counters. Each fill reserves ceil(n/4) counters, so the numbers a
// tensor gets depend only on the seed and the order of fills, never on the backend or threads.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace asap {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves counters for n numbers; returns the first counter.
  uint64_t reserve(uint64_t n) {
    uint64_t o = offset_;
    offset_ += (n + 3) / 4;
    return o;
  }
  void normal_(Tensor& t, double mean = 0.0, double stddev = 1.0);
  void uniform_(Tensor& t, double lo = 0.0, double hi = 1.0);
  double uniform();     // one host-side number in [0, 1)
  uint64_t randint(uint64_t n);  // uniform in [0, n)

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// PyTorch's default init (kaiming_uniform with a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
// conv and linear weights and for linear biases. fan_in = weight.numel() / weight.dim(0).
void default_init_(Tensor& weight, Generator& g);
void default_bias_init_(Tensor& bias, int64_t fan_in, Generator& g);

}  // namespace asap
