#include "nas/step_state.h"

#include <algorithm>
#include <tuple>

#include "engine/error.h"

namespace asap::nas {

ScheduleConsts schedule_consts(const AnnealConfig& a, int edges, int ops) {
  ScheduleConsts s;
  s.constant_T = a.temperature_schedule == "constant";
  s.per_step_T = a.temperature_unit == "step";
  s.T0 = a.T0;
  s.beta = a.beta;
  s.T_min = a.min_temperature;
  s.fraction = a.threshold_policy == "fraction";
  s.c = a.threshold_c;
  s.theta0 = a.theta0;
  s.gamma = a.gamma;
  s.theta_per_step = a.threshold_unit == "step";
  s.edges = edges;
  s.ops = ops;
  return s;
}

StepState::StepState(Device dev, int edges, int ops, const AnnealConfig& anneal)
    : dev_(dev), consts_(schedule_consts(anneal, edges, ops)) {
  std::vector<double> init(static_cast<size_t>(step_state::size(edges, ops)), 0.0);
  init[step_state::kFirstBad] = -1;
  init[step_state::kT] = 1.0;
  init[step_state::kInvT] = 1.0;
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < edges; ++e)
      for (int o = 0; o < ops; ++o) init[step_state::log_index(t, e, o, edges, ops)] = -1;
  state_ = Tensor::from_vector(init, {static_cast<int64_t>(init.size())}, dev);
}

void StepState::begin_epoch(int epoch, int64_t step, double T) {
  using namespace step_state;
  StatePut p;
  p.add(kEpoch, epoch);
  p.add(kStep, static_cast<double>(step));
  p.add(kT, T);
  p.add(kInvT, 1.0 / T);
  p.add(kAccum + 0, 0);
  p.add(kAccum + 1, 0);
  p.add(kAccum + 2, 0);
  search_kernels(dev_.type).put(state_, p);
  StatePut q;  // the val slot
  q.add(kAccum + 3, 0);
  q.add(kAccum + 4, 0);
  q.add(kAccum + 5, 0);
  search_kernels(dev_.type).put(state_, q);
}

void StepState::record(const Tensor& loss, const Tensor& logits, const Tensor& labels, const Tensor& norm, int slot,
                       bool advance) {
  search_kernels(dev_.type).record_step(loss, logits, labels, norm, state_, slot, advance, consts_);
}

void StepState::prune_test(const Tensor& alpha, Tensor& mask, CellType t) {
  search_kernels(dev_.type).prune_test(alpha, mask, state_, static_cast<int>(t), consts_);
}

StepReport StepState::read() const {
  using namespace step_state;
  const std::vector<double> v = state_.to_vector_f64();
  StepReport r;
  r.step = static_cast<int64_t>(v[kStep]);
  r.first_bad = static_cast<int64_t>(v[kFirstBad]);
  r.bad_kind = static_cast<int>(v[kBadKind]);
  for (int s = 0; s < 2; ++s) {
    r.loss_sum[s] = v[kAccum + 3 * s];
    r.acc_sum[s] = v[kAccum + 3 * s + 1];
    r.steps[s] = static_cast<int64_t>(v[kAccum + 3 * s + 2]);
  }
  for (int t = 0; t < 2; ++t)
    for (int e = 0; e < consts_.edges; ++e)
      for (int o = 0; o < consts_.ops; ++o) {
        const double* l = v.data() + log_index(t, e, o, consts_.edges, consts_.ops);
        if (l[0] >= 0)
          r.pruned.push_back({static_cast<CellType>(t), e, o, static_cast<int64_t>(l[0]), l[1], l[2], l[3],
                              static_cast<int>(l[4]), l[5], l[6]});
      }
  std::stable_sort(r.pruned.begin(), r.pruned.end(), [](const StepReport::Pruned& a, const StepReport::Pruned& b) {
    return std::make_tuple(a.step, static_cast<int>(a.cell_type), a.edge, a.op) <
           std::make_tuple(b.step, static_cast<int>(b.cell_type), b.edge, b.op);
  });
  return r;
}

void average_over_ranks(StepReport& r, dist::Communicator& comm) {
  double v[4] = {r.loss_sum[0], r.loss_sum[1], r.acc_sum[0], r.acc_sum[1]};
  comm.host().allreduce_sum(v, 4);
  const double w = comm.size();
  r.loss_sum[0] = v[0] / w;
  r.loss_sum[1] = v[1] / w;
  r.acc_sum[0] = v[2] / w;
  r.acc_sum[1] = v[3] / w;
}

}  // namespace asap::nas
