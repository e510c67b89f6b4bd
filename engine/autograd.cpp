#include "engine/autograd.h"

#include "engine/kernel_table.h"
#include "engine/nvtx.h"
#include "engine/pool_allocator.h"

namespace asap {
namespace {
thread_local bool t_grad_enabled = true;
thread_local std::vector<std::shared_ptr<Node>> t_tape;

template <typename Range>
bool any_requires_grad(const Range& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

template <typename Range>
void record_node(const char* name, Tensor& out, const Range& inputs, BackwardFn&& fn) {
  if (!any_requires_grad(inputs)) return;
  std::shared_ptr<Node> node = make_pooled<Node>();
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

bool needs_record(const std::vector<Tensor>& inputs) { return any_requires_grad(inputs); }

void record(const char* name, Tensor& out, std::initializer_list<Tensor> inputs, BackwardFn fn) {
  record_node(name, out, inputs, std::move(fn));
}
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  record_node(name, out, inputs, std::move(fn));
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

// The running backward's two tables, found through TensorImpl::slots (a field read, not a hash
// lookup per gradient): the deferred sums above, and the non-leaf tensors that hold a gradient
// their producer has not consumed yet (nodes are freed as soon as they run, so these references
// keep such tensors and their gradients alive). Slots are recycled in a free list; the
// destructor clears every index still set, so an exception leaves no stale slot on a tensor.
class BackwardTables {
 public:
  BackwardTables() = default;
  BackwardTables(const BackwardTables&) = delete;
  BackwardTables& operator=(const BackwardTables&) = delete;
  ~BackwardTables() {
    for (Deferred& d : deferred_)
      if (d.target) d.target->slots.deferred = -1;
    for (auto& h : held_)
      if (h) h->slots.held = -1;
  }

  // Adds g to t's gradient: the first gradient is owned (or cloned), later ones wait.
  void add(const std::shared_ptr<TensorImpl>& t, const Tensor& g) {
    if (!t->grad) {
      accumulate_grad(t.get(), g);
      return;
    }
    ASAP_CHECK_SHAPE(g.shape() == t->shape, "gradient shape ", g.shape().str(), " does not match tensor ",
                     t->shape.str());
    if (t->slots.deferred < 0) {
      t->slots.deferred = take_slot(deferred_, free_deferred_);
      deferred_[t->slots.deferred].target = t;
    }
    Deferred& d = deferred_[t->slots.deferred];
    d.terms.push_back(g.contiguous());
    if (d.terms.size() == kMaxDeferred) flush(t.get());
  }

  // Adds what waits for t (before its gradient is read).
  void flush(TensorImpl* t) {
    const int32_t k = t->slots.deferred;
    if (k < 0) return;
    Deferred& d = deferred_[k];
    Tensor acc(t->grad);
    ASAP_KERNEL(acc.device(), accumulate_n)(acc, d.terms);
    d.terms.clear();  // keeps the capacity for the slot's next tensor
    t->slots.deferred = -1;
    d.target.reset();
    free_deferred_.push_back(k);
  }

  // Leaves (and tensors whose producer was not on this tape), in slot order.
  void flush_all() {
    for (Deferred& d : deferred_)
      if (d.target) flush(d.target.get());
  }

  void hold(const std::shared_ptr<TensorImpl>& t) {
    if (t->slots.held >= 0) return;
    t->slots.held = take_slot(held_, free_held_);
    held_[t->slots.held] = t;
  }
  void release(TensorImpl* t) {
    const int32_t k = t->slots.held;
    if (k < 0) return;
    t->slots.held = -1;
    free_held_.push_back(k);
    held_[k].reset();  // last: may free t
  }

 private:
  struct Deferred {
    std::shared_ptr<TensorImpl> target;  // keeps the tensor alive until its sum is added
    std::vector<Tensor> terms;
  };

  template <typename V>
  static int32_t take_slot(V& table, std::vector<int32_t>& free) {
    if (!free.empty()) {
      const int32_t k = free.back();
      free.pop_back();
      return k;
    }
    table.emplace_back();
    return static_cast<int32_t>(table.size() - 1);
  }

  std::vector<Deferred> deferred_;
  std::vector<int32_t> free_deferred_;
  std::vector<std::shared_ptr<TensorImpl>> held_;
  std::vector<int32_t> free_held_;
};

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
  BackwardTables tables;
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    Node& node = **it;
    std::shared_ptr<TensorImpl> out = node.output.lock();
    if (out) tables.flush(out.get());
    if (!out || !out->grad) continue;
    Tensor gout(out->grad);
    out->grad.reset();
    tables.release(out.get());  // non-leaf: frees the gradient as soon as it is consumed
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
          tables.add(node.inputs[i], gin[i]);
          if (node.inputs[i]->grad_fn) tables.hold(node.inputs[i]);
        }
    }
    out->grad_fn.reset();
    it->reset();  // free saved tensors now, not at the end
  }
  tables.flush_all();
  // Hand the emptied tape's capacity back, so the next step records without regrowing it.
  tape.clear();
  if (t_tape.empty()) t_tape.swap(tape);
}

void clear_tape() {
  for (auto& n : t_tape) {
    if (auto out = n->output.lock()) out->grad_fn.reset();
  }
  t_tape.clear();
}

size_t tape_size() { return t_tape.size(); }

}  // namespace asap
