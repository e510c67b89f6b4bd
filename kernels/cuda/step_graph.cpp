// CUDA graphs for whole training steps (engine/step_graph.h). The step's host code runs once with
// the compute stream capturing: every kernel, cuBLAS call, async copy and memset becomes a node,
// nothing runs, and tensors allocated meanwhile come from a private allocator pool whose blocks
// the graph keeps for its lifetime (a replay writes into them). One cudaGraphLaunch then replays
// the step. A synchronising or allocating call inside the body invalidates the capture; the
// caller falls back to eager steps and says why.
#include <cuda_runtime.h>

#include <string>

#include "engine/step_graph.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/stats.h"

namespace asap::cuda {
namespace {

struct Graph {
  int device = 0;
  int pool = 0;
  cudaGraphExec_t exec = nullptr;
  uint64_t kernels = 0;  // kernel launches recorded by the capture (stats)
};

void* capture(int device, const std::function<void()>& body, std::string* why) {
  const int dev = device < 0 ? current_device() : device;
  cudaStream_t st = stream();
  auto* g = new Graph();
  g->device = dev;
  g->pool = begin_graph_pool(dev);
  const stats::Snapshot before = stats::snapshot();
  cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
  std::string failure;
  if (e == cudaSuccess) {
    try {
      body();
    } catch (const std::exception& ex) {
      failure = ex.what();
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(st, &graph);
    if (failure.empty() && end != cudaSuccess) failure = std::string("capture invalidated: ") + cudaGetErrorString(end);
    if (failure.empty()) {
      const cudaError_t inst = cudaGraphInstantiate(&g->exec, graph, 0);
      if (inst != cudaSuccess) failure = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(inst);
    }
    if (graph) ASAP_CUDA_WARN(cudaGraphDestroy(graph));
  } else {
    failure = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e);
  }
  (void)cudaGetLastError();
  end_graph_pool(dev);
  g->kernels = stats::diff(stats::snapshot(), before).launches;
  if (!failure.empty()) {
    if (why) *why = failure;
    release_graph_pool(dev, g->pool);
    delete g;
    return nullptr;
  }
  return g;
}

void replay(void* graph) {
  auto* g = static_cast<Graph*>(graph);
  stats::count_graph_launch(g->kernels);
  ASAP_CUDA_CHECK(cudaGraphLaunch(g->exec, stream()));
}

void destroy(void* graph) {
  auto* g = static_cast<Graph*>(graph);
  if (g->exec) ASAP_CUDA_WARN(cudaGraphExecDestroy(g->exec));
  // Stream order: the pool's blocks may be reused by later work only after the last replay, which
  // the single compute stream guarantees.
  release_graph_pool(g->device, g->pool);
  delete g;
}

const bool registered = [] {
  StepGraphOps ops;
  ops.capture = capture;
  ops.replay = replay;
  ops.destroy = destroy;
  register_step_graph_ops(DeviceType::CUDA, ops);
  return true;
}();

}  // namespace
}  // namespace asap::cuda
