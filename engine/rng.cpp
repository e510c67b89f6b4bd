#include "engine/rng.h"

#include <cmath>

#include "engine/kernel_table.h"
#include "engine/philox.h"

namespace asap {

void Generator::normal_(Tensor& t, double mean, double stddev) {
  ASAP_CHECK(t.is_contiguous(), "normal_ needs a contiguous tensor");
  uint64_t off = reserve(static_cast<uint64_t>(t.numel()));
  ASAP_KERNEL(t.device(), fill_normal)(t, seed_, off, mean, stddev);
}

void Generator::uniform_(Tensor& t, double lo, double hi) {
  ASAP_CHECK(t.is_contiguous(), "uniform_ needs a contiguous tensor");
  uint64_t off = reserve(static_cast<uint64_t>(t.numel()));
  ASAP_KERNEL(t.device(), fill_uniform)(t, seed_, off, lo, hi);
}

double Generator::uniform() { return philox_uniform_at(seed_, reserve(1), 0, 0.0, 1.0); }

uint64_t Generator::randint(uint64_t n) {
  ASAP_CHECK(n > 0, "randint(0)");
  Philox4 r = philox4x32(seed_, reserve(4));
  uint64_t x = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
  return x % n;  // modulo bias is below 2^-32 for the sizes we draw
}

void default_init_(Tensor& weight, Generator& g) {
  ASAP_CHECK_SHAPE(weight.ndim() >= 2, "default_init_ needs a weight of rank >= 2, got ", weight.shape().str());
  const int64_t fan_in = weight.numel() / weight.dim(0);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  g.uniform_(weight, -bound, bound);
}

void default_bias_init_(Tensor& bias, int64_t fan_in, Generator& g) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  g.uniform_(bias, -bound, bound);
}

}  // namespace asap
