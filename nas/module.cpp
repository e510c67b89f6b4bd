#include "nas/module.h"

#include "engine/error.h"

namespace asap::nas {

Tensor Module::forward(const Tensor&) {
  throw Error("this module has no single-input forward");
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, std::vector<NamedTensor>& out) const {
  for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_)
    if (m) m->collect(prefix + n + ".", params, out);
}

std::vector<NamedTensor> Module::named_parameters() const {
  std::vector<NamedTensor> out;
  collect("", true, out);
  return out;
}

std::vector<NamedTensor> Module::named_buffers() const {
  std::vector<NamedTensor> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& nt : named_parameters()) out.push_back(nt.second);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& nt : named_parameters()) n += nt.second.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_)
    if (c.second) c.second->train(on);
}

void move_tensor_in_place(Tensor& t, Device dev) {
  if (!t.defined() || t.device() == dev) return;
  Tensor moved = t.to(dev);
  TensorImpl* dst = t.impl();
  const TensorImpl* src = moved.impl();
  dst->storage = src->storage;
  dst->offset = src->offset;
  dst->shape = src->shape;
  dst->strides = src->strides;
  dst->device = src->device;
  dst->grad.reset();
}

void Module::to(Device dev) {
  for (auto& p : params_) move_tensor_in_place(p.second, dev);
  for (auto& b : buffers_) move_tensor_in_place(b.second, dev);
  for (auto& c : children_)
    if (c.second) c.second->to(dev);
}

Module* Module::child(const std::string& name) const {
  for (auto& c : children_)
    if (c.first == name) return c.second.get();
  return nullptr;
}

bool Module::remove_child(const std::string& name) {
  for (auto it = children_.begin(); it != children_.end(); ++it)
    if (it->first == name) {
      children_.erase(it);
      return true;
    }
  return false;
}

std::vector<Tensor> Module::snapshot_buffers() const {
  std::vector<Tensor> out;
  for (const auto& nb : named_buffers()) out.push_back(nb.second.clone());
  return out;
}

void Module::restore_buffers(const std::vector<Tensor>& snapshot) const {
  auto bufs = named_buffers();
  ASAP_CHECK(bufs.size() == snapshot.size(), "restore_buffers: the module's buffers changed");
  for (size_t i = 0; i < bufs.size(); ++i) bufs[i].second.copy_(snapshot[i]);
}

}  // namespace asap::nas
