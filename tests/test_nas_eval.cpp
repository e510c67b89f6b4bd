// The evaluation network built from a genotype: shapes, backward, parameter counts, drop-path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nas/eval_train.h"
#include "engine/op_stats.h"
#include "nas/genotype.h"
#include "test_nas_util.h"
#include "test_util.h"

using namespace asap;
using namespace asap::nas;
using namespace asap::nas::test;

namespace {
// The smallest evaluation network the trainer tests run: 3 cells of C=4 on 1x8x8 inputs, 4 classes.
TrainConfig tiny_train_config() {
  TrainConfig tc;
  tc.net.C = 4;
  tc.net.layers = 3;
  tc.net.in_channels = 1;
  tc.net.input_size = 8;
  tc.net.num_classes = 4;
  return tc;
}
}  // namespace

TEST_CASE("eval network forward/backward shapes", "[nas]") {
  EvalNetworkConfig c;
  c.C = 8;
  c.layers = 5;  // reductions at 1 and 3, auxiliary head after cell 3
  c.in_channels = 1;
  c.input_size = 16;
  c.num_classes = 4;
  Generator gen(3);
  EvalNetwork net(darts_v2(), c, gen);
  Batch b = make_batch(2, 1, 16, 4, 9);
  net.set_drop_path_prob(0.2);
  auto out = net.forward_all(b.x);
  CHECK(out.logits.shape() == Shape({2, 4}));
  REQUIRE(out.aux_logits.defined());
  CHECK(out.aux_logits.shape() == Shape({2, 4}));
  Tensor loss = ops::add(ops::cross_entropy(out.logits, b.y),
                         ops::mul_scalar(ops::cross_entropy(out.aux_logits, b.y), 0.4));
  backward(loss);
  int64_t with_grad = 0, total = 0;
  for (auto& [name, t] : net.named_parameters()) {
    total++;
    with_grad += t.grad().defined();
  }
  CHECK(with_grad == total);
  net.eval();
  auto ev = net.forward_all(b.x);
  CHECK_FALSE(ev.aux_logits.defined());
  clear_tape();
}

TEST_CASE("eval network parameter count matches DARTS", "[nas]") {
  // DARTS train.py reports "param size = 3.349342MB" for DARTS_V2, C=36, 20 layers, CIFAR-10
  // (count_parameters_in_MB excludes the auxiliary head).
  EvalNetworkConfig c;
  Generator gen(0);
  NoGradGuard ng;
  EvalNetwork net(darts_v2(), c, gen);
  CHECK(net.parameter_count_without_aux() == 3349342);
  CHECK(net.parameter_count() > net.parameter_count_without_aux());
}

TEST_CASE("eval trainer runs an epoch and resumes", "[nas]") {
  TrainConfig tc = tiny_train_config();
  tc.epochs = 4;
  FixedSource tr(2, 4, 1, 8, 4, 50), te(1, 4, 1, 8, 4, 60);
  EvalTrainer a(darts_v2(), tc);
  auto st = a.run_epoch(tr.source());
  CHECK(st.steps == 2);
  CHECK(std::isfinite(st.loss));
  std::map<std::string, Tensor> saved;
  for (auto& [k, t] : a.state_tensors()) saved[k] = t.clone();
  auto js = a.state_json();
  EvalTrainer b(darts_v2(), tc);
  b.load_state(saved, js);
  auto sa = a.run_epoch(tr.source());
  auto sb = b.run_epoch(tr.source());
  CHECK(sa.drop_path > 0);
  CHECK(sa.loss == sb.loss);
  CHECK(a.evaluate(te.source()).samples == 4);
}

TEST_CASE("eval trainer: the per-step cosine falls to lr_min over every step and resumes on it", "[nas]") {
  TrainConfig tc = tiny_train_config();
  tc.epochs = 2;
  tc.lr = 0.1;
  tc.lr_min = 0.01;
  tc.lr_per_step = true;
  tc.steps_per_epoch = 3;
  FixedSource tr(3, 4, 1, 8, 4, 51);
  const double pi = std::acos(-1.0);
  auto expect = [&](int64_t s) { return 0.01 + 0.09 * (1 + std::cos(pi * double(s) / 6.0)) / 2; };
  EvalTrainer a(darts_v2(), tc);
  std::vector<double> seen;
  a.on_step = [&](int, int64_t, double) { seen.push_back(a.optimizer().lr()); };
  auto s0 = a.run_epoch(tr.source());
  CHECK(s0.lr == Approx(0.1));  // the epoch reports its first step's rate
  std::map<std::string, Tensor> saved;
  for (auto& [k, t] : a.state_tensors()) saved[k] = t.clone();
  auto js = a.state_json();
  auto s1 = a.run_epoch(tr.source());
  REQUIRE(seen.size() == 6);
  for (int64_t s = 0; s < 6; ++s) CHECK(seen[size_t(s)] == Approx(expect(s)).epsilon(1e-12));
  CHECK(s1.lr == Approx(expect(3)));
  CHECK(seen.back() > tc.lr_min);  // the last step runs at the rate just above lr_min ...
  CHECK(expect(6) == Approx(tc.lr_min));  // ... the curve ends there

  EvalTrainer b(darts_v2(), tc);  // resumed after the first epoch: the same rates and the same loss
  b.load_state(saved, js);
  std::vector<double> resumed;
  b.on_step = [&](int, int64_t, double) { resumed.push_back(b.optimizer().lr()); };
  auto r1 = b.run_epoch(tr.source());
  REQUIRE(resumed.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(resumed[i] == seen[3 + i]);
  CHECK(r1.loss == s1.loss);

  TrainConfig bad = tc;
  bad.steps_per_epoch = 0;
  CHECK_THROWS_WITH(EvalTrainer(darts_v2(), bad), Catch::Contains("steps_per_epoch"));
}

TEST_CASE("eval network: a repeated stateless op runs once and changes nothing but the count", "[nas]") {
  // Normal: four max_pool_3x3 of input 0 (one run), avg_pool_3x3 of input 1 twice (one run);
  // reduce: max_pool_3x3 of input 1 twice at stride 2 (one run), avg_pool_3x3 of inputs 0 and 2
  // (different inputs: two runs).
  const Genotype g = parse_genotype(
      "Genotype(normal=[('max_pool_3x3', 0), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('sep_conv_3x3', 1), "
      "('avg_pool_3x3', 1), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
      "reduce=[('max_pool_3x3', 1), ('max_pool_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 2), "
      "('avg_pool_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 3)], reduce_concat=[2, 3, 4, 5])");
  EvalNetworkConfig c;
  c.C = 4;
  c.layers = 3;  // normal, reduce, reduce
  c.in_channels = 1;
  c.input_size = 12;
  c.num_classes = 4;
  c.auxiliary = false;
  struct Run {
    Tensor logits, dx;
    std::map<std::string, Tensor> grads;
    uint64_t maxpool = 0, avgpool = 0, maxpool_bwd = 0, avgpool_bwd = 0;
  };
  auto run = [&](bool share) {
    EvalNetworkConfig cc = c;
    cc.share_stateless_ops = share;
    Generator gen(5);
    EvalNetwork net(g, cc, gen);
    net.set_drop_path_prob(0.3);  // every use keeps its own mask
    Batch b = make_batch(3, 1, 12, 4, 17);
    Tensor x = b.x.clone();
    x.set_requires_grad(true);
    net.set_drop_path_state(11, 0);
    reset_op_counts();
    auto out = net.forward_all(x);
    backward(ops::cross_entropy(out.logits, b.y));
    Run r;
    r.maxpool = op_count("max_pool2d");
    r.avgpool = op_count("avg_pool2d");
    r.maxpool_bwd = op_count("max_pool2d_bwd");
    r.avgpool_bwd = op_count("avg_pool2d_bwd");
    r.logits = out.logits.detach();
    r.dx = x.grad().clone();
    for (auto& [n, t] : net.named_parameters()) r.grads[n] = t.grad().clone();
    clear_tape();
    return r;
  };
  Run shared = run(true), plain = run(false);
  CHECK(plain.maxpool == 4 + 2 * (2 + 1));
  CHECK(shared.maxpool == 1 + 2 * (1 + 1));
  CHECK(plain.avgpool == 2 + 2 * 2);
  CHECK(shared.avgpool == 1 + 2 * 2);
  CHECK(shared.maxpool_bwd == shared.maxpool);
  CHECK(shared.avgpool_bwd == shared.avgpool);
  CHECK(shared.logits.to_vector_f64() == plain.logits.to_vector_f64());  // the same arithmetic
  // The backward sums the uses' gradients before the pooling backward instead of after: rounding only.
  CHECK(asap::test::max_rel_error(shared.dx, plain.dx) <= 1e-6);
  REQUIRE(shared.grads.size() == plain.grads.size());
  for (auto& [n, t] : plain.grads) CHECK(asap::test::max_rel_error(shared.grads.at(n), t) <= 1e-6);
  double dx_scale = 0;
  for (double v : plain.dx.to_vector_f64()) dx_scale = std::max(dx_scale, std::fabs(v));
  CHECK(dx_scale > 1e-4);  // the input gradient is not vanishingly small, so 1e-6 is a real bound
}

TEST_CASE("evaluation shards interleave the batches and tile them once over the ranks", "[nas][dist]") {
  // A source of 7 one-sample batches whose label is the batch's index.
  auto numbered = [] {
    auto k = std::make_shared<int>(0);
    return BatchSource([k](Batch& b) {
      if (*k == 7) return false;
      b.x = Tensor::zeros({1, 1, 2, 2});
      b.y = Tensor::empty({1}, DType::I32);
      b.y.data<int32_t>()[0] = (*k)++;
      return true;
    });
  };
  std::vector<int> seen;
  std::vector<std::vector<int>> per_rank(3);
  for (int r = 0; r < 3; ++r) {
    BatchSource mine = shard_batches(numbered(), r, 3);
    Batch b;
    while (mine(b)) {
      per_rank[r].push_back(b.y.data<int32_t>()[0]);
      seen.push_back(per_rank[r].back());
    }
  }
  REQUIRE(per_rank[0] == std::vector<int>{0, 3, 6});
  REQUIRE(per_rank[1] == std::vector<int>{1, 4});
  REQUIRE(per_rank[2] == std::vector<int>{2, 5});
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
  REQUIRE_THROWS(shard_batches(numbered(), 3, 3));
  REQUIRE_THROWS(shard_batches(numbered(), 0, 0));
}
