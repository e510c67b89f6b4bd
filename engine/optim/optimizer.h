// Optimizer base: a list of named parameters, per-parameter state slots (SGD: "momentum";
// Adam: "m", "v") and per-parameter step counts. Subclasses only implement step().
//
// State lives on each parameter's device and is created lazily on the first step a parameter has
// a gradient (as PyTorch). export_state() names every tensor "<prefix>.<slot>.<param name>"
// (e.g. "adam.m.cell0.alpha"), per-parameter step counts "<prefix>.step.<param name>" and the
// global count "<prefix>.step" (float64 0-d tensors, exact to 2^53), so a checkpoint can store
// the map in a safetensors file and import_state() can resume with identical steps.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace asap {

class Optimizer {
 public:
  // names: one per param (used for state keys); empty -> "p0", "p1", ... Params must be defined,
  // contiguous, float32/float64 and distinct; names must be distinct.
  Optimizer(std::vector<Tensor> params, std::vector<std::string> names, double lr, std::string prefix,
            std::vector<std::string> slots);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every param whose grad is defined; params without a grad are skipped untouched
  // (their state and step count do not advance).
  virtual void step() = 0;
  // Drops the gradients (set to undefined, as PyTorch's set_to_none): frees their memory.
  void zero_grad();

  double lr() const { return lr_; }
  // Also writes the device copy after use_device_scalars() (one fill-style launch, no copy).
  void set_lr(double lr);

  // Moves the per-step scalars to the device (for a step that is captured once and replayed):
  // a small F64 tensor {lr, step count} on the params' device (all params on one device), read by
  // the update kernels. set_lr() writes it in-stream; step() first increments the device step
  // count in-stream (one launch; skipped when the gate is closed), and Adam's bias corrections
  // are computed in the kernel from it (a param's own step = device count - (global - own) host
  // steps at launch). Host-side counts (step_count(), checkpoints) keep counting calls to step().
  void use_device_scalars();
  bool uses_device_scalars() const { return scalars_.defined(); }
  const Tensor& device_scalars() const { return scalars_; }
  // Gate: a 0-d F32/F64 tensor on the params' device (the gradient norm or the loss). While set,
  // every update kernel skips all updates (params, state and the device step count untouched)
  // when its value is not finite, without a host read. An undefined tensor clears the gate.
  void set_gate(Tensor t0d);
  const Tensor& gate() const { return gate_; }
  int64_t step_count() const { return steps_; }  // calls to step()
  // Replayed graphs (nas/search_step.cpp): a replay of a captured step() repeats its host
  // bookkeeping. per_param_steps() before and after the captured call give the increments.
  const std::vector<int64_t>& per_param_steps() const { return param_steps_; }
  void count_replayed_step(const std::vector<int64_t>& per_param_increment);
  // per_param_steps() now minus `before` (a snapshot taken before the captured call).
  std::vector<int64_t> steps_since(const std::vector<int64_t>& before) const;
  const std::vector<Tensor>& params() const { return params_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& prefix() const { return prefix_; }

  // Shares the state tensors (no copies): save them before the next step() if a snapshot is needed.
  std::map<std::string, Tensor> export_state() const;
  // Replaces all state with copies of the entries under "<prefix>." (other keys are ignored, so a
  // checkpoint may hold several optimizers). Missing entries mean fresh state. Throws
  // asap::Error for a key naming no current param or a shape mismatch. Copies go to each
  // param's device and dtype.
  void import_state(const std::map<std::string, Tensor>& state);

  // Forgets a parameter (a pruned op's weight): drops the optimizer's references to it and its
  // state so both can be freed. Returns false when the param is not in this optimizer.
  bool release_state(const Tensor& param);
  // Bytes held by state tensors (tests check that pruning frees them).
  size_t state_bytes() const;
  // Count of params that currently have state in slot 0 (tests).
  size_t num_params_with_state() const;

 protected:
  // Index of the param slot; state_[slot][i] is undefined until param i's first update.
  Tensor& state(size_t slot, size_t i) { return state_[slot][i]; }
  // Creates zeroed state for param i in every slot if it has none.
  void ensure_state(size_t i);
  // The grad to use for param i, or undefined when it has none; checks dtype/shape/device.
  Tensor grad_of(size_t i) const;

  std::vector<Tensor> params_;
  std::vector<std::string> names_;
  std::vector<int64_t> param_steps_;  // updates received by each param
  double lr_;
  int64_t steps_ = 0;
  Tensor scalars_;  // {lr, step count} on the device after use_device_scalars()
  Tensor gate_;

 private:
  std::string prefix_;
  std::vector<std::string> slots_;
  std::vector<std::vector<Tensor>> state_;  // [slot][param]
};

}  // namespace asap
