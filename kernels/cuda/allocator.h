// Device memory: a caching allocator behind the CUDA AllocatorTable, a move-only RAII device buffer
// for kernel scratch, pinned host buffers, and the one compute stream every kernel launches on.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "kernels/cuda/device.h"

namespace asap::cuda {

// The compute stream of the current device. Everything (kernels, cuBLAS, cuDNN, copies) is ordered
// on it, which is what makes reusing a freed block without events safe.
cudaStream_t stream();
int current_device();

// Caching allocator entry points (also reachable through allocator_table(DeviceType::CUDA)).
// device_allocate throws asap::DeviceError on out-of-memory after emptying the cache once.
void* device_allocate(size_t bytes, int device_index = -1);
void device_deallocate(void* p) noexcept;

// Private pools for captured graphs (kernels/cuda/step_graph.cpp): between begin and end, every
// allocation on `dev` belongs to a new pool; its blocks, when freed, return to the pool (reused
// within the capture in stream order) and stay out of the general cache until release.
int begin_graph_pool(int dev);
void end_graph_pool(int dev);
void release_graph_pool(int dev, int pool) noexcept;

// Move-only device allocation from the caching allocator (scratch: workspaces, partial sums).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : ptr_(bytes ? device_allocate(bytes) : nullptr), bytes_(bytes) {}
  ~DeviceBuffer() { device_deallocate(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      device_deallocate(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory: asynchronous copies and full PCIe/NVLink bandwidth.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Host-to-device copy of pageable memory through a ring of pinned staging buffers
// (upload_staging.cu): returns at once, the source reusable. False (nothing done) when the copy
// is too large for the ring or the stream is capturing; the caller copies directly then.
bool upload_staged(void* dst, const void* src, size_t bytes, cudaStream_t st, int dev);

}  // namespace asap::cuda
