// The supernet and the search loop: dead ops never run and free their parameters and optimizer
// state, a tiny search converges with non-decreasing sparsity, seeds reproduce, state resumes.
#include <catch2/catch.hpp>

#include <memory>

#include "engine/autograd.h"
#include "engine/op_stats.h"
#include "engine/ops.h"
#include "nas/genotype.h"
#include "nas/primitives.h"
#include "test_nas_util.h"

using namespace asap;
using namespace asap::nas;
using namespace asap::nas::test;

namespace {

int op_index(const SearchNetwork& net, const std::string& name) {
  const auto& p = net.primitives();
  return static_cast<int>(std::find(p.begin(), p.end(), name) - p.begin());
}

void prune_everywhere(Searcher& s, const std::string& op) {
  SearchNetwork& net = s.network();
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < net.num_edges(); ++e) s.prune(static_cast<CellType>(t), e, op_index(net, op));
}

int64_t params_named(const SearchNetwork& net, const std::string& part) {
  int64_t n = 0;
  for (auto& [name, t] : net.named_parameters()) n += name.find(part) != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("search network shapes and alpha init", "[nas]") {
  SearchConfig c = tiny_search_config();
  Searcher s(c);
  SearchNetwork& net = s.network();
  CHECK(net.alpha(CellType::Normal).shape() == Shape({14, 8}));
  auto a = net.alpha(CellType::Reduce).to_vector();
  double mx = 0;
  for (float v : a) mx = std::max(mx, std::fabs(double(v)));
  CHECK(mx > 0);
  CHECK(mx < 1e-2);  // 1e-3 * N(0, 1)
  Batch b = make_batch(2, 1, 8, 4, 1);
  Tensor y = net.forward(b.x);
  CHECK(y.shape() == Shape({2, 4}));
  clear_tape();
  CHECK(net.weights().size() == net.parameters().size());
  CHECK(net.arch_parameters().size() == 2);
  // Dotted names, and alphas are not among the weights.
  auto named = net.named_parameters();
  CHECK(named[0].first == "stem.conv.weight");
  CHECK(params_named(net, "cells.1.edges.0.sep_conv_3x3.dw1.weight") == 1);
  CHECK(params_named(net, "alpha") == 0);
  CHECK(net.named_buffers().size() > 0);
}

TEST_CASE("pruned ops are never executed and leave no tape node", "[nas]") {
  SearchConfig c = tiny_search_config();
  Searcher s(c);
  SearchNetwork& net = s.network();
  Batch b = make_batch(2, 1, 8, 4, 3);
  auto run = [&] {
    reset_op_counts();
    Tensor loss = ops::cross_entropy(net.forward(b.x), b.y);
    size_t tape = tape_size();
    backward(loss);
    return tape;
  };
  size_t tape_full = run();
  CHECK(op_count("max_pool2d") > 0);
  CHECK(op_count("max_pool2d_bwd") > 0);
  CHECK(op_count("avg_pool2d") > 0);
  prune_everywhere(s, "max_pool_3x3");
  size_t tape_pruned = run();
  CHECK(op_count("max_pool2d") == 0);
  CHECK(op_count("max_pool2d_bwd") == 0);
  CHECK(op_count("avg_pool2d") > 0);
  CHECK(tape_pruned < tape_full);
  // One pool op = pool + BN nodes; 14 edges x 3 cells.
  CHECK(tape_full - tape_pruned == 2u * 14u * 3u);
  // `none` never runs (no zeros op) even while alive: its output is exactly zero.
  CHECK(op_count("zeros") == 0);
  // Only skip_connect left on every edge: no conv inside the edges, only preprocessing.
  for (const char* op : {"avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                         "dil_conv_5x5", "none"})
    prune_everywhere(s, op);
  run();
  CHECK(op_count("sep_block") == 0);
  CHECK(op_count("avg_pool2d") == 0);
  CHECK(net.sparsity() == Approx(7.0 / 8.0));
  CHECK(net.converged());
}

TEST_CASE("pruned ops release parameters and optimizer state", "[nas]") {
  SearchConfig c = tiny_search_config();
  Searcher s(c);
  FixedSource tr(1, 4, 1, 8, 4, 10), va(1, 4, 1, 8, 4, 20);
  s.step(tr.batches[0], &va.batches[0]);  // creates momentum state for every weight
  SearchNetwork& net = s.network();
  std::weak_ptr<TensorImpl> w;
  for (auto& [name, t] : net.named_parameters())
    if (name.find("sep_conv_5x5") != std::string::npos) {
      w = t.impl_ptr();
      break;
    }
  REQUIRE(!w.expired());
  size_t state_before = s.weight_optimizer().state_bytes();
  int64_t params_before = net.parameter_count();
  CHECK(params_named(net, "sep_conv_5x5") > 0);
  prune_everywhere(s, "sep_conv_5x5");
  CHECK(params_named(net, "sep_conv_5x5") == 0);
  CHECK(w.expired());  // nobody (module, optimizer, grads) holds the weight any more
  CHECK(s.weight_optimizer().state_bytes() < state_before);
  CHECK(net.parameter_count() < params_before);
  // The search keeps working after the prune.
  s.step(tr.batches[0], &va.batches[0]);
}

TEST_CASE("alpha gradients flow only to alive ops", "[nas]") {
  SearchConfig c = tiny_search_config();
  Searcher s(c);
  SearchNetwork& net = s.network();
  s.prune(CellType::Normal, 0, op_index(net, "sep_conv_5x5"));
  Batch b = make_batch(2, 1, 8, 4, 5);
  backward(ops::cross_entropy(net.forward(b.x), b.y));
  auto g = net.alpha(CellType::Normal).grad().to_vector();
  CHECK(g[0 * 8 + op_index(net, "sep_conv_5x5")] == 0.0f);
  CHECK(g[0 * 8 + op_index(net, "sep_conv_3x3")] != 0.0f);
  CHECK(g[0 * 8 + op_index(net, "none")] != 0.0f);  // none still shares the softmax
  net.alpha(CellType::Normal).zero_grad();
  net.alpha(CellType::Reduce).zero_grad();
  for (auto& p : net.weights()) p.zero_grad();
}

namespace {

struct SearchResult {
  std::string genotype;
  std::vector<double> sparsity;
  std::vector<float> alphas;
  size_t prunes = 0;
  bool converged = false;
  int epochs = 0;
};

SearchResult tiny_search(uint64_t seed) {
  SearchConfig c = tiny_search_config(seed);
  Searcher s(c);
  c.epochs = 10;
  c.anneal.beta = 0.4;
  FixedSource tr(2, 6, 1, 8, 4, 100), va(2, 6, 1, 8, 4, 200);
  SearchResult r;
  s.on_step = [&](const StepInfo& i) { r.sparsity.push_back(i.sparsity); };
  s.on_prune = [&](const PruneEvent&) { r.prunes++; };
  while (!s.finished()) s.run_epoch(tr.source(), va.source());
  r.genotype = to_text(s.genotype());
  r.alphas = s.network().alpha(CellType::Normal).to_vector();
  r.converged = s.network().converged();
  r.epochs = s.epoch();
  return r;
}

}  // namespace

TEST_CASE("tiny search: sparsity grows, genotype valid, same seed same genotype", "[nas]") {
  SearchResult a = tiny_search(11);
  REQUIRE(!a.sparsity.empty());
  for (size_t i = 1; i < a.sparsity.size(); ++i) CHECK(a.sparsity[i] >= a.sparsity[i - 1]);
  CHECK(a.sparsity.back() > 0.5);
  INFO("tiny search: " << a.epochs << " epochs, sparsity " << a.sparsity.back());
  CHECK(a.converged);  // every edge down to one op within the epoch budget
  CHECK(a.prunes > 0);
  INFO(a.genotype);
  CHECK_NOTHROW(parse_genotype(a.genotype));
  SearchResult b = tiny_search(11);
  CHECK(a.genotype == b.genotype);
  CHECK(a.alphas == b.alphas);
  CHECK(a.sparsity == b.sparsity);
}

TEST_CASE("search state save and resume is exact", "[nas]") {
  SearchConfig c = tiny_search_config(5);
  c.anneal.warmup_epochs = 0;
  FixedSource tr(2, 4, 1, 8, 4, 300), va(2, 4, 1, 8, 4, 400);
  Searcher a(c);
  for (int e = 0; e < 2; ++e) a.run_epoch(tr.source(), va.source());
  // Snapshot (the optimizers share their state tensors: clone before stepping on).
  std::map<std::string, Tensor> saved;
  for (auto& [k, t] : a.state_tensors()) saved[k] = t.clone();
  nlohmann::json js = nlohmann::json::parse(a.state_json().dump());
  CHECK(js["alive"]["normal"].size() == 14);

  Searcher b(c);
  b.load_state(saved, js);
  CHECK(b.epoch() == a.epoch());
  CHECK(b.global_step() == a.global_step());
  CHECK(b.network().sparsity() == a.network().sparsity());
  CHECK(b.annealer().log().size() == a.annealer().log().size());
  a.run_epoch(tr.source(), va.source());
  b.run_epoch(tr.source(), va.source());
  CHECK(a.network().alpha(CellType::Reduce).to_vector() == b.network().alpha(CellType::Reduce).to_vector());
  CHECK(to_text(a.genotype()) == to_text(b.genotype()));
}
