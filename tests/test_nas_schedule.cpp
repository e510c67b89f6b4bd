// Annealer math and the prune rule on hand-set alphas.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/error.h"
#include "nas/annealer.h"
#include "nas/primitives.h"

using namespace asap;
using namespace asap::nas;

namespace {

SearchNetworkConfig tiny_net() {
  SearchNetworkConfig c;
  c.C = 2;
  c.layers = 2;
  c.in_channels = 1;
  c.num_classes = 3;
  c.reduction_cells = {1};
  return c;
}

void set_alpha_row(SearchNetwork& net, CellType t, int edge, const std::vector<double>& row) {
  std::vector<float> a = net.alpha(t).to_vector();
  for (size_t o = 0; o < row.size(); ++o) a[edge * net.num_ops() + o] = static_cast<float>(row[o]);
  net.alpha(t).copy_(Tensor::from_vector(a, net.alpha(t).shape()));
}

void zero_alphas(SearchNetwork& net) {
  net.alpha(CellType::Normal).zero_();
  net.alpha(CellType::Reduce).zero_();
}

}  // namespace

TEST_CASE("temperature schedules", "[nas]") {
  AnnealConfig c;
  Annealer a(c);
  CHECK(a.temperature_at(0, 0) == Approx(1.6));
  CHECK(a.temperature_at(10, 999) == Approx(1.6 * std::pow(0.95, 10)));
  c.temperature_unit = "step";
  c.beta = 0.999;
  CHECK(Annealer(c).temperature_at(3, 100) == Approx(1.6 * std::pow(0.999, 100)));
  c.temperature_schedule = "constant";
  CHECK(Annealer(c).temperature_at(40, 1000) == Approx(1.6));
}

TEST_CASE("threshold policies and warm-up", "[nas]") {
  AnnealConfig c;
  Annealer a(c);
  CHECK(a.threshold_at(5, 0, 8) == Approx(0.05));  // 0.4 / |O| with 8 alive ops
  CHECK(a.threshold_at(5, 0, 2) == Approx(0.2));
  // Default warm-up: while T0 * beta^epoch >= 1, i.e. epochs 0..9 (1.6 * 0.95^9 = 1.008).
  CHECK(a.is_warmup_epoch(9, 0));
  CHECK_FALSE(a.is_warmup_epoch(10, 0));
  c.warmup_epochs = 3;
  CHECK(Annealer(c).is_warmup_epoch(2, 0));
  CHECK_FALSE(Annealer(c).is_warmup_epoch(3, 0));
  c.threshold_policy = "exponential";
  c.theta0 = 0.1;
  c.gamma = 0.9;
  CHECK(Annealer(c).threshold_at(4, 0, 8) == Approx(0.1 * std::pow(0.9, 4)));
}

TEST_CASE("anneal config validation names the key", "[nas]") {
  AnnealConfig c;
  c.threshold_policy = "linear";
  CHECK_THROWS_AS(Annealer(c), ConfigError);
  try {
    c.validate();
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("threshold_policy") != std::string::npos);
  }
}

TEST_CASE("prune rule on hand-set alphas", "[nas]") {
  Generator gen(1);
  SearchNetwork net(tiny_net(), gen);
  zero_alphas(net);
  // Edge 0 of the normal cell: Phi = [0.02, 0.04, 0.14, 0.16 x5] at T = 1.
  std::vector<double> p = {0.02, 0.04, 0.14, 0.16, 0.16, 0.16, 0.16, 0.16};
  std::vector<double> row;
  for (double v : p) row.push_back(std::log(v));
  set_alpha_row(net, CellType::Normal, 0, row);

  AnnealConfig c;
  c.temperature_schedule = "constant";
  c.T0 = 1.0;
  Annealer a(c);
  auto ev = a.prune(net, 3, 17);
  REQUIRE(ev.size() == 2);  // theta = 0.4 / 8 = 0.05: none and max_pool_3x3
  CHECK(ev[0].op == "none");
  CHECK(ev[0].phi == Approx(0.02).epsilon(1e-4));
  CHECK(ev[1].op == "max_pool_3x3");
  CHECK(ev[1].theta == Approx(0.05));
  CHECK(ev[1].epoch == 3);
  CHECK(ev[1].step == 17);
  CHECK(ev[1].T == Approx(1.0));
  CHECK(ev[1].cell_type == CellType::Normal);
  CHECK(net.alive_count(CellType::Normal, 0) == 6);
  CHECK(net.sparsity() == Approx(2.0 / 224.0));
  CHECK(a.log().size() == 2);
  // Renormalised over the 6 alive ops, theta = 0.4 / 6 = 0.067: avg_pool (0.14 / 0.94 = 0.149) stays.
  CHECK(a.prune(net, 3, 18).empty());
}

TEST_CASE("prune never removes the last alive op of an edge", "[nas]") {
  Generator gen(2);
  SearchNetwork net(tiny_net(), gen);
  zero_alphas(net);
  set_alpha_row(net, CellType::Reduce, 5, {0, 0, 0, 0, 0, 1.0, 0, 0});
  AnnealConfig c;
  c.threshold_policy = "exponential";
  c.theta0 = 0.99;  // above every Phi: only the guard keeps one op per edge
  Annealer a(c);
  a.prune(net, 0, 0);
  CHECK(net.converged());
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < net.num_edges(); ++e) CHECK(net.alive_count(static_cast<CellType>(t), e) == 1);
  CHECK(net.alive(CellType::Reduce, 5, 5));  // the largest Phi survives
  CHECK(net.alive(CellType::Normal, 0, 0));  // uniform ties go to the lowest index: none
  CHECK(net.sparsity() == Approx(7.0 / 8.0));
  CHECK_THROWS_AS(net.prune(CellType::Reduce, 5, 5), Error);
  // Every normal edge is dead (only `none` left): the forward still runs and gives zeros into
  // the classifier path.
  Tensor x = Tensor::zeros({2, 1, 8, 8});
  Tensor y = net.forward(x);
  CHECK(y.shape() == Shape({2, 3}));
}

TEST_CASE("unknown primitive names are rejected with the known list", "[nas]") {
  Generator gen(0);
  PrimitiveArgs a;
  try {
    make_primitive("sep_conv_9x9", a, gen);
    FAIL("expected a throw");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("sep_conv_9x9") != std::string::npos);
    CHECK(m.find("dil_conv_5x5") != std::string::npos);
  }
  SearchNetworkConfig c = tiny_net();
  c.primitives = {"none", "bogus"};
  CHECK_THROWS_AS(SearchNetwork(c, gen), Error);
}
