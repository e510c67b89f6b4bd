// Kernel launch: the checks the driver makes before a kernel runs, then run or record.
#include <sstream>

#include "engine/error.h"
#include "kernels/cuda_emu/internal.h"

namespace cuda_emu {
namespace {

constexpr unsigned kMaxThreads = 1024;
constexpr size_t kMaxDynamicShared = 48 * 1024;  // without cudaFuncAttributeMaxDynamicSharedMemorySize

// The configuration error CUDA reports for this launch, or cudaSuccess.
cudaError_t check_config(dim3 grid, dim3 block, size_t shmem) {
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0)
    return cudaErrorInvalidConfiguration;
  if (block.x > 1024 || block.y > 1024 || block.z > 64) return cudaErrorInvalidConfiguration;
  if (uint64_t(block.x) * block.y * block.z > kMaxThreads) return cudaErrorInvalidConfiguration;
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) return cudaErrorInvalidConfiguration;
  if (shmem > kMaxDynamicShared) return cudaErrorInvalidValue;
  return cudaSuccess;
}

std::string site_str(const LaunchSite& s) {
  std::ostringstream os;
  os << "kernel '" << s.kernel << "' launched at " << s.file << ":" << s.line;
  return os.str();
}

}  // namespace

cudaError_t launch(const LaunchSite& site, dim3 grid, dim3 block, size_t dynamic_shmem, cudaStream_t stream,
                   std::function<void()> thread_body, const PointerArg* ptrs, int nptrs) {
  if (!detail::valid_stream(stream)) {
    detail::set_last_error(cudaErrorInvalidResourceHandle);
    return cudaErrorInvalidResourceHandle;
  }
  if (const cudaError_t e = check_config(grid, block, dynamic_shmem); e != cudaSuccess) {
    detail::set_last_error(e);  // read by ASAP_CUDA_LAUNCH_CHECK, which names the op
    return e;
  }
  // Device code dereferences its pointer arguments: each must lie in memory the device can reach
  // (a cudaMalloc block, or pinned host memory, which is mapped under unified addressing).
  for (int i = 0; i < nptrs; ++i) {
    const void* p = ptrs[i].ptr;
    if (!p) continue;
    if (detail::find_region(p, 0).kind == detail::MemKind::None)
      detail::fault(site_str(site) + ": argument " + std::to_string(ptrs[i].index) + " (" +
                    detail::describe(p) + ") is not device memory; on a GPU this reads host addresses");
  }
  detail::count_launch(site.kernel);
  detail::Grid g{site.kernel, site.file, site.line, grid, block, dynamic_shmem, std::move(thread_body)};
  // The pointers a recorded launch holds must still be live when the graph replays.
  std::vector<const void*> held;
  for (int i = 0; i < nptrs; ++i)
    if (ptrs[i].ptr) held.push_back(ptrs[i].ptr);
  auto run = [g, held, name = site_str(site)] {
    for (const void* p : held)
      if (detail::find_region(p, 0).kind == detail::MemKind::None)
        detail::fault(name + ": a graph replays it with a pointer argument that is no longer allocated (" +
                      detail::describe(p) + ")");
    detail::run_grid(g);
  };
  if (detail::capture_if_active(stream, "kernel launch", run)) return cudaSuccess;
  detail::run_grid(g);
  return cudaSuccess;
}

}  // namespace cuda_emu
