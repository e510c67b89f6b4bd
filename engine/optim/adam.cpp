#include "engine/optim/adam.h"

#include <map>
#include <tuple>

#include "engine/error.h"
#include "engine/kernel_table.h"

namespace asap {

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay, std::vector<std::string> names)
    : Optimizer(std::move(params), std::move(names), lr, "adam", {"m", "v"}),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay) {
  ASAP_CHECK(lr >= 0 && eps >= 0 && weight_decay >= 0, "adam: lr, eps and weight_decay must be >= 0");
  ASAP_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "adam: betas must be in [0, 1), got (",
             beta1, ", ", beta2, ")");
}

void Adam::step() {
  ++steps_;
  // Bias correction depends on each param's own step count, so params are grouped by
  // (device, dtype, step); normally every param updates every step and there is one group.
  struct Group {
    Device dev;
    std::vector<Tensor> params, grads, m, v;
  };
  std::map<std::tuple<int, int, int, int64_t>, Group> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    const Tensor& p = params_[i];
    ensure_state(i);
    const int64_t t = ++param_steps_[i];
    auto& grp = groups[{static_cast<int>(p.device().type), p.device().index, static_cast<int>(p.dtype()), t}];
    grp.dev = p.device();
    grp.params.push_back(p);
    grp.grads.push_back(g);
    grp.m.push_back(state(0, i));
    grp.v.push_back(state(1, i));
    ++p.impl()->version;  // in-place write
  }
  if (scalars_.defined()) ASAP_KERNEL(scalars_.device(), optim_step_advance)(scalars_, gate_);
  for (auto& [key, grp] : groups) {
    // With device scalars the kernel's step is the device count + (own - global) host steps.
    const AdamArgs args{lr_, beta1_, beta2_, eps_, weight_decay_, std::get<3>(key), scalars_,
                        std::get<3>(key) - steps_, gate_};
    ASAP_KERNEL(grp.dev, adam_step)(grp.params, grp.grads, grp.m, grp.v, args);
  }
}

}  // namespace asap
