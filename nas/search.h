// The ASAP search loop: alternating first-order steps (weights on a train batch, alphas on a
// validation batch), annealing, pruning with optimizer-state release, metrics hooks, and the
// checkpoint state (named tensors + JSON). asap_run owns data loading, epochs and files.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/cache_trim.h"
#include "engine/distributed/grad_sync.h"
#include "engine/optim/adam.h"
#include "engine/step_graph.h"
#include "engine/optim/sgd.h"
#include "nas/annealer.h"
#include "nas/batch.h"
#include "nas/genotype.h"
#include "nas/search_network.h"
#include "nas/step_state.h"

namespace asap::nas {

struct SearchConfig {
  SearchNetworkConfig net;
  AnnealConfig anneal;
  int epochs = 50;                 // max epochs (also the cosine LR period)
  bool stop_when_converged = true;  // stop once every edge has one alive op
  // Weights: SGD momentum, cosine LR per epoch, global-norm clip (DARTS).
  double w_lr = 0.025;
  double w_lr_min = 0.001;
  double w_momentum = 0.9;
  double w_weight_decay = 3e-4;
  double grad_clip = 5.0;  // <= 0: no clipping
  // Alphas: Adam (L2 weight decay, as torch.optim.Adam in DARTS).
  double a_lr = 3e-4;
  double a_beta1 = 0.5;
  double a_beta2 = 0.999;
  double a_eps = 1e-8;
  double a_weight_decay = 1e-3;
  uint64_t seed = 2;  // initialisation (weights and alphas)
  // The alpha step needs no weight gradients (first order): freeze weights during it so the
  // convs skip their weight-gradient kernels. Off reproduces DARTS's wasted work exactly.
  bool alpha_step_skips_weight_grads = true;
  // Non-finite loss or gradient norm: false stops with asap::NumericError naming the step; true
  // skips the batch (no update) and counts it (run.on_nan: skip_batch).
  bool skip_nonfinite = false;
  // Device-resident steps (every mode but skip_nonfinite): the host reads losses, the NaN guard
  // and the device's prune decisions every `sync_every` steps and at each epoch end, and re-plans
  // then (run.log_every on a GPU; 1 on the CPU, where a read is free). The math does not depend
  // on it: a pruned op's Phi is masked to exactly 0 on the device at its step.
  int sync_every = 1;
  // CUDA: capture the device-resident step once per plan and replay it (run.cuda_graphs). Ignored
  // where the device cannot capture and with skip_nonfinite.
  bool cuda_graphs = false;
  void validate() const;  // throws asap::ConfigError naming the key
};

struct StepInfo {
  int epoch = 0;
  int64_t step = 0;  // global, counted from the first search step
  bool warmup = false;
  double train_loss = 0, train_acc = 0;
  double val_loss = 0, val_acc = 0;  // 0 during warm-up (no alpha step)
  double T = 0, lr = 0, sparsity = 0;
  int pruned = 0;  // ops pruned (re-planned) at this step's log point
  bool skipped = false;  // a non-finite loss/gradient skipped this batch
  // Device-resident steps: losses, accuracies, sparsity and `pruned` are filled only at log
  // points (synced), as means over the epoch so far; between them they are 0.
  bool synced = true;
};

struct EpochStats {
  int epoch = 0;
  int64_t steps = 0;
  bool warmup = false;
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;  // means over the epoch
  double T = 0, lr = 0, sparsity = 0, seconds = 0;
  // Where the epoch's wall time went: inside step() (weight + alpha steps), waiting for the
  // batch sources; the rest of `seconds` is log points, pruning and the per-step callbacks.
  double step_seconds = 0, data_seconds = 0;
  int pruned = 0;
  int64_t skipped = 0;  // batches skipped for non-finite values
  bool converged = false;
};
nlohmann::json to_json(const EpochStats& s);

class Searcher {
 public:
  explicit Searcher(const SearchConfig& cfg, Device dev = Device::cpu());

  // Runs the next epoch: pairs of (train, val) batches until either source ends.
  EpochStats run_epoch(const BatchSource& train, const BatchSource& val);
  // One search step without pruning: a weight step on `train`, then (unless val is null) an
  // alpha step on *val. Used by run_epoch and by asap_bench.
  StepInfo step(const Batch& train, const Batch* val);
  // A log point outside run_epoch (asap_bench, tests): reads the device state once, raises the
  // NaN guard (NumericError naming the first bad step) and applies the device's prune decisions.
  StepInfo sync();
  // Mean loss / accuracy in eval mode (BN running statistics), no tape.
  EvalStats evaluate(const BatchSource& src);

  bool finished() const;  // max epochs reached, or converged and stop_when_converged
  int epoch() const { return epoch_; }          // the next epoch to run (0-based)
  int64_t global_step() const { return step_; }
  bool is_warmup_epoch() const;                 // for the next epoch
  double temperature() const { return net_->temperature(); }

  // Data parallel (docs/distributed.md): each step's weight and alpha gradients become the global
  // batch's (dist::GradAllReduce over the alive weights), and log points report the means over the
  // ranks. `comm` (on the network's device) must outlive the searcher; device-resident steps only.
  void set_data_parallel(dist::Communicator* comm);

  // Prunes (t, edge, op) and drops the optimizer state of its parameters.
  void prune(CellType t, int edge, int op);

  SearchNetwork& network() { return *net_; }
  const SearchNetwork& network() const { return *net_; }
  const Annealer& annealer() const { return annealer_; }
  const SearchConfig& config() const { return cfg_; }
  // Ranked by the prune log's decision records (docs/method.md); fallback_genes counted.
  Genotype genotype() const { return derive_genotype(*net_, &annealer_.log()); }
  SGD& weight_optimizer() { return *w_opt_; }
  Adam& alpha_optimizer() { return *a_opt_; }

  // Hooks (optional): after every step, every prune event, every epoch.
  std::function<void(const StepInfo&)> on_step;
  std::function<void(const PruneEvent&)> on_prune;
  std::function<void(const EpochStats&)> on_epoch;

  // Checkpoint: tensors "alphas.normal", "alphas.reduce", "weights.<name>", "buffers.<name>" and
  // the optimizers' "sgd.*" / "adam.*" state; JSON with counters, T, alive masks, prune log.
  std::map<std::string, Tensor> state_tensors() const;
  nlohmann::json state_json() const;
  // Restores a state written by the two functions above into a Searcher built with the same
  // config: re-applies the prunes (alive masks) first, then copies tensors. Throws asap::Error
  // on mismatched primitives, shapes or missing tensors.
  void load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& j);

 private:
  void rebuild_weight_list();
  void prune_by_policy(std::vector<PruneEvent>& out);
  // The host-checked step (skip_nonfinite): reads the loss and norms at once, restores BN on a skip.
  StepInfo step_host_checked(const Batch& train, const Batch* val);
  // Device-resident step (nas/search_step.cpp): no host read; records into state_.
  void step_on_device(const Tensor& x, const Tensor& y, const Tensor* vx, const Tensor* vy);
  // A log point: reads state_ once, raises the NaN guard, applies the device's prune decisions
  // (events appended to `out`) and fills the means of `info`.
  void sync_point(StepInfo& info, std::vector<PruneEvent>& out);

  SearchConfig cfg_;
  Device dev_;
  Generator gen_;
  std::unique_ptr<SearchNetwork> net_;
  Annealer annealer_;
  std::unique_ptr<SGD> w_opt_;
  std::unique_ptr<Adam> a_opt_;
  std::vector<Tensor> weights_;
  int epoch_ = 0;
  int64_t step_ = 0;
  bool warmup_now_ = false;
  std::unique_ptr<StepState> state_;
  CacheTrim cache_trim_;  // the allocator's cache follows the plan (see step)
  StepInfo step_device_resident(const Batch& train, const Batch* val);
  // CUDA graphs (nas/search_step.cpp): static input buffers, the captured step and what it was
  // captured for; a step with another key runs eagerly once, the next one captures.
  bool step_graphs_ = false;
  Tensor in_x_, in_y_, in_vx_, in_vy_;
  GraphedStep graph_;
  std::vector<int64_t> w_replay_inc_, a_replay_inc_;
  void run_step_graphed(const Batch& train, const Batch* val);
 public:
  bool step_graph_active() const { return graph_.active(); }
 private:
  dist::Communicator* comm_ = nullptr;
  std::unique_ptr<dist::GradAllReduce> w_sync_, a_sync_;
  bool prune_in_step_ = false;  // the device prune rule runs after each alpha step (run_epoch)
  StepReport last_report_;
};

}  // namespace asap::nas
