// The evaluation network: searched cells stacked (DARTS NetworkCIFAR), BN affine on, drop-path on
// every non-identity op in training, an auxiliary head after cell 2*layers//3 (AuxiliaryHeadCIFAR
// adapted to any spatial size), global average pool and a linear classifier.
#pragma once
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "nas/genotype.h"
#include "nas/module.h"

namespace asap::nas {

struct EvalNetworkConfig {
  int64_t C = 36;
  int layers = 20;
  int stem_multiplier = 3;
  int64_t in_channels = 3;
  int num_classes = 10;
  bool auxiliary = true;
  int64_t input_size = 32;  // H = W of the input images (sizes the auxiliary head)
  std::vector<int> reduction_cells;  // empty: {layers/3, 2*layers/3}
  // A stateless op (pooling, identity) that a cell applies twice to the same input runs once and
  // its output is reused; false runs every gene's op (tests compare the two).
  bool share_stateless_ops = true;
};

// DARTS: drop_prob = max * epoch / epochs (0 in the first epoch, rising linearly).
double drop_path_prob_at(int epoch, int epochs, double max_prob);

class EvalCell;
class AuxiliaryHead;

class EvalNetwork : public Module {
 public:
  EvalNetwork(const Genotype& g, const EvalNetworkConfig& cfg, Generator& gen,
              Device dev = Device::cpu());
  struct Output {
    Tensor logits;
    Tensor aux_logits;  // defined only in training mode with the auxiliary head on
  };
  Output forward_all(const Tensor& x);
  Tensor forward(const Tensor& x) override { return forward_all(x).logits; }

  // Drop-path probability for the following forwards (training mode only). Masks come from
  // Philox(seed, offset) with the offset advanced per call, so runs are reproducible.
  // The masks are drawn on the device from a counter base and p kept in device memory (a float64
  // [2] tensor) that the forward advances on the device, so a captured train step replays with
  // fresh masks; dp_gen_ is the host's mirror of the counter (checkpoints save it).
  void set_drop_path_prob(double p);
  double drop_path_prob() const { return drop_prob_; }
  void set_drop_path_state(uint64_t seed, uint64_t offset);
  uint64_t drop_path_offset() const { return dp_gen_.offset(); }
  uint64_t drop_path_seed() const { return dp_gen_.seed(); }
  // A replayed graph of one training forward advanced the device's counter by `counters`: the host
  // mirror follows without touching the device.
  void count_replayed_forward(uint64_t counters) { dp_gen_.set_state(dp_gen_.seed(), dp_gen_.offset() + counters); }
  // Data parallel: the following forwards see samples [first, first + n) of a global batch of
  // `total` (0: the input is the whole batch). Drop-path then reserves counters for the global
  // batch and this shard takes its samples' ones, so every rank draws the masks one process would.
  void set_sample_window(uint64_t total, uint64_t first) {
    window_total_ = total;
    window_first_ = first;
  }

  int64_t parameter_count_without_aux() const;  // the size DARTS reports
  const Genotype& genotype() const { return genotype_; }
  const EvalNetworkConfig& config() const { return cfg_; }  // reduction_cells resolved

 private:
  Genotype genotype_;
  EvalNetworkConfig cfg_;
  Tensor stem_w_;
  Module* stem_bn_;
  std::vector<EvalCell*> cells_;
  AuxiliaryHead* aux_ = nullptr;
  int aux_pos_ = -1;
  Tensor fc_w_, fc_b_;
  double drop_prob_ = 0.0;
  Generator dp_gen_;
  Tensor dp_state_;  // {counter base, p} on the network's device
  uint64_t window_total_ = 0, window_first_ = 0;  // set_sample_window
  void write_drop_path_state();
};

}  // namespace asap::nas
