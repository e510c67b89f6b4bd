// Counters of what the CUDA backend asks of the device, kept in the same code on a GPU and in the
// emulator: kernel launches per kernel (counted per ASAP_LAUNCH site), host synchronisations by
// reason (every stream/device sync and blocking device-to-host copy goes through host_sync.h),
// bytes copied each way, cuBLAS calls and graph launches. Counts are exact, so a launch or sync
// budget proven in the emulator holds on the hardware. Plain C++: host tools include it freely.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

namespace asap::cuda::stats {

class LaunchSite {
 public:
  LaunchSite(const char* kernel, const char* file, int line);  // registers itself (static storage only)
  void hit() { count_.fetch_add(1, std::memory_order_relaxed); }
  const char* kernel() const { return kernel_; }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  void reset() { count_.store(0, std::memory_order_relaxed); }
  LaunchSite* next = nullptr;

 private:
  const char* kernel_;
  const char* file_;
  int line_;
  std::atomic<uint64_t> count_{0};
};

enum class Copy { HostToDevice, DeviceToHost, DeviceToDevice };

void count_sync(const char* reason);
void count_copy(Copy kind, uint64_t bytes);
void count_blas(const char* routine);
// An upload from pageable host memory that went through the pinned staging ring (allocator.cu);
// also counted by count_copy.
void count_staged(uint64_t bytes);
// One cudaGraphLaunch replaying `kernel_nodes` kernels (counted when the graph was captured).
void count_graph_launch(uint64_t kernel_nodes = 0);

struct Snapshot {
  uint64_t launches = 0;                      // kernel launches, all kernels
  std::map<std::string, uint64_t> launches_by_kernel;
  uint64_t host_syncs = 0;
  std::map<std::string, uint64_t> syncs_by_reason;
  uint64_t bytes_h2d = 0, bytes_d2h = 0, bytes_d2d = 0;
  uint64_t blas_calls = 0;
  uint64_t graph_launches = 0;
  uint64_t graph_kernel_nodes = 0;  // kernels run by those graph launches
  uint64_t bytes_h2d_staged = 0;    // of bytes_h2d: from pageable memory through pinned staging
};

Snapshot snapshot();
void reset();
// after - before, field by field (maps: per key; keys with 0 dropped).
Snapshot diff(const Snapshot& after, const Snapshot& before);

}  // namespace asap::cuda::stats
