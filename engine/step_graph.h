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

// The policy both training loops (search and train stage) follow. A step is identified by a key
// naming everything it depends on besides device memory (the plan, the batch shapes, which halves
// it runs). The first two calls with a key run eagerly, so caches, lazily created optimizer state,
// chunk tables and blocks held across steps reach their steady state: a capture must neither
// allocate new device memory nor read the device. The third call is captured and its graph
// replayed (that replay is the step itself); later calls replay until the key changes.
class GraphedStep {
 public:
  enum class Ran { Eager, Captured, Replayed };
  // inputs_moved: a static input was reallocated (its address is baked into the graph).
  // A failed capture throws DeviceError naming `who`: nothing of body ran on the device but its
  // host bookkeeping did, so there is no clean way to go on eagerly; it is a bug in a step's code.
  Ran run(Device dev, const std::string& key, bool inputs_moved, const std::function<void()>& body,
          const char* who);
  void reset();
  bool active() const { return graph_.valid(); }

 private:
  StepGraph graph_;
  std::string key_;
  int eager_steps_ = 0;
};

// Copies a batch tensor into a static buffer on dev (one asynchronous copy on the compute stream,
// ordered before the replay); reallocates, and returns true, only when the shape or dtype changed.
bool stage_input(const Tensor& src, Tensor& dst, Device dev);

}  // namespace asap
