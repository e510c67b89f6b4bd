// A tiny Module base for the NAS layer: named parameters (requires_grad leaves), buffers (BN
// running statistics) and owned child modules, collected recursively with dotted names so that
// checkpoints (safetensors) and optimizers see stable keys such as "cells.3.edges.7.ops.4.bn.running_mean".
// Children are owned here so that pruning can drop a whole subtree (and its memory) by name.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace asap::nas {

using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Single-input forward; multi-input modules (cells) expose their own.
  virtual Tensor forward(const Tensor& x);

  std::vector<NamedTensor> named_parameters() const;
  std::vector<NamedTensor> named_buffers() const;
  // Copies of every buffer (BN running statistics) and their restore: a batch skipped for
  // non-finite values must not leave NaN in the running statistics its forward updated.
  std::vector<Tensor> snapshot_buffers() const;
  void restore_buffers(const std::vector<Tensor>& snapshot) const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  // Recursive train/eval flag (BN batch statistics vs running statistics, drop-path on/off).
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // Moves every parameter and buffer in place: the TensorImpl is rewritten, so handles held by
  // members (and by nobody else yet) keep pointing at the moved data. Call before building
  // optimizers; gradients are dropped.
  void to(Device dev);

  Module* child(const std::string& name) const;
  // Destroys a child (and all its tensors). Returns false when no such child exists.
  bool remove_child(const std::string& name);

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);  // sets requires_grad
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <typename M>
  M* register_module(const std::string& name, std::unique_ptr<M> m) {
    M* raw = m.get();
    children_.emplace_back(name, std::move(m));
    return raw;
  }

 private:
  void collect(const std::string& prefix, bool params, std::vector<NamedTensor>& out) const;

  std::vector<NamedTensor> params_;
  std::vector<NamedTensor> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  bool training_ = true;
};

// Moves a tensor to `dev` in place (all handles see the new device).
void move_tensor_in_place(Tensor& t, Device dev);

}  // namespace asap::nas
