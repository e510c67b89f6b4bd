#include "nas/eval_network.h"

#include <algorithm>
#include <typeinfo>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "engine/nvtx.h"
#include "engine/ops.h"
#include "nas/layers.h"
#include "nas/primitives.h"

namespace asap::nas {

double drop_path_prob_at(int epoch, int epochs, double max_prob) {
  return epochs > 0 ? max_prob * double(epoch) / double(epochs) : 0.0;
}

namespace {

Tensor make_linear(int64_t out, int64_t in, Generator& gen, Device dev, Tensor& bias) {
  Tensor w = make_conv_weight(out, in, 1, gen, Device::cpu()).view({out, in});
  Tensor b = Tensor::empty({out});
  default_bias_init_(b, in, gen);
  bias = dev == Device::cpu() ? b : b.to(dev);
  return dev == Device::cpu() ? w : w.to(dev);
}

}  // namespace

class EvalCell : public Module {
 public:
  EvalCell(const Genotype& g, int64_t c_pp, int64_t c_p, int64_t c, bool reduction,
           bool reduction_prev, bool share_stateless, Generator& gen, Device dev)
      : reduction_(reduction) {
    const CellType t = reduction ? CellType::Reduce : CellType::Normal;
    genes_ = g.genes(t);
    concat_ = g.concat(t);
    if (reduction_prev)
      pre0_ = register_module("preprocess0", std::make_unique<FactorizedReduce>(c_pp, c, true, gen, dev));
    else
      pre0_ = register_module("preprocess0", std::make_unique<ReLUConvBN>(c_pp, c, 1, 1, 0, true, gen, dev));
    pre1_ = register_module("preprocess1", std::make_unique<ReLUConvBN>(c_p, c, 1, 1, 0, true, gen, dev));
    PrimitiveArgs a;
    a.C = c;
    a.affine = true;
    a.pool_bn = false;  // DARTS OPS: pooling without BN in the evaluation network
    a.device = dev;
    for (size_t k = 0; k < genes_.size(); ++k) {
      a.stride = reduction && genes_[k].second < 2 ? 2 : 1;
      Module* m = register_module("ops." + std::to_string(k), make_primitive(genes_[k].first, a, gen));
      ops_.push_back(m);
      identity_.push_back(dynamic_cast<Identity*>(m) != nullptr);
      // A stateless op (pooling, identity: no parameters, no buffers, no randomness) applied to the
      // same input as an earlier gene computes the same tensor: reuse it. Searched cells often hold
      // such repeats (three max_pool_3x3 of input 0 in one quick-start cell); each use still gets its
      // own drop-path mask, and the backward sums the uses' gradients before one pooling backward.
      shared_from_.push_back(static_cast<int>(k));
      if (share_stateless && m->named_parameters().empty() && m->named_buffers().empty())
        for (size_t j = 0; j < k; ++j)
          if (genes_[j] == genes_[k]) {  // the first equal gene runs the op (same name: also stateless)
            shared_from_[k] = static_cast<int>(j);
            break;
          }
    }
    c_out_ = c * static_cast<int64_t>(concat_.size());
  }

  // Drop-path masks use counters dp_gen reserves, relative to `base` (the forward's first counter,
  // which the device holds in dp_state[0]).
  // window_total / window_first: EvalNetwork::set_sample_window (0 / 0 in one process).
  Tensor forward2(const Tensor& s0, const Tensor& s1, double drop_prob, Generator& dp_gen, const Tensor& dp_state,
                  uint64_t base, uint64_t window_total, uint64_t window_first) {
    ASAP_NVTX_RANGE(reduction_ ? "eval_cell/reduce" : "eval_cell/normal");
    std::vector<Tensor> states = {pre0_->forward(s0), pre1_->forward(s1)};
    const size_t nodes = genes_.size() / 2;
    std::vector<Tensor> op_out(genes_.size());  // undrop-pathed op outputs, for shared_from_
    for (size_t i = 0; i < nodes; ++i) {
      Tensor h[2];
      for (int k = 0; k < 2; ++k) {
        size_t g = 2 * i + k;
        const int src = shared_from_[g];
        op_out[g] = src != static_cast<int>(g) ? op_out[size_t(src)] : ops_[g]->forward(states[genes_[g].second]);
        h[k] = op_out[g];
        if (training() && drop_prob > 0 && !identity_[g]) {
          const uint64_t n = window_total ? window_total : static_cast<uint64_t>(h[k].dim(0));
          h[k] = ops::drop_path(h[k], drop_prob, dp_state, dp_gen.seed(), dp_gen.reserve(n) - base, window_first);
        }
      }
      states.push_back(ops::add(h[0], h[1]));
    }
    std::vector<Tensor> out;
    for (int c : concat_) out.push_back(states[c]);
    return ops::concat_channels(out);
  }
  int64_t out_channels() const { return c_out_; }

 private:
  bool reduction_;
  std::vector<Gene> genes_;
  std::vector<int> concat_;
  Module* pre0_;
  Module* pre1_;
  std::vector<Module*> ops_;
  std::vector<bool> identity_;
  std::vector<int> shared_from_;  // per gene: the gene whose op output it reuses (itself if none)
  int64_t c_out_ = 0;
};

// AuxiliaryHeadCIFAR: ReLU, avg pool 5 stride 3 (no padding), 1x1 conv 128, BN, ReLU, 2x2 conv 768,
// BN, ReLU, linear. DARTS assumes an 8x8 input; for other sizes the pool and the 2x2 conv shrink
// to fit and a global average pool collapses whatever spatial extent remains.
class AuxiliaryHead : public Module {
 public:
  AuxiliaryHead(int64_t c, int64_t spatial, int num_classes, Generator& gen, Device dev) {
    if (spatial >= 5) {
      pool_.kernel = 5;
      pool_.stride = 3;
      pooled_ = (spatial - 5) / 3 + 1;
    } else {
      pool_.kernel = static_cast<int>(spatial);
      pool_.stride = 1;
      pooled_ = 1;
    }
    pool_.padding = 0;
    k2_ = static_cast<int>(std::min<int64_t>(2, pooled_));
    w1_ = register_parameter("conv1.weight", make_conv_weight(128, c, 1, gen, dev));
    bn1_ = register_module("bn1", std::make_unique<BatchNorm2d>(128, true, dev));
    w2_ = register_parameter("conv2.weight", make_conv_weight(768, 128, k2_, gen, dev));
    bn2_ = register_module("bn2", std::make_unique<BatchNorm2d>(768, true, dev));
    Tensor b;
    fc_w_ = register_parameter("classifier.weight", make_linear(num_classes, 768, gen, dev, b));
    fc_b_ = register_parameter("classifier.bias", b);
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = ops::avg_pool2d(ops::relu(x), pool_);
    h = ops::relu(bn1_->forward(ops::conv2d(h, w1_, Conv2dParams{})));
    h = ops::relu(bn2_->forward(ops::conv2d(h, w2_, Conv2dParams{})));
    return ops::linear(ops::global_avg_pool(h), fc_w_, fc_b_);
  }

 private:
  Pool2dParams pool_;
  int64_t pooled_ = 1;
  int k2_ = 2;
  Tensor w1_, w2_, fc_w_, fc_b_;
  Module* bn1_;
  Module* bn2_;
};

EvalNetwork::EvalNetwork(const Genotype& g, const EvalNetworkConfig& cfg, Generator& gen, Device dev)
    : genotype_(g), cfg_(cfg), dp_gen_(gen.seed() ^ 0x9E3779B97F4A7C15ULL),
      dp_state_(Tensor::from_vector(std::vector<double>{0.0, 0.0}, Shape{2}).to(dev)) {
  validate_genotype(g);
  ASAP_CHECK(cfg.layers >= 1 && cfg.C >= 1 && cfg.input_size >= 1, "eval network: bad C/layers/input_size");
  if (cfg_.reduction_cells.empty()) cfg_.reduction_cells = {cfg.layers / 3, 2 * cfg.layers / 3};
  int64_t c_curr = cfg.stem_multiplier * cfg.C;
  stem_w_ = register_parameter("stem.conv.weight", make_conv_weight(c_curr, cfg.in_channels, 3, gen, dev));
  stem_bn_ = register_module("stem.bn", std::make_unique<BatchNorm2d>(c_curr, true, dev));
  int64_t c_pp = c_curr, c_p = c_curr;
  c_curr = cfg.C;
  int64_t spatial = cfg.input_size;
  bool reduction_prev = false;
  aux_pos_ = cfg.auxiliary ? 2 * cfg.layers / 3 : -1;
  for (int i = 0; i < cfg.layers; ++i) {
    bool reduction = std::count(cfg_.reduction_cells.begin(), cfg_.reduction_cells.end(), i) > 0;
    if (reduction) {
      c_curr *= 2;
      spatial = (spatial + 1) / 2;
    }
    auto* cell = register_module("cells." + std::to_string(i),
                                 std::make_unique<EvalCell>(g, c_pp, c_p, c_curr, reduction, reduction_prev,
                                                            cfg.share_stateless_ops, gen, dev));
    cells_.push_back(cell);
    reduction_prev = reduction;
    c_pp = c_p;
    c_p = cell->out_channels();
    if (i == aux_pos_)
      aux_ = register_module("auxiliary_head",
                             std::make_unique<AuxiliaryHead>(c_p, spatial, cfg.num_classes, gen, dev));
  }
  Tensor b;
  fc_w_ = register_parameter("classifier.weight", make_linear(cfg.num_classes, c_p, gen, dev, b));
  fc_b_ = register_parameter("classifier.bias", b);
}

EvalNetwork::Output EvalNetwork::forward_all(const Tensor& x) {
  ASAP_NVTX_RANGE("eval_network/forward");
  Output out;
  Conv2dParams sp;
  sp.padding = 1;
  Tensor s0 = stem_bn_->forward(ops::conv2d(x, stem_w_, sp));
  Tensor s1 = s0;
  const uint64_t base = dp_gen_.offset();
  for (size_t i = 0; i < cells_.size(); ++i) {
    Tensor s2 = cells_[i]->forward2(s0, s1, drop_prob_, dp_gen_, dp_state_, base, window_total_, window_first_);
    s0 = s1;
    s1 = s2;
    if (static_cast<int>(i) == aux_pos_ && aux_ && training()) out.aux_logits = aux_->forward(s1);
  }
  out.logits = ops::linear(ops::global_avg_pool(s1), fc_w_, fc_b_);
  if (const uint64_t used = dp_gen_.offset() - base; used > 0)
    ASAP_KERNEL(dp_state_.device(), counter_advance)(dp_state_, used);  // one launch per step
  return out;
}

void EvalNetwork::set_drop_path_prob(double p) {
  drop_prob_ = p;
  write_drop_path_state();
}

void EvalNetwork::set_drop_path_state(uint64_t seed, uint64_t offset) {
  dp_gen_.set_state(seed, offset);
  write_drop_path_state();
}

// One small upload, at an epoch start or a checkpoint load (never inside a step).
void EvalNetwork::write_drop_path_state() {
  ASAP_CHECK(dp_gen_.offset() < (uint64_t(1) << 53), "drop-path counter ", dp_gen_.offset(),
             " no longer fits the device's float64 counter");
  dp_state_.copy_(Tensor::from_vector(std::vector<double>{static_cast<double>(dp_gen_.offset()), drop_prob_},
                                      Shape{2}));
}

int64_t EvalNetwork::parameter_count_without_aux() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters())
    if (name.rfind("auxiliary_head.", 0) != 0) n += t.numel();
  return n;
}

}  // namespace asap::nas
