// Training the evaluation network from a genotype (DARTS train.py): SGD momentum, cosine LR to
// lr_min, global-norm clip, auxiliary loss weight, drop-path rising linearly. asap_run owns the
// data (cutout is an augmentation there), epochs, checkpoint files and logging.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/cache_trim.h"
#include "engine/distributed/grad_sync.h"
#include "engine/optim/sgd.h"
#include "engine/step_graph.h"
#include "nas/batch.h"
#include "nas/eval_network.h"
#include "nas/step_state.h"

namespace asap::nas {

struct TrainConfig {
  EvalNetworkConfig net;
  int epochs = 600;
  double lr = 0.025;
  double lr_min = 0.0;  // DARTS train.py: CosineAnnealingLR(opt, epochs) with eta_min 0
  // false: the cosine steps once per epoch (DARTS, 600 epochs); true: once per optimizer step over
  // epochs * steps_per_epoch, reaching lr_min after the last step. A few-epoch schedule needs the
  // latter: per epoch, 3 epochs end at lr/4 (the last epoch never anneals).
  bool lr_per_step = false;
  int64_t steps_per_epoch = 0;  // batches an epoch; required with lr_per_step
  double momentum = 0.9;
  double weight_decay = 3e-4;
  double grad_clip = 5.0;
  double aux_weight = 0.4;
  double drop_path_max = 0.2;
  uint64_t seed = 0;
  bool skip_nonfinite = false;  // see SearchConfig::skip_nonfinite
  // Device-resident steps (all but skip_nonfinite): the loss, accuracy and NaN guard are recorded
  // on the device and read every `sync_every` steps and at the epoch end (SearchConfig::sync_every).
  int sync_every = 1;
  // CUDA: capture the device-resident step once per shape and replay it (run.cuda_graphs); see
  // SearchConfig::cuda_graphs. Ignored elsewhere and with skip_nonfinite.
  bool cuda_graphs = false;
  void validate() const;
};

struct TrainEpochStats {
  int epoch = 0;
  int64_t steps = 0;
  double loss = 0, acc = 0, lr = 0, drop_path = 0, seconds = 0;
  int64_t skipped = 0;  // batches skipped for non-finite values
};
nlohmann::json to_json(const TrainEpochStats& s);

class EvalTrainer {
 public:
  EvalTrainer(const Genotype& g, const TrainConfig& cfg, Device dev = Device::cpu());
  TrainEpochStats run_epoch(const BatchSource& train);
  // Returns the total loss; *skipped is set when a non-finite loss or gradient norm skipped the
  // update (skip_nonfinite; otherwise that throws NumericError).
  double train_step(const Batch& b, double* acc = nullptr, bool* skipped = nullptr);
  // One step as run_epoch runs it: device-resident (no host read) unless skip_nonfinite, in which
  // case it is train_step. asap_bench times this.
  void step(const Batch& b);
  EvalStats evaluate(const BatchSource& src);
  bool finished() const { return epoch_ >= cfg_.epochs; }
  int epoch() const { return epoch_; }
  EvalNetwork& network() { return *net_; }
  SGD& optimizer() { return *opt_; }
  bool step_graph_active() const { return graph_.active(); }

  // Data parallel (docs/distributed.md): gradients averaged over `comm`'s ranks each step, epoch
  // means over the ranks. `comm` must outlive the trainer; device-resident steps only.
  void set_data_parallel(dist::Communicator* comm);

  // After every step; `loss` is the epoch's mean loss so far, updated at log points only on the
  // device-resident path (NaN before the first log point of an epoch).
  std::function<void(int epoch, int64_t step, double loss)> on_step;

  // "weights.<name>", "buffers.<name>", "sgd.*"; JSON: epoch, step, drop-path RNG offset.
  std::map<std::string, Tensor> state_tensors() const;
  nlohmann::json state_json() const;
  void load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& j);

 private:
  TrainConfig cfg_;
  Device dev_;
  Generator gen_;
  std::unique_ptr<EvalNetwork> net_;
  std::unique_ptr<SGD> opt_;
  std::vector<Tensor> weights_;
  int epoch_ = 0;
  int64_t step_ = 0;
  std::unique_ptr<StepState> state_;  // device-resident steps (nas/step_state.h)
  dist::Communicator* comm_ = nullptr;
  std::unique_ptr<dist::GradAllReduce> sync_;
  void step_on_device(const Tensor& x, const Tensor& y);
  // CUDA graphs: static inputs, the captured step and what one replay adds to the host's counts.
  bool step_graphs_ = false;
  Tensor in_x_, in_y_;
  GraphedStep graph_;
  std::vector<int64_t> replay_inc_;
  uint64_t replay_dp_counters_ = 0;
  void device_step(const Batch& b);  // graphed where on, else step_on_device
  // The cache may still hold what a search before us used: the first step marks it and the
  // first host wait after it trims it to what the train step needs (one workload: trims once).
  CacheTrim cache_trim_;
  StepReport sync_point();  // one read; raises the NaN guard
  void set_step_lr();       // lr_per_step: the rate for the step about to run
};

}  // namespace asap::nas
