#include "engine/optim/optimizer.h"

#include <set>

#include "engine/error.h"
#include "engine/kernel_table.h"

namespace asap {

Optimizer::Optimizer(std::vector<Tensor> params, std::vector<std::string> names, double lr,
                     std::string prefix, std::vector<std::string> slots)
    : params_(std::move(params)),
      names_(std::move(names)),
      lr_(lr),
      prefix_(std::move(prefix)),
      slots_(std::move(slots)) {
  if (names_.empty())
    for (size_t i = 0; i < params_.size(); ++i) names_.push_back("p" + std::to_string(i));
  ASAP_CHECK(names_.size() == params_.size(), prefix_, ": ", names_.size(), " names for ",
             params_.size(), " params");
  std::set<const TensorImpl*> seen_params;
  std::set<std::string> seen_names;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    ASAP_CHECK(p.defined(), prefix_, ": param '", names_[i], "' is undefined");
    ASAP_CHECK(p.dtype() == DType::F32 || p.dtype() == DType::F64, prefix_, ": param '", names_[i],
               "' must be float32 or float64");
    // The kernels update params in place through flat indexing.
    ASAP_CHECK(p.is_contiguous(), prefix_, ": param '", names_[i], "' must be contiguous");
    ASAP_CHECK(seen_params.insert(p.impl()).second, prefix_, ": param '", names_[i],
               "' appears twice");
    ASAP_CHECK(seen_names.insert(names_[i]).second, prefix_, ": duplicate param name '", names_[i], "'");
  }
  param_steps_.assign(params_.size(), 0);
  state_.assign(slots_.size(), std::vector<Tensor>(params_.size()));
}

void Optimizer::set_lr(double lr) {
  lr_ = lr;
  if (scalars_.defined()) ASAP_KERNEL(scalars_.device(), optim_scalar_set)(scalars_, 0, lr);
}

void Optimizer::use_device_scalars() {
  Device dev = params_.empty() ? Device::cpu() : params_[0].device();
  for (const Tensor& p : params_)
    ASAP_CHECK(p.device() == dev, prefix_, ": use_device_scalars needs every param on one device (",
               dev.str(), " and ", p.device().str(), ")");
  if (!scalars_.defined()) scalars_ = Tensor::empty(Shape{2}, DType::F64, dev);
  ASAP_KERNEL(dev, optim_scalar_set)(scalars_, 0, lr_);
  ASAP_KERNEL(dev, optim_scalar_set)(scalars_, 1, static_cast<double>(steps_));
}

void Optimizer::set_gate(Tensor t0d) {
  if (t0d.defined()) {
    ASAP_CHECK(t0d.numel() == 1 && (t0d.dtype() == DType::F32 || t0d.dtype() == DType::F64), prefix_,
               ": the gate must be a one-element float32/float64 tensor");
    for (const Tensor& p : params_)
      ASAP_CHECK(p.device() == t0d.device(), prefix_, ": the gate is on ", t0d.device().str(), ", a param on ",
                 p.device().str());
  }
  gate_ = std::move(t0d);
}

void Optimizer::count_replayed_step(const std::vector<int64_t>& inc) {
  ASAP_CHECK(inc.size() == param_steps_.size(), prefix_, ": replayed step for ", inc.size(), " params, have ",
             param_steps_.size());
  ++steps_;
  for (size_t i = 0; i < inc.size(); ++i) param_steps_[i] += inc[i];
}

std::vector<int64_t> Optimizer::steps_since(const std::vector<int64_t>& before) const {
  ASAP_CHECK(before.size() == param_steps_.size(), prefix_, ": step snapshot of ", before.size(),
             " params, have ", param_steps_.size());
  std::vector<int64_t> d(before.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = param_steps_[i] - before[i];
  return d;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::ensure_state(size_t i) {
  for (auto& slot : state_)
    if (!slot[i].defined()) slot[i] = Tensor::zeros_like(params_[i]);
}

Tensor Optimizer::grad_of(size_t i) const {
  const Tensor& p = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  ASAP_CHECK(g.dtype() == p.dtype() && g.device() == p.device(), prefix_, ": grad of '", names_[i],
             "' is ", dtype_name(g.dtype()), " on ", g.device().str(), ", param is ",
             dtype_name(p.dtype()), " on ", p.device().str());
  ASAP_CHECK_SHAPE(g.shape() == p.shape(), prefix_, ": grad of '", names_[i], "' has shape ",
                   g.shape().str(), ", param has ", p.shape().str());
  return g.is_contiguous() ? g : g.contiguous();
}

std::map<std::string, Tensor> Optimizer::export_state() const {
  std::map<std::string, Tensor> out;
  out[prefix_ + ".step"] = Tensor::scalar(static_cast<double>(steps_), DType::F64);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (param_steps_[i] > 0)
      out[prefix_ + ".step." + names_[i]] = Tensor::scalar(static_cast<double>(param_steps_[i]), DType::F64);
    for (size_t s = 0; s < slots_.size(); ++s)
      if (state_[s][i].defined()) out[prefix_ + "." + slots_[s] + "." + names_[i]] = state_[s][i];
  }
  return out;
}

void Optimizer::import_state(const std::map<std::string, Tensor>& state) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names_.size(); ++i) index[names_[i]] = i;
  // Build everything first so a bad entry leaves the optimizer unchanged.
  std::vector<std::vector<Tensor>> new_state(slots_.size(), std::vector<Tensor>(params_.size()));
  std::vector<int64_t> new_param_steps(params_.size(), 0);
  int64_t new_steps = 0;
  const std::string head = prefix_ + ".";
  auto lookup = [&](const std::string& key, const std::string& name) {
    auto it = index.find(name);
    ASAP_CHECK(it != index.end(), prefix_, ": state entry '", key, "' names no parameter of this optimizer");
    return it->second;
  };
  for (const auto& [key, t] : state) {
    if (key.compare(0, head.size(), head) != 0) continue;
    ASAP_CHECK(t.defined(), prefix_, ": state entry '", key, "' is undefined");
    const std::string rest = key.substr(head.size());
    if (rest == "step") {
      new_steps = static_cast<int64_t>(t.item());
      continue;
    }
    if (rest.compare(0, 5, "step.") == 0) {
      new_param_steps[lookup(key, rest.substr(5))] = static_cast<int64_t>(t.item());
      continue;
    }
    bool matched = false;
    for (size_t s = 0; s < slots_.size() && !matched; ++s) {
      const std::string sh = slots_[s] + ".";
      if (rest.compare(0, sh.size(), sh) != 0) continue;
      const size_t i = lookup(key, rest.substr(sh.size()));
      const Tensor& p = params_[i];
      ASAP_CHECK_SHAPE(t.shape() == p.shape(), prefix_, ": state entry '", key, "' has shape ",
                       t.shape().str(), ", param has ", p.shape().str());
      Tensor src = t;
      if (src.dtype() != p.dtype()) src = src.to(Device::cpu()).to(p.dtype());
      Tensor dst = Tensor::empty(p.shape(), p.dtype(), p.device());
      dst.copy_(src);
      new_state[s][i] = dst;
      matched = true;
    }
    ASAP_CHECK(matched, prefix_, ": unknown state entry '", key, "'");
  }
  state_ = std::move(new_state);
  param_steps_ = std::move(new_param_steps);
  steps_ = new_steps;
  if (scalars_.defined()) ASAP_KERNEL(scalars_.device(), optim_scalar_set)(scalars_, 1, static_cast<double>(steps_));
}

bool Optimizer::release_state(const Tensor& param) {
  if (!param.defined()) return false;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].impl() != param.impl()) continue;
    params_.erase(params_.begin() + i);
    names_.erase(names_.begin() + i);
    param_steps_.erase(param_steps_.begin() + i);
    for (auto& slot : state_) slot.erase(slot.begin() + i);
    return true;
  }
  return false;
}

size_t Optimizer::state_bytes() const {
  size_t n = 0;
  for (const auto& slot : state_)
    for (const Tensor& t : slot)
      if (t.defined()) n += t.nbytes();
  return n;
}

size_t Optimizer::num_params_with_state() const {
  size_t n = 0;
  if (state_.empty()) return 0;
  for (const Tensor& t : state_[0]) n += t.defined() ? 1 : 0;
  return n;
}

}  // namespace asap
