// The device-resident search step (nas/search_step.cpp): losses, the NaN guard and ASAP's prune
// rule recorded on the device and read at log points. On the CPU the same kernels run, so these
// tests pin the semantics in every build: the host-checked path (skip_nonfinite), a read every
// step and a read every 5 steps must take the same prune decisions at the same steps.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/error.h"
#include "nas/eval_train.h"
#include "tests/test_nas_util.h"

using namespace asap;
using namespace asap::nas;

namespace {

struct SearchTrace {
  std::vector<PruneEvent> events;
  std::vector<EpochStats> epochs;
  Genotype genotype;
};

SearchTrace run_search(SearchConfig c) {
  Searcher s(c);
  test::FixedSource train(4, 6, 1, 8, 4, 100), val(4, 6, 1, 8, 4, 200);
  SearchTrace tr;
  s.on_prune = [&](const PruneEvent& e) { tr.events.push_back(e); };
  while (!s.finished()) tr.epochs.push_back(s.run_epoch(train.source(), val.source()));
  tr.genotype = s.genotype();
  return tr;
}

void check_same_search(const SearchTrace& a, const SearchTrace& b, double loss_rel) {
  REQUIRE(a.events.size() == b.events.size());
  REQUIRE(a.events.size() > 20);  // the tiny schedule prunes most ops
  for (size_t i = 0; i < a.events.size(); ++i) {
    CAPTURE(i);
    CHECK(a.events[i].step == b.events[i].step);
    CHECK(a.events[i].epoch == b.events[i].epoch);
    CHECK(a.events[i].cell_type == b.events[i].cell_type);
    CHECK(a.events[i].edge == b.events[i].edge);
    CHECK(a.events[i].op == b.events[i].op);
    CHECK(a.events[i].winner == b.events[i].winner);
    CHECK(a.events[i].decided == b.events[i].decided);
    CHECK(a.events[i].phi == Approx(b.events[i].phi).epsilon(1e-9));
    CHECK(a.events[i].theta == Approx(b.events[i].theta).epsilon(1e-12));
  }
  REQUIRE(a.epochs.size() == b.epochs.size());
  for (size_t i = 0; i < a.epochs.size(); ++i) {
    CAPTURE(i);
    CHECK(a.epochs[i].steps == b.epochs[i].steps);
    CHECK(a.epochs[i].train_loss == Approx(b.epochs[i].train_loss).epsilon(loss_rel));
    CHECK(a.epochs[i].val_loss == Approx(b.epochs[i].val_loss).epsilon(loss_rel));
    CHECK(a.epochs[i].train_acc == Approx(b.epochs[i].train_acc).epsilon(1e-12));
    CHECK(a.epochs[i].sparsity == b.epochs[i].sparsity);
  }
  CHECK(to_text(a.genotype) == to_text(b.genotype));
}

}  // namespace

TEST_CASE("device-resident search equals the host-checked search, read every step or every 5", "[nas]") {
  for (const char* unit : {"epoch", "step"}) {
    CAPTURE(unit);
    SearchConfig c = test::tiny_search_config(5);
    c.net.layers = 2;  // small: six searches run here
    c.epochs = 8;
    c.anneal.temperature_unit = unit;
    if (std::string(unit) == "step") c.anneal.beta = 0.9;
    c.stop_when_converged = false;  // convergence is seen at log points only
    SearchConfig host = c;
    host.skip_nonfinite = true;  // the host-checked path: reads everything every step
    SearchConfig every1 = c, every5 = c;
    every5.sync_every = 5;
    const SearchTrace h = run_search(host), d1 = run_search(every1), d5 = run_search(every5);
    // Host and device evaluate the same double-precision rule on the same alphas.
    check_same_search(h, d1, 1e-12);
    // Later re-planning changes nothing: a pruned op's Phi is exactly 0 from its step on (only the
    // float summation order of gradient norms over the still-allocated dead weights may differ).
    check_same_search(d1, d5, 1e-5);
  }
}

TEST_CASE("device-resident search: the NaN guard names the first bad step at the log point", "[nan]") {
  SearchConfig c = test::tiny_search_config();
  Searcher s(c, Device::cpu());
  Batch good = test::make_batch(4, 1, 8, 4, 1);
  Batch bad{good.x.clone(), good.y};
  bad.x.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  s.step(good, &good);
  std::vector<float> before;
  for (const Tensor& w : s.network().weights())
    for (float x : w.to_vector()) before.push_back(x);
  s.step(bad, &good);   // no host read inside a step: nothing thrown yet
  s.step(good, &good);  // later steps are still recorded
  CHECK_THROWS_WITH(s.sync(), Catch::Contains("non-finite training loss") && Catch::Contains("step 1"));
  // The gate kept the poisoned gradient out of the weights.
  std::vector<float> after;
  for (const Tensor& w : s.network().weights())
    for (float x : w.to_vector()) after.push_back(x);
  REQUIRE(after.size() == before.size());
  for (float x : after) CHECK(std::isfinite(x));
}

TEST_CASE("device-resident train steps equal the host-checked ones; the NaN guard reads at log points", "[nas]") {
  TrainConfig c;
  c.net.C = 4;
  c.net.layers = 3;
  c.net.in_channels = 1;
  c.net.num_classes = 4;
  c.net.input_size = 8;
  c.epochs = 3;
  c.lr = 0.05;
  c.drop_path_max = 0.3;
  auto train_run = [&](bool host, int sync_every) {
    TrainConfig t = c;
    t.skip_nonfinite = host;
    t.sync_every = sync_every;
    EvalTrainer tr(darts_v2(), t);
    test::FixedSource data(5, 8, 1, 8, 4, 300);
    std::vector<TrainEpochStats> out;
    while (!tr.finished()) out.push_back(tr.run_epoch(data.source()));
    return out;
  };
  const auto h = train_run(true, 1), d1 = train_run(false, 1), d3 = train_run(false, 3);
  REQUIRE(h.size() == 3);
  for (size_t i = 0; i < h.size(); ++i) {
    CAPTURE(i);
    CHECK(d1[i].loss == Approx(h[i].loss).epsilon(1e-12));
    CHECK(d1[i].acc == Approx(h[i].acc).epsilon(1e-12));
    CHECK(d3[i].loss == Approx(h[i].loss).epsilon(1e-12));
    CHECK(d3[i].steps == h[i].steps);
  }
  EvalTrainer tr(darts_v2(), c);
  Batch good = test::make_batch(4, 1, 8, 4, 1);
  Batch bad{good.x.clone(), good.y};
  bad.x.data<float>()[5] = std::numeric_limits<float>::infinity();
  tr.step(good);
  tr.step(bad);
  test::FixedSource one(1, 4, 1, 8, 4, 9);
  CHECK_THROWS_WITH(tr.run_epoch(one.source()), Catch::Contains("non-finite") && Catch::Contains("step 1"));
}
