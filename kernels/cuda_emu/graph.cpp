// Stream capture and CUDA graphs. While a stream captures, work issued to it (kernels, async
// copies and memsets, event records, cuBLAS calls) is recorded as nodes holding copies of their
// arguments instead of running; cudaGraphLaunch replays the nodes in order as one host launch.
// As in cudaStreamCaptureModeGlobal, a synchronising or allocating call (cudaMalloc, cudaMemcpy,
// any synchronize) while a capture is active fails with cudaErrorStreamCaptureUnsupported and
// invalidates the capture; work for the legacy default stream during a capture is a fault.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/cuda_emu/internal.h"

struct GraphNode {
  std::string what;
  bool kernel = false;
  std::function<void()> run;
};
struct CUgraph_st {
  std::vector<GraphNode> nodes;
};
struct CUgraphExec_st {
  std::vector<GraphNode> nodes;
  uint64_t kernel_nodes = 0;
};

namespace cuda_emu::detail {
namespace {

struct Capture {
  CUgraph_st* graph = nullptr;
  bool invalidated = false;
  std::string why;
};

struct CaptureState {
  std::mutex mu;
  std::map<cudaStream_t, Capture> active;
};

CaptureState& cap() {
  static CaptureState* c = new CaptureState();
  return *c;
}

}  // namespace

bool capture_if_active(cudaStream_t s, const char* what, std::function<void()> node) {
  CaptureState& c = cap();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.active.empty()) return false;
  auto it = c.active.find(s);
  if (it == c.active.end()) {
    if (!s)
      fault(std::string(what) + " on the legacy default stream while a stream is capturing "
            "(cudaErrorStreamCaptureImplicit on a GPU)");
    return false;
  }
  if (!it->second.invalidated) {
    const bool kernel = std::string(what) == "kernel launch";
    it->second.graph->nodes.push_back(GraphNode{what, kernel, std::move(node)});
  }
  return true;
}

thread_local cudaStreamCaptureMode thread_mode = cudaStreamCaptureModeGlobal;

cudaError_t capture_forbids(const char* what) {
  if (thread_mode == cudaStreamCaptureModeRelaxed) return cudaSuccess;
  CaptureState& c = cap();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.active.empty()) return cudaSuccess;
  for (auto& [s, capture] : c.active) {
    if (!capture.invalidated) capture.why = what;
    capture.invalidated = true;
  }
  return cudaErrorStreamCaptureUnsupported;
}

}  // namespace cuda_emu::detail

using cuda_emu::detail::cap;

cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  if (!mode) return cudaErrorInvalidValue;
  std::swap(*mode, cuda_emu::detail::thread_mode);
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (!stream) {
    cuda_emu::detail::set_last_error(cudaErrorStreamCaptureUnsupported);
    return cudaErrorStreamCaptureUnsupported;  // the legacy stream cannot be captured
  }
  if (!cuda_emu::detail::valid_stream(stream)) {
    cuda_emu::detail::set_last_error(cudaErrorInvalidResourceHandle);
    return cudaErrorInvalidResourceHandle;
  }
  auto& c = cap();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.active.count(stream)) {
    cuda_emu::detail::set_last_error(cudaErrorIllegalState);
    return cudaErrorIllegalState;
  }
  c.active[stream] = cuda_emu::detail::Capture{new CUgraph_st(), false, ""};
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!graph) return cudaErrorInvalidValue;
  *graph = nullptr;
  auto& c = cap();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.active.find(stream);
  if (it == c.active.end()) {
    cuda_emu::detail::set_last_error(cudaErrorStreamCaptureUnmatched);
    return cudaErrorStreamCaptureUnmatched;
  }
  cuda_emu::detail::Capture capture = it->second;
  c.active.erase(it);
  if (capture.invalidated) {
    delete capture.graph;
    cuda_emu::detail::set_last_error(cudaErrorStreamCaptureInvalidated);
    return cudaErrorStreamCaptureInvalidated;
  }
  *graph = capture.graph;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!status) return cudaErrorInvalidValue;
  auto& c = cap();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.active.find(stream);
  *status = it == c.active.end()      ? cudaStreamCaptureStatusNone
            : it->second.invalidated ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!exec || !graph) return cudaErrorInvalidValue;
  auto* e = new CUgraphExec_st();
  e->nodes = graph->nodes;
  for (const GraphNode& n : e->nodes) e->kernel_nodes += n.kernel;
  *exec = e;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return cudaErrorInvalidValue;
  if (!cuda_emu::detail::valid_stream(stream)) return cudaErrorInvalidResourceHandle;
  {
    auto& c = cap();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.active.count(stream)) return cudaErrorStreamCaptureUnsupported;  // nested graphs are not emulated
  }
  cuda_emu::detail::count_graph(exec->kernel_nodes);
  for (const GraphNode& n : exec->nodes) n.run();
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
