#include "engine/autograd.h"

#include <unordered_map>

#include "engine/kernel_table.h"
#include "engine/nvtx.h"

namespace asap {
namespace {
thread_local bool t_grad_enabled = true;
thread_local std::vector<std::shared_ptr<Node>> t_tape;
}  // namespace

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

bool needs_record(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_record(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!needs_record(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs)
    node->inputs.push_back(t.defined() && t.requires_grad() ? t.impl_ptr() : nullptr);
  node->output = out.impl_ptr();
  node->backward = std::move(fn);
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = node;
  t_tape.push_back(std::move(node));
}

void accumulate_grad(TensorImpl* t, const Tensor& g) {
  ASAP_CHECK_SHAPE(g.shape() == t->shape, "gradient shape ", g.shape().str(), " does not match tensor ",
                   t->shape.str());
  if (!t->grad) {
    // Own the gradient: a backward closure may hand out a tensor it shares with others.
    t->grad = g.is_contiguous() && g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1
                  ? g.impl_ptr() : g.clone().impl_ptr();
    t->grad->requires_grad = false;
    t->grad->grad_fn.reset();
    return;
  }
  Tensor acc(t->grad);
  Tensor gc = g.contiguous();
  ASAP_KERNEL(acc.device(), axpy)(1.0, gc, acc);
}

void backward(const Tensor& root, const Tensor& grad) {
  ASAP_NVTX_RANGE("backward");
  ASAP_CHECK(root.defined(), "backward on an undefined tensor");
  Tensor g = grad;
  if (!g.defined()) {
    ASAP_CHECK_SHAPE(root.numel() == 1, "backward without a gradient needs a one-element root, got ",
                     root.shape().str());
    g = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  }
  if (!root.requires_grad()) {
    t_tape.clear();
    return;
  }
  accumulate_grad(root.impl(), g);
  NoGradGuard no_grad;  // backward closures never record
  // Newest first: a node's output gradient is complete once every later node has run.
  std::vector<std::shared_ptr<Node>> tape;
  tape.swap(t_tape);
  std::vector<bool> needs;
  std::vector<Tensor> gin;
  // Non-leaf tensors holding a gradient that their producer has not consumed yet. Nodes are freed
  // as soon as they run, so these references keep such tensors (and their gradients) alive.
  std::unordered_map<TensorImpl*, std::shared_ptr<TensorImpl>> pending;
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    Node& node = **it;
    std::shared_ptr<TensorImpl> out = node.output.lock();
    if (!out || !out->grad) continue;
    Tensor gout(out->grad);
    out->grad.reset();
    pending.erase(out.get());  // non-leaf: frees the gradient as soon as it is consumed
    needs.assign(node.inputs.size(), false);
    bool any = false;
    for (size_t i = 0; i < node.inputs.size(); ++i) any |= (needs[i] = node.inputs[i] != nullptr);
    if (any) {
      gin.assign(node.inputs.size(), Tensor());
      {
        ASAP_NVTX_RANGE(node.name);
        node.backward(gout, needs, gin);
      }
      for (size_t i = 0; i < node.inputs.size(); ++i)
        if (needs[i] && gin[i].defined()) {
          accumulate_grad(node.inputs[i].get(), gin[i]);
          if (node.inputs[i]->grad_fn) pending.emplace(node.inputs[i].get(), node.inputs[i]);
        }
    }
    out->grad_fn.reset();
    it->reset();  // free saved tensors now, not at the end
  }
}

void clear_tape() {
  for (auto& n : t_tape) {
    if (auto out = n->output.lock()) out->grad_fn.reset();
  }
  t_tape.clear();
}

size_t tape_size() { return t_tape.size(); }

}  // namespace asap
