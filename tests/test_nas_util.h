// Shared fixtures for the [nas] tests: tiny configs and generated, learnable batches.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "nas/search.h"

namespace asap::nas::test {

// A supernet small enough for a CPU test: 3 cells (reductions at 1 and 2), 1x8x8 inputs.
inline SearchConfig tiny_search_config(uint64_t seed = 7) {
  SearchConfig c;
  c.net.C = 4;
  c.net.layers = 3;
  c.net.in_channels = 1;
  c.net.num_classes = 4;
  c.seed = seed;
  c.epochs = 14;
  c.w_lr = 0.05;
  c.a_lr = 0.05;  // large, so that alphas separate within a few steps
  c.anneal.T0 = 1.0;
  c.anneal.beta = 0.5;
  c.anneal.warmup_epochs = 1;
  return c;
}

// Labels 0..classes-1; class k brightens row band k of the image, plus noise. Deterministic.
inline Batch make_batch(int64_t n, int64_t cin, int64_t hw, int classes, uint64_t seed) {
  Batch b;
  b.x = Tensor::empty({n, cin, hw, hw});
  Generator g(seed);
  g.normal_(b.x, 0.0, 0.5);
  b.y = Tensor::empty({n}, DType::I32);
  float* x = b.x.data<float>();
  int32_t* y = b.y.data<int32_t>();
  const int64_t band = std::max<int64_t>(1, hw / classes);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<int32_t>((i * 7 + seed) % classes);
    for (int64_t c = 0; c < cin; ++c)
      for (int64_t h = y[i] * band; h < std::min(hw, (y[i] + 1) * band); ++h)
        for (int64_t w = 0; w < hw; ++w) x[((i * cin + c) * hw + h) * hw + w] += 1.5f;
  }
  return b;
}

// A source yielding `count` fixed batches per epoch (seeds base, base+1, ...).
struct FixedSource {
  std::vector<Batch> batches;
  size_t next = 0;
  FixedSource(int count, int64_t n, int64_t cin, int64_t hw, int classes, uint64_t base) {
    for (int i = 0; i < count; ++i) batches.push_back(make_batch(n, cin, hw, classes, base + i));
  }
  BatchSource source() {
    next = 0;
    return [this](Batch& b) {
      if (next >= batches.size()) return false;
      b = batches[next++];
      return true;
    };
  }
};

}  // namespace asap::nas::test
