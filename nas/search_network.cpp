#include "nas/search_network.h"

#include "engine/search_kernels.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"
#include "nas/layers.h"
#include "nas/nas_ops.h"
#include "nas/primitives.h"

namespace asap::nas {

const char* cell_type_name(CellType t) { return t == CellType::Normal ? "normal" : "reduce"; }

CellType parse_cell_type(const std::string& s) {
  if (s == "normal") return CellType::Normal;
  if (s == "reduce") return CellType::Reduce;
  throw Error("unknown cell type '" + s + "' (normal, reduce)");
}

int num_edges(int nodes) { return nodes * (nodes + 3) / 2; }
int edge_index(int node, int input) { return 2 * node + node * (node - 1) / 2 + input; }
std::pair<int, int> edge_endpoints(int edge) {
  int node = 0;
  while (edge >= node + 2) {
    edge -= node + 2;
    ++node;
  }
  return {node, edge};
}

// ---------------------------------------------------------------------------- MixedOp

MixedOp::MixedOp(int64_t c, int stride, const std::vector<std::string>& prims, Generator& gen,
                 Device dev)
    : names_(prims) {
  PrimitiveArgs a;
  a.C = c;
  a.stride = stride;
  a.affine = false;
  a.pool_bn = true;
  a.device = dev;
  for (auto& n : prims) ops_.push_back(register_module(n, make_primitive(n, a, gen)));
}

Tensor MixedOp::forward(const Tensor& x, const std::vector<int>& exec_ops, const Tensor& w) {
  std::vector<Tensor> outs;
  outs.reserve(exec_ops.size());
  for (int k : exec_ops) outs.push_back(ops_[k]->forward(x));
  return ops::weighted_sum(outs, w);
}

std::vector<Tensor> MixedOp::release(int op) {
  ASAP_CHECK(ops_[op] != nullptr, "op ", names_[op], " is already released");
  std::vector<Tensor> params = ops_[op]->parameters();
  remove_child(names_[op]);
  ops_[op] = nullptr;
  return params;
}

// ---------------------------------------------------------------------------- Cell

Cell::Cell(const SearchNetworkConfig& cfg, int64_t c_pp, int64_t c_p, int64_t c, bool reduction,
           bool reduction_prev, const std::vector<std::string>& prims, Generator& gen, Device dev)
    : nodes_(cfg.nodes), c_(c), reduction_(reduction) {
  if (reduction_prev)
    pre0_ = register_module("preprocess0", std::make_unique<FactorizedReduce>(c_pp, c, false, gen, dev));
  else
    pre0_ = register_module("preprocess0", std::make_unique<ReLUConvBN>(c_pp, c, 1, 1, 0, false, gen, dev));
  pre1_ = register_module("preprocess1", std::make_unique<ReLUConvBN>(c_p, c, 1, 1, 0, false, gen, dev));
  for (int i = 0; i < nodes_; ++i)
    for (int j = 0; j < 2 + i; ++j) {
      int stride = reduction && j < 2 ? 2 : 1;
      edges_.push_back(register_module("edges." + std::to_string(edge_index(i, j)),
                                       std::make_unique<MixedOp>(c, stride, prims, gen, dev)));
    }
}

Tensor Cell::forward(const Tensor& s0, const Tensor& s1, const ExecutionPlan& plan,
                     const std::vector<Tensor>& weights) {
  ASAP_NVTX_RANGE(reduction_ ? "cell/reduce" : "cell/normal");
  std::vector<Tensor> states = {pre0_->forward(s0), pre1_->forward(s1)};
  for (int i = 0; i < nodes_; ++i) {
    Tensor acc;
    for (int j = 0; j < 2 + i; ++j) {
      int e = edge_index(i, j);
      const auto& pe = plan.edges[e];
      if (pe.dead()) continue;  // only `none` survives: contributes exact zeros, skip it
      Tensor y = edges_[e]->forward(states[j], pe.exec_ops, weights[e]);
      acc = acc.defined() ? ops::add(acc, y) : y;
    }
    if (!acc.defined()) {
      // Every incoming edge is dead: the node is zero (shape of a stride-adjusted state).
      Shape s = states[1].shape();
      if (reduction_) {
        s[2] = (s[2] + 1) / 2;
        s[3] = (s[3] + 1) / 2;
      }
      acc = ops::zeros(s, s1.dtype(), s1.device());
    }
    states.push_back(acc);
  }
  return ops::concat_channels(std::vector<Tensor>(states.begin() + 2, states.end()));
}

// ---------------------------------------------------------------------------- SearchNetwork

SearchNetwork::SearchNetwork(const SearchNetworkConfig& cfg, Generator& gen, Device dev)
    : cfg_(cfg), dev_(dev) {
  prims_ = cfg.primitives.empty() ? darts_primitives() : cfg.primitives;
  validate_primitive_list(prims_);
  ASAP_CHECK(cfg.nodes >= 1 && cfg.layers >= 1 && cfg.C >= 1, "search network: bad C/layers/nodes");
  edges_ = nas::num_edges(cfg.nodes);
  for (size_t i = 0; i < prims_.size(); ++i)
    if (prims_[i] == "none") none_ = static_cast<int>(i);
  if (cfg_.reduction_cells.empty()) cfg_.reduction_cells = {cfg.layers / 3, 2 * cfg.layers / 3};

  int64_t c_curr = cfg.stem_multiplier * cfg.C;
  stem_w_ = register_parameter("stem.conv.weight",
                               make_conv_weight(c_curr, cfg.in_channels, 3, gen, dev));
  stem_bn_ = register_module("stem.bn", std::make_unique<BatchNorm2d>(c_curr, false, dev));
  int64_t c_pp = c_curr, c_p = c_curr;
  c_curr = cfg.C;
  bool reduction_prev = false;
  for (int i = 0; i < cfg.layers; ++i) {
    bool reduction = std::count(cfg_.reduction_cells.begin(), cfg_.reduction_cells.end(), i) > 0;
    if (reduction) c_curr *= 2;
    cells_.push_back(register_module(
        "cells." + std::to_string(i),
        std::make_unique<Cell>(cfg_, c_pp, c_p, c_curr, reduction, reduction_prev, prims_, gen, dev)));
    reduction_prev = reduction;
    c_pp = c_p;
    c_p = cfg.nodes * c_curr;
  }
  fc_w_ = register_parameter("classifier.weight", make_conv_weight(cfg.num_classes, c_p, 1, gen, Device::cpu())
                                                      .view({cfg.num_classes, c_p}));
  Tensor b = Tensor::empty({cfg.num_classes});
  default_bias_init_(b, c_p, gen);
  fc_b_ = register_parameter("classifier.bias", b);
  if (dev != Device::cpu()) {
    move_tensor_in_place(fc_w_, dev);
    move_tensor_in_place(fc_b_, dev);
  }
  for (int t = 0; t < 2; ++t) {
    Tensor a = Tensor::empty({edges_, num_ops()});
    gen.normal_(a, 0.0, 1e-3);
    alphas_[t] = dev == Device::cpu() ? a : a.to(dev);
    alphas_[t].set_requires_grad(true);
    alive_[t].assign(edges_, std::vector<uint8_t>(num_ops(), 1));
    rebuild_plan(static_cast<CellType>(t));
  }
}

void SearchNetwork::set_temperature(double t) {
  ASAP_CHECK(t > 0 && std::isfinite(t), "temperature must be positive, got ", t);
  temperature_ = t;
  if (step_state_.defined()) {
    StatePut p;
    p.add(step_state::kT, t);
    p.add(step_state::kInvT, 1.0 / t);
    search_kernels(dev_.type).put(step_state_, p);
  }
}

void SearchNetwork::bind_temperature(Tensor step_state) {
  ASAP_CHECK(step_state.device() == dev_ && step_state.dtype() == DType::F64, "bind_temperature: a float64 state on ",
             dev_.str(), " expected");
  step_state_ = step_state;
  inv_temperature_ = step_state.narrow(0, step_state::kInvT, 1).view(Shape{});
  set_temperature(temperature_);
}

int SearchNetwork::alive_count(CellType t, int edge) const {
  int n = 0;
  for (auto a : alive_[idx(t)][edge]) n += a;
  return n;
}

bool SearchNetwork::edge_dead(CellType t, int edge) const { return plans_[idx(t)].edges[edge].dead(); }

int64_t SearchNetwork::pruned_ops() const {
  int64_t n = 0;
  for (int t = 0; t < 2; ++t)
    for (auto& row : alive_[t])
      for (auto a : row) n += a ? 0 : 1;
  return n;
}

bool SearchNetwork::converged() const {
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < edges_; ++e)
      if (alive_count(static_cast<CellType>(t), e) > 1) return false;
  return true;
}

std::vector<Tensor> SearchNetwork::prune(CellType t, int edge, int op) {
  ASAP_CHECK(edge >= 0 && edge < edges_ && op >= 0 && op < num_ops(), "prune: edge ", edge, " op ",
             op, " out of range");
  auto& row = alive_[idx(t)][edge];
  ASAP_CHECK(row[op], "prune: ", cell_type_name(t), " edge ", edge, " op ", prims_[op],
             " is already pruned");
  ASAP_CHECK(alive_count(t, edge) > 1, "prune: refusing to prune the last alive op of ",
             cell_type_name(t), " edge ", edge);
  row[op] = 0;
  std::vector<Tensor> released;
  for (Cell* c : cells_)
    if (c->reduction() == (t == CellType::Reduce)) {
      auto p = c->edge(edge).release(op);
      released.insert(released.end(), p.begin(), p.end());
    }
  rebuild_plan(t);
  decided_stale_[idx(t)] = true;
  return released;
}

void SearchNetwork::keep_decided_alphas(const std::function<void()>& alpha_step) {
  if (!cfg_.freeze_decided_alphas) return alpha_step();
  const int64_t E = edges_, O = num_ops();
  for (int t = 0; t < 2; ++t) {
    if (!decided_stale_[t]) continue;
    decided_stale_[t] = false;
    keep_diag_[t] = decided_values_[t] = Tensor();
    const auto& alive = alive_[t];
    std::vector<float> diag(static_cast<size_t>(E * O * E * O), 0.f), values(static_cast<size_t>(E * O), 0.f);
    bool any = false;
    std::vector<double> a;
    for (int64_t e = 0; e < E; ++e) {
      const bool converged = alive_count(static_cast<CellType>(t), static_cast<int>(e)) == 1;
      for (int64_t o = 0; o < O; ++o) {
        const int64_t k = e * O + o;
        if (alive[e][o] && !converged) {
          diag[k * E * O + k] = 1.f;
          continue;
        }
        if (a.empty()) a = alphas_[t].to_vector_f64();  // the values since the prune (unchanged)
        values[k] = static_cast<float>(a[k]);
        any = true;
      }
    }
    if (!any) continue;
    keep_diag_[t] = Tensor::from_vector(diag, {E * O, E * O});
    decided_values_[t] = Tensor::from_vector(values, {E, O});
    if (dev_ != Device::cpu()) {
      keep_diag_[t] = keep_diag_[t].to(dev_);
      decided_values_[t] = decided_values_[t].to(dev_);
    }
  }
  alpha_step();
  NoGradGuard ng;
  for (int t = 0; t < 2; ++t) {
    if (!keep_diag_[t].defined()) continue;
    // Exact: undecided entries are a * 1 + zeros, decided ones 0 + their kept value.
    Tensor kept = ops::add(reshape(ops::matmul(reshape(alphas_[t].detach(), {1, E * O}), keep_diag_[t]), {E, O}),
                           decided_values_[t]);
    alphas_[t].copy_(kept);
  }
}

void SearchNetwork::rebuild_plan(CellType t) {
  ++plan_version_;
  ExecutionPlan& plan = plans_[idx(t)];
  const auto& alive = alive_[idx(t)];
  const int O = num_ops();
  plan.edges.assign(edges_, {});
  plan.total_exec = 0;
  std::vector<float> mask(static_cast<size_t>(edges_) * O, 0.f);
  for (int e = 0; e < edges_; ++e) {
    auto& pe = plan.edges[e];
    pe.offset = plan.total_exec;
    for (int o = 0; o < O; ++o) {
      if (!alive[e][o]) mask[e * O + o] = -1e30f;
      else if (o != none_) pe.exec_ops.push_back(o);
    }
    plan.total_exec += static_cast<int64_t>(pe.exec_ops.size());
  }
  plan.mask = Tensor::from_vector(mask, {edges_, O});
  plan.select = Tensor();
  if (plan.total_exec > 0) {
    std::vector<float> sel(static_cast<size_t>(edges_) * O * plan.total_exec, 0.f);
    for (int e = 0; e < edges_; ++e) {
      const auto& pe = plan.edges[e];
      for (size_t k = 0; k < pe.exec_ops.size(); ++k)
        sel[(e * O + pe.exec_ops[k]) * plan.total_exec + pe.offset + k] = 1.f;
    }
    plan.select = Tensor::from_vector(sel, {static_cast<int64_t>(edges_) * O, plan.total_exec});
  }
  if (dev_ != Device::cpu()) {
    plan.mask = plan.mask.to(dev_);
    if (plan.select.defined()) plan.select = plan.select.to(dev_);
  }
}

std::vector<Tensor> SearchNetwork::edge_weights(CellType t) const {
  // Phi = softmax(alpha / T) over alive ops: pruned entries get -1e30 (exp -> exactly 0, zero
  // gradient); one matmul with a one-hot matrix gathers the executed ops' Phi for all edges at
  // once, and narrow views hand each edge its slice. A handful of tiny kernels per forward.
  const ExecutionPlan& plan = plans_[idx(t)];
  std::vector<Tensor> w(edges_);
  if (plan.total_exec == 0) return w;
  const Tensor& a = alphas_[idx(t)];
  Tensor masked = ops::add(a, plan.mask);
  Tensor phi = inv_temperature_.defined() ? ops::softmax(masked, inv_temperature_) : ops::softmax(masked, temperature_);
  Tensor flat = reshape(phi, {1, static_cast<int64_t>(edges_) * num_ops()});
  Tensor gathered = reshape(ops::matmul(flat, plan.select), {plan.total_exec});
  for (int e = 0; e < edges_; ++e) {
    const auto& pe = plan.edges[e];
    if (!pe.dead())
      w[e] = ops::narrow(gathered, 0, pe.offset, static_cast<int64_t>(pe.exec_ops.size()));
  }
  return w;
}

Tensor SearchNetwork::forward(const Tensor& x) {
  ASAP_NVTX_RANGE("search_network/forward");
  std::array<std::vector<Tensor>, 2> w = {edge_weights(CellType::Normal),
                                          edge_weights(CellType::Reduce)};
  Conv2dParams sp;
  sp.padding = 1;
  Tensor s0 = stem_bn_->forward(ops::conv2d(x, stem_w_, sp));
  Tensor s1 = s0;
  for (Cell* c : cells_) {
    int t = c->reduction() ? 1 : 0;
    Tensor s2 = c->forward(s0, s1, plans_[t], w[t]);
    s0 = s1;
    s1 = s2;
  }
  return ops::linear(ops::global_avg_pool(s1), fc_w_, fc_b_);
}

std::vector<std::vector<double>> SearchNetwork::alpha_host(CellType t) const {
  std::vector<double> a = alphas_[idx(t)].to_vector_f64();
  std::vector<std::vector<double>> out(edges_, std::vector<double>(num_ops()));
  for (int e = 0; e < edges_; ++e)
    for (int o = 0; o < num_ops(); ++o) out[e][o] = a[e * num_ops() + o];
  return out;
}

std::vector<std::vector<double>> SearchNetwork::phi(CellType t) const { return phi(t, alpha_host(t)); }

std::vector<std::vector<double>> SearchNetwork::phi(CellType t, const std::vector<std::vector<double>>& alpha) const {
  auto a = alpha;
  const auto& alive = alive_[idx(t)];
  for (int e = 0; e < edges_; ++e) {
    double mx = -INFINITY, s = 0;
    for (int o = 0; o < num_ops(); ++o)
      if (alive[e][o]) mx = std::max(mx, a[e][o] / temperature_);
    for (int o = 0; o < num_ops(); ++o) {
      a[e][o] = alive[e][o] ? std::exp(a[e][o] / temperature_ - mx) : 0.0;
      s += a[e][o];
    }
    for (int o = 0; o < num_ops(); ++o) a[e][o] /= s;
  }
  return a;
}

}  // namespace asap::nas
