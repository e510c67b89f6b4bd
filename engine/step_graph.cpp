#include "engine/step_graph.h"

#include "engine/autograd.h"
#include "engine/error.h"

namespace asap {
namespace {
StepGraphOps& ops_of(DeviceType t) {
  static StepGraphOps table[2];
  return table[static_cast<int>(t)];
}
}  // namespace

void register_step_graph_ops(DeviceType t, const StepGraphOps& ops) { ops_of(t) = ops; }

bool StepGraph::supported(Device dev) { return ops_of(dev.type).capture != nullptr; }

bool StepGraph::capture(Device dev, const std::function<void()>& body, std::string* why) {
  reset();
  ASAP_CHECK(supported(dev), "step graphs are not available on ", dev.str());
  ops_ = &ops_of(dev.type);
  graph_ = ops_->capture(dev.index, body, why);
  return graph_ != nullptr;
}

void StepGraph::replay() {
  ASAP_CHECK(graph_, "StepGraph::replay: nothing captured");
  ops_->replay(graph_);
}

void StepGraph::reset() {
  if (graph_) ops_->destroy(graph_);
  graph_ = nullptr;
}

GraphedStep::Ran GraphedStep::run(Device dev, const std::string& key, bool inputs_moved,
                                  const std::function<void()>& body, const char* who) {
  if (inputs_moved || key != key_) {
    graph_.reset();
    key_ = key;
    eager_steps_ = 0;
  }
  if (graph_.valid()) {
    graph_.replay();
    return Ran::Replayed;
  }
  if (eager_steps_ < 2) {
    ++eager_steps_;
    body();
    return Ran::Eager;
  }
  std::string why;
  if (!graph_.capture(dev, body, &why)) {
    clear_tape();
    throw DeviceError(std::string(who) + ": CUDA graph capture of the step failed (" + why +
                      "); run with run.cuda_graphs: off and report it");
  }
  graph_.replay();  // the captured step itself
  return Ran::Captured;
}

void GraphedStep::reset() {
  graph_.reset();
  key_.clear();
  eager_steps_ = 0;
}

bool stage_input(const Tensor& src, Tensor& dst, Device dev) {
  bool fresh = false;
  if (!dst.defined() || dst.shape() != src.shape() || dst.dtype() != src.dtype()) {
    dst = Tensor::empty(src.shape(), src.dtype(), dev);
    fresh = true;
  }
  dst.copy_(src);
  return fresh;
}

}  // namespace asap
