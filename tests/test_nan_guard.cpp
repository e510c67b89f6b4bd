// The NaN/Inf guard: a non-finite loss stops the search (or training) with NumericError naming
// the step, or, with skip_nonfinite (run.on_nan: skip_batch), skips the batch without an update.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/error.h"
#include "nas/eval_train.h"
#include "tests/test_nas_util.h"

using namespace asap;
using namespace asap::nas;

namespace {
Batch poisoned(const Batch& b) {
  Batch p{b.x.clone(), b.y};
  p.x.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  return p;
}
std::vector<float> all_weights(Searcher& s) {
  std::vector<float> v;
  for (const Tensor& w : s.network().weights())
    for (float x : w.to_vector()) v.push_back(x);
  return v;
}
}  // namespace

TEST_CASE("search stops on a non-finite loss, naming the step", "[nan]") {
  Searcher s(test::tiny_search_config(), Device::cpu());
  Batch good = test::make_batch(4, 1, 8, 4, 1);
  s.step(good, &good);
  // The step records on the device; the guard fires at the next log point.
  s.step(poisoned(good), &good);
  CHECK_THROWS_WITH(s.sync(), Catch::Contains("non-finite") && Catch::Contains("step 1"));
}

TEST_CASE("skip_batch skips the poisoned batch without touching weights or alphas", "[nan]") {
  SearchConfig cfg = test::tiny_search_config();
  cfg.skip_nonfinite = true;
  Searcher s(cfg, Device::cpu());
  Batch good = test::make_batch(4, 1, 8, 4, 1);
  s.step(good, &good);
  const auto w_before = all_weights(s);
  const auto a_before = s.network().alpha(CellType::Normal).to_vector();
  std::vector<float> bn_before;
  for (const auto& nb : s.network().named_buffers())
    for (float x : nb.second.to_vector()) bn_before.push_back(x);
  // Weight step poisoned: no weight update, and BN running statistics are restored.
  StepInfo info = s.step(poisoned(good), nullptr);
  CHECK(info.skipped);
  CHECK(all_weights(s) == w_before);
  std::vector<float> bn_after;
  for (const auto& nb : s.network().named_buffers())
    for (float x : nb.second.to_vector()) bn_after.push_back(x);
  CHECK(bn_after == bn_before);
  // A poisoned validation batch never leaves non-finite weights or alphas behind.
  const Batch bad_val = poisoned(good);
  s.step(good, &bad_val);
  for (float x : all_weights(s)) CHECK(std::isfinite(x));
  for (float x : s.network().alpha(CellType::Normal).to_vector()) CHECK(std::isfinite(x));
  CHECK(s.network().alpha(CellType::Normal).to_vector() != a_before);  // good steps still update
  StepInfo ok = s.step(good, &good);
  CHECK_FALSE(ok.skipped);
}

TEST_CASE("evaluation training honours the same policy", "[nan]") {
  nas::TrainConfig tc;
  tc.net.C = 4;
  tc.net.layers = 3;
  tc.net.in_channels = 1;
  tc.net.num_classes = 4;
  tc.net.input_size = 8;
  tc.net.auxiliary = false;
  tc.epochs = 1;
  Batch good = test::make_batch(4, 1, 8, 4, 1);
  {
    EvalTrainer t(darts_v2(), tc, Device::cpu());
    CHECK_THROWS_AS(t.train_step(poisoned(good)), NumericError);
  }
  tc.skip_nonfinite = true;
  EvalTrainer t(darts_v2(), tc, Device::cpu());
  std::vector<float> before;
  for (const Tensor& w : t.network().parameters())
    for (float x : w.to_vector()) before.push_back(x);
  bool skipped = false;
  t.train_step(poisoned(good), nullptr, &skipped);
  CHECK(skipped);
  std::vector<float> after;
  for (const Tensor& w : t.network().parameters())
    for (float x : w.to_vector()) after.push_back(x);
  CHECK(after == before);
  t.train_step(good, nullptr, &skipped);
  CHECK_FALSE(skipped);
}
