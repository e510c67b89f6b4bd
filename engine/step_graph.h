// A training step captured once and replayed (CUDA graphs), behind a device-neutral handle so the
// search and train loops compile without CUDA. A backend that can capture registers its
// operations (kernels/cuda/step_graph.cpp); elsewhere make() returns an empty handle and the loop
// runs the step eagerly. What a captured step may and may not do: docs/cuda.md, "CUDA graphs".
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace asap {

struct StepGraphOps {
  // Runs `body` with the device's compute stream capturing and the caching allocator serving a
  // private pool. Returns an opaque graph, or nullptr with *why set when the capture failed (an
  // unsupported call inside it); nothing of `body` ran on the device in either case.
  void* (*capture)(int device, const std::function<void()>& body, std::string* why) = nullptr;
  void (*replay)(void* graph) = nullptr;  // one cudaGraphLaunch on the compute stream
  void (*destroy)(void* graph) = nullptr; // also returns the private pool to the cache
};
void register_step_graph_ops(DeviceType t, const StepGraphOps& ops);

class StepGraph {
 public:
  StepGraph() = default;
  ~StepGraph() { reset(); }
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  static bool supported(Device dev);
  // Captures `body` on dev; false (graph empty, *why set) when the capture failed.
  bool capture(Device dev, const std::function<void()>& body, std::string* why);
  void replay();
  void reset();
  bool valid() const { return graph_ != nullptr; }

 private:
  const StepGraphOps* ops_ = nullptr;
  void* graph_ = nullptr;
};

}  // namespace asap
