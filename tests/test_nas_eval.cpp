// The evaluation network built from a genotype: shapes, backward, parameter counts, drop-path.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nas/eval_train.h"
#include "test_nas_util.h"

using namespace asap;
using namespace asap::nas;
using namespace asap::nas::test;

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
  TrainConfig tc;
  tc.net.C = 4;
  tc.net.layers = 3;
  tc.net.in_channels = 1;
  tc.net.input_size = 8;
  tc.net.num_classes = 4;
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
