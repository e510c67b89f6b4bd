// Storage: one allocation on one device, shared by tensors and views through shared_ptr (RAII).
// Allocation and copies go through the per-device AllocatorTable, so engine code never calls
// cudaMalloc/cudaMemcpy directly and a CPU-only build never needs the CUDA toolkit.
#pragma once
#include <cstddef>
#include <memory>

#include "engine/dtype.h"

namespace asap {

struct AllocatorTable {
  void* (*allocate)(size_t bytes, int device_index) = nullptr;
  void (*deallocate)(void* ptr, size_t bytes, int device_index) noexcept = nullptr;
  // Copies between host and this device, or within this device. kind: 0 = h2d, 1 = d2h, 2 = d2d.
  void (*copy)(void* dst, const void* src, size_t bytes, int kind, int device_index) = nullptr;
  void (*memset_zero)(void* ptr, size_t bytes, int device_index) = nullptr;
  void (*synchronize)(int device_index) = nullptr;
  size_t (*bytes_in_use)(int device_index) = nullptr;
  size_t (*peak_bytes)(int device_index) = nullptr;
  void (*reset_peak)(int device_index) = nullptr;
  // The caching allocator's freed blocks kept for reuse (bytes), and their trimming: mark_cache
  // starts counting, per size class, the most blocks held at once; trim_cache then frees every
  // cached block beyond that (what the workload since the mark did not need) and returns the bytes.
  size_t (*bytes_cached)(int device_index) = nullptr;
  void (*mark_cache)(int device_index) = nullptr;
  size_t (*trim_cache)(int device_index) = nullptr;
};

// The table for a device type; throws when the backend is not compiled in.
const AllocatorTable& allocator_table(DeviceType t);
// Backends install their table at static-initialisation time.
void register_allocator_table(DeviceType t, const AllocatorTable& table);
bool backend_available(DeviceType t);

class Storage {
 public:
  Storage(size_t bytes, Device dev);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return dev_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Device dev_;
};

// Host memory accounting (current and peak bytes held by CPU storages).
size_t cpu_bytes_in_use();
size_t cpu_peak_bytes();
void cpu_reset_peak();

// Bytes the device's allocator holds: in use by tensors plus cached for reuse.
size_t reserved_bytes(Device dev);
// After a change of workload (a search re-plan): mark, run one step of the new workload, trim.
// The cache then holds only what that step needed, so memory follows a shrinking plan.
void mark_memory_cache(Device dev);
size_t trim_memory_cache(Device dev);

}  // namespace asap
