#include "engine/step_graph.h"

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

}  // namespace asap
