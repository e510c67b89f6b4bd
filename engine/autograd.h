// Reverse-mode autograd over a tape. Every differentiable op appends one Node (one output, any
// number of inputs). backward() walks the tape newest-first, hands each node the gradient of its
// output, accumulates input gradients, keeps gradients only on leaves (parameters) and clears the
// tape, which frees the graph. Fused ops (separable block, mixed-op sum) are single nodes.
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "engine/inline_function.h"
#include "engine/tensor.h"

namespace asap {

// gin is pre-sized to the node's inputs; fill gin[i] only where needs[i] is true. Closures of
// up to 64 bytes (four captured Tensors) are stored in the node without a heap allocation.
using BackwardFn =
    InlineFunction<void(const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin), 64>;

// Nodes come from a per-thread free list (engine/pool_allocator.h): a step records the same number
// of nodes every time, so after the first step recording one allocates nothing from malloc.
struct Node {
  const char* name = "";
  std::vector<std::shared_ptr<TensorImpl>> inputs;  // null where the input needs no gradient
  std::weak_ptr<TensorImpl> output;
  BackwardFn backward;
};

bool grad_enabled();

// Disables recording in its scope (evaluation, optimizer updates, BN running-stat updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad is enabled and any input requires grad: the op must then call record().
bool needs_record(std::initializer_list<const Tensor*> inputs);
bool needs_record(const std::vector<Tensor>& inputs);

// Appends a node producing `out` (marks it requires_grad) when needs_record(inputs). The braced
// form (`record("relu", y, {x}, ...)`) builds no temporary vector.
void record(const char* name, Tensor& out, std::initializer_list<Tensor> inputs, BackwardFn fn);
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

// Runs backward from `root` (a 0-d or 1-element tensor unless `grad` is given), accumulating
// into .grad() of leaves that require grad; then clears the tape.
void backward(const Tensor& root, const Tensor& grad = Tensor());

void clear_tape();        // drop recorded nodes without running backward
size_t tape_size();       // number of recorded nodes (tests: dead ops leave no node)

// Accumulates g into t.grad (allocating on first use). Used by backward and by tests.
void accumulate_grad(TensorImpl* t, const Tensor& g);

}  // namespace asap
