#include "engine/optim/sgd.h"

#include <map>
#include <tuple>

#include "engine/error.h"
#include "engine/kernel_table.h"

namespace asap {

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double weight_decay, bool nesterov,
         std::vector<std::string> names)
    : Optimizer(std::move(params), std::move(names), lr, "sgd",
                momentum != 0.0 ? std::vector<std::string>{"momentum"} : std::vector<std::string>{}),
      momentum_(momentum),
      weight_decay_(weight_decay),
      nesterov_(nesterov) {
  ASAP_CHECK(lr >= 0 && momentum >= 0 && weight_decay >= 0, "sgd: lr, momentum and weight_decay must be >= 0");
  ASAP_CHECK(!nesterov || momentum > 0, "sgd: Nesterov needs momentum > 0");
}

void SGD::step() {
  ++steps_;
  // One kernel call per (device, dtype) group; in practice a single group.
  struct Group {
    Device dev;
    std::vector<Tensor> params, grads, bufs;
  };
  std::map<std::tuple<int, int, int>, Group> groups;
  const bool use_buf = momentum_ != 0.0;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    const Tensor& p = params_[i];
    // A zeroed buffer on a param's first update makes the kernel's momentum * buf + g equal g
    // exactly: PyTorch's "buf = g on the first step" without a flag in SgdArgs.
    if (use_buf) ensure_state(i);
    auto& grp = groups[{static_cast<int>(p.device().type), p.device().index, static_cast<int>(p.dtype())}];
    grp.dev = p.device();
    grp.params.push_back(p);
    grp.grads.push_back(g);
    if (use_buf) grp.bufs.push_back(state(0, i));
    ++param_steps_[i];
    ++p.impl()->version;  // in-place write: autograd sees saved tensors change
  }
  SgdArgs args{lr_, momentum_, weight_decay_, nesterov_, scalars_, gate_};
  if (scalars_.defined()) ASAP_KERNEL(scalars_.device(), optim_step_advance)(scalars_, gate_);
  for (auto& [key, grp] : groups) ASAP_KERNEL(grp.dev, sgd_step)(grp.params, grp.grads, grp.bufs, args);
}

}  // namespace asap
