#include "nas/eval_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"
#include "engine/optim/clip.h"
#include "engine/optim/lr_schedule.h"
#include "engine/storage.h"

namespace asap::nas {

void TrainConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& why) {
    throw ConfigError("train." + key + ": " + why);
  };
  if (epochs < 1) bad("epochs", "must be >= 1");
  if (!(lr > 0) || lr_min < 0) bad("lr", "must be > 0 (lr_min >= 0)");
  if (lr_per_step && steps_per_epoch < 1) bad("steps_per_epoch", "must be >= 1 with a per-step learning rate");
  if (!(drop_path_max >= 0 && drop_path_max < 1)) bad("drop_path_max", "must be in [0, 1)");
  if (aux_weight < 0) bad("aux_weight", "must be >= 0");
  if (net.C < 1 || net.layers < 1) bad("C", "C and layers must be >= 1");
}

nlohmann::json to_json(const TrainEpochStats& s) {
  return {{"epoch", s.epoch}, {"steps", s.steps}, {"loss", s.loss}, {"acc", s.acc},
          {"lr", s.lr},       {"drop_path", s.drop_path}, {"seconds", s.seconds}, {"skipped", s.skipped}};
}

EvalTrainer::EvalTrainer(const Genotype& g, const TrainConfig& cfg, Device dev)
    : cfg_(cfg), dev_(dev), gen_(cfg.seed) {
  cfg_.validate();
  net_ = std::make_unique<EvalNetwork>(g, cfg_.net, gen_, dev_);
  std::vector<Tensor> ps;
  std::vector<std::string> names;
  for (auto& [n, t] : net_->named_parameters()) {
    names.push_back(n);
    ps.push_back(t);
  }
  weights_ = ps;
  opt_ = std::make_unique<SGD>(ps, cfg_.lr, cfg_.momentum, cfg_.weight_decay, false, names);
  if (!cfg_.skip_nonfinite) {
    state_ = std::make_unique<StepState>(dev_, 0, 0, AnnealConfig{});
    opt_->use_device_scalars();
    step_graphs_ = cfg_.cuda_graphs && StepGraph::supported(dev_);
  }
}

void EvalTrainer::set_data_parallel(dist::Communicator* comm) {
  ASAP_CHECK(!comm || state_, "train: data parallel needs device-resident steps (run.on_nan: stop)");
  ASAP_CHECK(!comm || !step_graphs_, "train: data parallel steps are not captured as CUDA graphs");
  comm_ = comm;
  sync_ = comm ? std::make_unique<dist::GradAllReduce>(*comm) : nullptr;
}

void EvalTrainer::step(const Batch& b) {
  if (state_) device_step(b);
  else train_step(b);
}

void EvalTrainer::device_step(const Batch& b) {
  cache_trim_.before_step(dev_, 0);
  net_->set_sample_window(uint64_t(b.total), uint64_t(b.first));  // a rank's shard: the global masks
  if (!step_graphs_) {
    step_on_device(b.x.to(dev_), b.y.to(dev_));  // to() returns the tensor itself when it is there
    return;
  }
  bool moved = stage_input(b.x, in_x_, dev_);
  moved = stage_input(b.y, in_y_, dev_) || moved;
  // Besides device memory the step depends on the batch shape and on whether drop-path runs (its
  // p, the learning rate and the Philox counter are read from device memory).
  const std::string key = in_x_.shape().str() + (net_->drop_path_prob() > 0 ? "/drop-path" : "");
  const std::vector<int64_t> p0 = opt_->per_param_steps();
  const int64_t s0 = opt_->step_count();
  const uint64_t dp0 = net_->drop_path_offset();
  switch (graph_.run(dev_, key, moved, [&] { step_on_device(in_x_, in_y_); }, "train")) {
    case GraphedStep::Ran::Eager:
      break;
    case GraphedStep::Ran::Captured:
      replay_inc_ = opt_->steps_since(p0);
      replay_dp_counters_ = net_->drop_path_offset() - dp0;
      ASAP_CHECK(opt_->step_count() == s0 + 1, "train: the captured step did not step the optimizer once");
      break;
    case GraphedStep::Ran::Replayed:  // the host bookkeeping of step_on_device, without the host work
      opt_->count_replayed_step(replay_inc_);
      net_->count_replayed_forward(replay_dp_counters_);
      ++step_;
      break;
  }
}

// No host read: the norm and clip coefficient stay on the device, the SGD update is gated on the
// norm being finite, loss and accuracy are added to the state vector (nas/step_state.h).
void EvalTrainer::step_on_device(const Tensor& x, const Tensor& y) {
  ASAP_NVTX_RANGE("train/step");
  net_->train(true);
  opt_->zero_grad();
  auto out = net_->forward_all(x);
  Tensor loss = ops::cross_entropy(out.logits, y);
  if (out.aux_logits.defined() && cfg_.aux_weight > 0)
    loss = ops::add(loss, ops::mul_scalar(ops::cross_entropy(out.aux_logits, y), cfg_.aux_weight));
  backward(loss);
  if (sync_) sync_->average(weights_, x.dim(0));
  Tensor norm = cfg_.grad_clip > 0 ? clip_grad_norm_device(weights_, cfg_.grad_clip) : grad_norm_device(weights_);
  opt_->set_gate(norm);
  opt_->step();
  opt_->zero_grad();
  state_->record(loss, out.logits.detach(), y, norm, 0, /*advance=*/true);
  ++step_;
}

StepReport EvalTrainer::sync_point() {
  StepReport r = state_->read();
  if (comm_) average_over_ranks(r, *comm_);
  cache_trim_.trim_if_pending(dev_);  // the read waited for the device: the trim's cudaFree costs no sync
  if (r.first_bad >= 0)
    throw NumericError("train: non-finite loss or gradient norm at step " + std::to_string(r.first_bad));
  return r;
}

double EvalTrainer::train_step(const Batch& b, double* acc, bool* skipped) {
  ASAP_NVTX_RANGE("train/step");
  cache_trim_.before_step(dev_, 0);
  net_->train(true);
  net_->set_sample_window(uint64_t(b.total), uint64_t(b.first));
  Tensor x = b.x.to(dev_), y = b.y.to(dev_);
  opt_->zero_grad();
  const std::vector<Tensor> bn_stats = cfg_.skip_nonfinite ? net_->snapshot_buffers() : std::vector<Tensor>();
  auto out = net_->forward_all(x);
  Tensor loss = ops::cross_entropy(out.logits, y);
  if (out.aux_logits.defined() && cfg_.aux_weight > 0)
    loss = ops::add(loss, ops::mul_scalar(ops::cross_entropy(out.aux_logits, y), cfg_.aux_weight));
  double l = loss.item();
  bool finite = std::isfinite(l);
  if (finite) {
    backward(loss);
    const double norm = cfg_.grad_clip > 0 ? clip_grad_norm(weights_, cfg_.grad_clip) : grad_norm(weights_);
    finite = std::isfinite(norm);
    if (!finite && !cfg_.skip_nonfinite)
      throw NumericError("train: non-finite gradient norm at step " + std::to_string(step_));
  } else {
    clear_tape();
    if (!cfg_.skip_nonfinite) throw NumericError("train: non-finite loss at step " + std::to_string(step_));
  }
  if (finite) opt_->step();
  else net_->restore_buffers(bn_stats);
  if (skipped) *skipped = !finite;
  opt_->zero_grad();
  if (acc) *acc = accuracy(out.logits.detach(), y);
  ++step_;
  return l;
}

void EvalTrainer::set_step_lr() {
  // A pure function of the step count, so a resumed run continues the same curve; steps past the
  // planned total (a loader that yields more batches) stay at lr_min instead of rising again.
  const int64_t total = int64_t(cfg_.epochs) * cfg_.steps_per_epoch;
  opt_->set_lr(CosineAnnealingLR(cfg_.lr, total, cfg_.lr_min).lr_at(std::min(step_, total)));
}

TrainEpochStats EvalTrainer::run_epoch(const BatchSource& train) {
  ASAP_NVTX_RANGE("train/epoch");
  ASAP_CHECK(!finished(), "train: run_epoch called after the last epoch");
  auto t0 = std::chrono::steady_clock::now();
  TrainEpochStats st;
  st.epoch = epoch_;
  if (cfg_.lr_per_step) set_step_lr();
  else CosineAnnealingLR(cfg_.lr, cfg_.epochs, cfg_.lr_min).apply(*opt_, epoch_);
  st.lr = opt_->lr();  // per step: the epoch's first rate
  st.drop_path = drop_path_prob_at(epoch_, cfg_.epochs, cfg_.drop_path_max);
  net_->set_drop_path_prob(st.drop_path);
  Batch b;
  if (state_) {
    state_->begin_epoch(epoch_, step_, 1.0);
    int64_t since = 0;
    double mean = std::nan("");
    StepReport r;
    while (train(b)) {
      if (cfg_.lr_per_step) set_step_lr();
      device_step(b);
      st.steps++;
      if (++since >= cfg_.sync_every) {
        since = 0;
        r = sync_point();
        mean = r.mean_loss(0);
      }
      if (on_step) on_step(epoch_, step_, mean);
    }
    if (since > 0 || st.steps == 0) r = sync_point();
    st.loss = r.mean_loss(0);
    st.acc = r.mean_acc(0);
    ++epoch_;
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
  }
  while (train(b)) {
    double acc = 0;
    bool skipped = false;
    if (cfg_.lr_per_step) set_step_lr();
    double l = train_step(b, &acc, &skipped);
    cache_trim_.trim_if_pending(dev_);
    st.steps++;
    if (skipped) {
      st.skipped++;  // skip_nonfinite: the batch made no update
    } else {
      st.loss += l;
      st.acc += acc;
    }
    if (on_step) on_step(epoch_, step_, l);
  }
  if (const int64_t counted = st.steps - st.skipped; counted > 0) {
    st.loss /= counted;
    st.acc /= counted;
  }
  ++epoch_;
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

EvalStats EvalTrainer::evaluate(const BatchSource& src) {
  ASAP_NVTX_RANGE("train/evaluate");
  if (!comm_ || comm_->size() == 1) return evaluate_classifier(*net_, src, dev_);
  // Data parallel: each rank evaluates every size-th batch and the sums are added over ranks, so
  // the test set costs 1/size of a pass per rank. Every rank first takes rank 0's BN running
  // statistics (without sync BN each rank's differ), so the result is that of the model rank 0
  // writes to its checkpoint, as a 1-process evaluation of it would give (up to the order of the
  // loss sum; the correct count is exact).
  for (auto& [name, t] : net_->named_buffers()) dist::broadcast_tensor(*comm_, t, 0);
  const EvalStats mine = evaluate_classifier(*net_, shard_batches(src, comm_->rank(), comm_->size()), dev_);
  double sums[3] = {mine.loss * double(mine.samples), mine.acc * double(mine.samples), double(mine.samples)};
  comm_->host().allreduce_sum(sums, 3);
  EvalStats all;
  all.samples = int64_t(sums[2]);
  if (all.samples) {
    all.loss = sums[0] / sums[2];
    all.acc = sums[1] / sums[2];
  }
  return all;
}

std::map<std::string, Tensor> EvalTrainer::state_tensors() const {
  std::map<std::string, Tensor> m;
  for (auto& [n, t] : net_->named_parameters()) m["weights." + n] = t;
  for (auto& [n, t] : net_->named_buffers()) m["buffers." + n] = t;
  for (auto& kv : opt_->export_state()) m[kv.first] = kv.second;
  return m;
}

nlohmann::json EvalTrainer::state_json() const {
  return {{"format", "asap-train-state-1"},
          {"epoch", epoch_},
          {"step", step_},
          {"genotype", to_json(net_->genotype())},
          {"drop_path_offset", net_->drop_path_offset()}};
}

void EvalTrainer::load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& j) {
  ASAP_CHECK(j.value("format", "") == "asap-train-state-1", "train state: unknown format");
  ASAP_CHECK(genotype_from_json(j.at("genotype")) == net_->genotype(),
             "train state: the checkpoint's genotype differs from this network's");
  auto load_into = [&](const std::string& name, Tensor& dst) {
    auto it = tensors.find(name);
    ASAP_CHECK(it != tensors.end(), "train state: missing tensor '", name, "'");
    ASAP_CHECK(it->second.shape() == dst.shape(), "train state: '", name, "' has shape ",
               it->second.shape().str(), ", expected ", dst.shape().str());
    dst.copy_(it->second);
  };
  for (auto& [n, t] : net_->named_parameters()) load_into("weights." + n, t);
  for (auto& [n, t] : net_->named_buffers()) load_into("buffers." + n, t);
  opt_->import_state(tensors);
  epoch_ = j.at("epoch").get<int>();
  step_ = j.at("step").get<int64_t>();
  net_->set_drop_path_state(net_->drop_path_seed(), j.at("drop_path_offset").get<uint64_t>());
}

}  // namespace asap::nas
