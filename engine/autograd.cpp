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

namespace {

// Gradient contributions to a tensor that already holds a gradient are not added one axpy at a
// time: they wait in a list and are added by one accumulate_n call (one CUDA launch per 16) just
// before the gradient is read (its producer's backward, or the end of backward for leaves). The
// list is added in arrival order, one term at a time, so the result has the bits of successive
// axpys. A DARTS state feeds ~4 edges x 7 ops: this cut ~93 accumulate launches per cell and
// pass to ~8.
constexpr size_t kMaxDeferred = 16;

struct Deferred {
  std::shared_ptr<TensorImpl> target;  // keeps the tensor alive until its sum is added
  std::vector<Tensor> terms;
};

void flush_deferred(std::unordered_map<TensorImpl*, Deferred>& deferred, TensorImpl* t) {
  auto it = deferred.find(t);
  if (it == deferred.end()) return;
  Tensor acc(t->grad);
  ASAP_KERNEL(acc.device(), accumulate_n)(acc, it->second.terms);
  deferred.erase(it);
}

void add_grad_deferred(std::unordered_map<TensorImpl*, Deferred>& deferred, const std::shared_ptr<TensorImpl>& t,
                       const Tensor& g) {
  if (!t->grad) {
    accumulate_grad(t.get(), g);  // the first gradient is owned (or cloned), as before
    return;
  }
  ASAP_CHECK_SHAPE(g.shape() == t->shape, "gradient shape ", g.shape().str(), " does not match tensor ",
                   t->shape.str());
  Deferred& d = deferred[t.get()];
  if (!d.target) d.target = t;
  d.terms.push_back(g.contiguous());
  if (d.terms.size() == kMaxDeferred) flush_deferred(deferred, t.get());
}

}  // namespace

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
  std::unordered_map<TensorImpl*, Deferred> deferred;
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    Node& node = **it;
    std::shared_ptr<TensorImpl> out = node.output.lock();
    if (out) flush_deferred(deferred, out.get());
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
          add_grad_deferred(deferred, node.inputs[i], gin[i]);
          if (node.inputs[i]->grad_fn) pending.emplace(node.inputs[i].get(), node.inputs[i]);
        }
    }
    out->grad_fn.reset();
    it->reset();  // free saved tensors now, not at the end
  }
  // Leaves (and tensors whose producer was not on this tape): add what is still waiting.
  while (!deferred.empty()) flush_deferred(deferred, deferred.begin()->first);
}

void clear_tape() {
  for (auto& n : t_tape) {
    if (auto out = n->output.lock()) out->grad_fn.reset();
  }
  t_tape.clear();
}

size_t tape_size() { return t_tape.size(); }

}  // namespace asap
