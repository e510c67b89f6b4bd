// The device-resident search step (issue 12): no host synchronisation inside a step. Losses,
// accuracies and the NaN guard are recorded in the StepState vector, the clip coefficient is
// computed on the device, the optimizers skip their update on the device when the gradient norm
// is not finite, and ASAP's prune rule runs on the device after each alpha step, masking a
// pruned op's Phi to exactly 0 at once. The host reads the vector at log points (sync_point) and
// re-plans then: the pruned op stops costing compute within sync_every steps, the math does not
// change (its Phi, its output's weight and every gradient through it are already exactly 0).
#include <cstdio>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"
#include "engine/optim/clip.h"
#include "nas/search.h"

namespace asap::nas {

void Searcher::step_on_device(const Tensor& x, const Tensor& y, const Tensor* vx, const Tensor* vy) {
  net_->train(true);
  {
    ASAP_NVTX_RANGE("search/weight_step");
    for (auto& a : net_->arch_parameters()) a.impl()->requires_grad = false;
    w_opt_->zero_grad();
    Tensor logits = net_->forward(x);
    Tensor loss = ops::cross_entropy(logits, y);
    backward(loss);
    if (w_sync_) w_sync_->average(weights_, x.dim(0));  // the alive weights only (rebuilt per plan)
    Tensor norm = cfg_.grad_clip > 0 ? clip_grad_norm_device(weights_, cfg_.grad_clip) : grad_norm_device(weights_);
    w_opt_->set_gate(norm);
    w_opt_->step();
    w_opt_->zero_grad();
    state_->record(loss, logits.detach(), y, norm, 0, /*advance=*/vx == nullptr);
    for (auto& a : net_->arch_parameters()) a.impl()->requires_grad = true;
  }
  if (!vx) return;
  ASAP_NVTX_RANGE("search/alpha_step");
  const bool freeze = cfg_.alpha_step_skips_weight_grads;
  if (freeze)
    for (auto& w : weights_) w.impl()->requires_grad = false;
  a_opt_->zero_grad();
  Tensor logits = net_->forward(*vx);
  Tensor loss = ops::cross_entropy(logits, *vy);
  backward(loss);
  if (freeze)
    for (auto& w : weights_) w.impl()->requires_grad = true;
  else
    w_opt_->zero_grad();  // first order: the weight gradients of the val batch are discarded
  if (a_sync_) a_sync_->average(net_->arch_parameters(), vx->dim(0));
  Tensor anorm = grad_norm_device(net_->arch_parameters());
  a_opt_->set_gate(anorm);
  net_->keep_decided_alphas([&] { a_opt_->step(); });  // weight decay leaves decided alphas
  a_opt_->zero_grad();
  state_->record(loss, logits.detach(), *vy, anorm, 1, /*advance=*/true);
  if (prune_in_step_)
    for (int t = 0; t < 2; ++t) {
      const CellType ct = static_cast<CellType>(t);
      state_->prune_test(net_->alpha(ct), net_->device_mask(ct), ct);
    }
}

StepInfo Searcher::sync() {
  StepInfo info;
  info.epoch = epoch_;
  info.step = step_;
  std::vector<PruneEvent> events;
  if (state_) sync_point(info, events);
  info.pruned = static_cast<int>(events.size());
  return info;
}

void Searcher::sync_point(StepInfo& info, std::vector<PruneEvent>& out) {
  ASAP_NVTX_RANGE("search/sync_point");
  last_report_ = state_->read();
  if (comm_) average_over_ranks(last_report_, *comm_);
  cache_trim_.trim_if_pending(dev_);  // the read waited for the device: the trim's cudaFree costs no sync
  const StepReport& r = last_report_;
  if (r.first_bad >= 0)
    throw NumericError(std::string("search: non-finite ") +
                       (r.bad_kind == 2 ? "validation loss or alpha gradient" : "training loss or weight gradient norm") +
                       " at step " + std::to_string(r.first_bad));
  ASAP_CHECK(r.step == step_, "search: the device counted ", r.step, " steps, the host ", step_);
  // The device's prune decisions, in the order the host rule would have taken them.
  std::vector<PruneEvent> events;
  std::vector<Tensor> released;
  for (size_t i = 0; i < r.pruned.size(); ++i) {
    const auto& p = r.pruned[i];
    if (!net_->alive(p.cell_type, p.edge, p.op)) continue;  // applied at an earlier log point
    for (const Tensor& t : net_->prune(p.cell_type, p.edge, p.op)) w_opt_->release_state(t);
    PruneEvent ev{epoch_, p.step, p.cell_type, p.edge, net_->primitives()[p.op], p.phi, p.T, p.theta};
    ev.winner = net_->primitives()[p.winner];
    ev.winner_phi = p.winner_phi;
    ev.alpha_gap = p.alpha_gap;
    events.push_back(ev);
    // The edge is decided when this step's prunes leave it one op (as Annealer::prune marks it).
    const bool last_of_step_on_edge = i + 1 == r.pruned.size() || r.pruned[i + 1].step != p.step ||
                                      r.pruned[i + 1].cell_type != p.cell_type || r.pruned[i + 1].edge != p.edge;
    if (last_of_step_on_edge && net_->alive_count(p.cell_type, p.edge) == 1)
      for (auto it = events.rbegin(); it != events.rend() && it->step == p.step && it->cell_type == p.cell_type &&
                                      it->edge == p.edge;
           ++it)
        it->decided = true;
  }
  if (!events.empty()) {
    rebuild_weight_list();
    std::vector<PruneEvent> log = annealer_.log();
    log.insert(log.end(), events.begin(), events.end());
    annealer_.set_log(std::move(log));
    for (const auto& e : events) {
      if (on_prune) on_prune(e);
      out.push_back(e);
    }
  }
  // The host's temperature follows the device's per-step schedule.
  if (cfg_.anneal.temperature_unit == "step") net_->set_temperature(annealer_.temperature_at(epoch_, step_));
  info.synced = true;
  info.T = net_->temperature();
  info.sparsity = net_->sparsity();
  info.train_loss = r.mean_loss(0);
  info.train_acc = r.mean_acc(0);
  info.val_loss = r.mean_loss(1);
  info.val_acc = r.mean_acc(1);
}

}  // namespace asap::nas

namespace asap::nas {

void Searcher::run_step_graphed(const Batch& train, const Batch* val) {
  bool moved = stage_input(train.x, in_x_, dev_);
  moved = stage_input(train.y, in_y_, dev_) || moved;
  if (val) {
    moved = stage_input(val->x, in_vx_, dev_) || moved;
    moved = stage_input(val->y, in_vy_, dev_) || moved;
  }
  // What the captured step depends on besides device memory: the plan, the step's shape, whether
  // it has an alpha step and the prune test. Everything else is read from device memory.
  const std::string key = std::to_string(net_->plan_version()) + (val ? "/alpha" : "/weights") +
                          (prune_in_step_ ? "/prune" : "") + "/" + in_x_.shape().str() +
                          (val ? in_vx_.shape().str() : std::string());
  auto body = [&] {
    if (val) step_on_device(in_x_, in_y_, &in_vx_, &in_vy_);
    else step_on_device(in_x_, in_y_, nullptr, nullptr);
  };
  const std::vector<int64_t> w0 = w_opt_->per_param_steps(), a0 = a_opt_->per_param_steps();
  const int64_t ws0 = w_opt_->step_count(), as0 = a_opt_->step_count();
  switch (graph_.run(dev_, key, moved, body, "search")) {
    case GraphedStep::Ran::Eager:
      break;
    case GraphedStep::Ran::Captured:
      // The host bookkeeping of the captured step ran once, at capture: what it added is what
      // every replay adds.
      w_replay_inc_ = w_opt_->steps_since(w0);
      a_replay_inc_ = a_opt_->steps_since(a0);
      ASAP_CHECK(w_opt_->step_count() == ws0 + 1 && a_opt_->step_count() == as0 + (val ? 1 : 0),
                 "search: the captured step did not step the optimizers once");
      break;
    case GraphedStep::Ran::Replayed:
      w_opt_->count_replayed_step(w_replay_inc_);
      if (val) a_opt_->count_replayed_step(a_replay_inc_);
      break;
  }
}

}  // namespace asap::nas
