// Caching device allocator. A search step allocates the same shapes every step (the execution plan
// only changes at a prune), so after the first step every request is served from the cache and
// cudaMalloc/cudaFree (which synchronise the device) leave the hot path. Blocks are rounded to size
// classes and reused only on the stream that freed them; with one compute stream, stream order
// alone makes reuse safe without events.
#include "kernels/cuda/allocator.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/storage.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/host_sync.h"

namespace asap::cuda {
namespace {


// 512 B granularity up to 1 MiB, then 8 classes per power of two (at most 12.5% waste).
size_t round_size(size_t b) {
  if (b <= 512) return 512;
  if (b <= (size_t(1) << 20)) return (b + 511) / 512 * 512;
  size_t p = size_t(1) << (63 - __builtin_clzll(b));
  size_t step = p / 8;
  return (b + step - 1) / step * step;
}

struct LiveBlock {
  size_t size;
  cudaStream_t stream;
  int pool;  // 0: the general cache; > 0: the private pool of a captured graph
};

struct DeviceState {
  std::mutex mu;
  cudaStream_t stream = nullptr;
  std::map<std::pair<cudaStream_t, size_t>, std::vector<void*>> free_blocks;
  std::unordered_map<void*, LiveBlock> live;
  size_t in_use = 0, peak = 0, cached = 0;
  // Graph pools: blocks a captured graph uses stay its own while it lives (a replay writes them),
  // so they return to the pool's free list, never to the general cache, until the pool is released.
  // General-cache size classes (per stream): blocks out and the most out at once since the last
  // mark (what trim_cache keeps). Graph pools are not counted: they live and die with their graph.
  std::map<std::pair<cudaStream_t, size_t>, std::pair<size_t, size_t>> class_use;  // {out, high}
  int capturing_pool = 0, next_pool = 1;
  std::map<int, std::map<size_t, std::vector<void*>>> pool_free;
};

DeviceState& state(int dev) {
  // Leaked on purpose: storages may be released during static destruction, after any static
  // object here would be gone; the driver frees everything at process exit.
  static DeviceState* states = new DeviceState[kMaxDevices];
  if (dev < 0 || dev >= kMaxDevices) throw DeviceError("CUDA device index out of range: " + std::to_string(dev));
  return states[dev];
}

struct DeviceGuard {
  int prev = -1;
  explicit DeviceGuard(int dev) {
    if (dev < 0) return;
    ASAP_CUDA_CHECK(cudaGetDevice(&prev));
    if (prev != dev) ASAP_CUDA_CHECK(cudaSetDevice(dev));
    else prev = -1;
  }
  ~DeviceGuard() {
    if (prev >= 0) ASAP_CUDA_WARN(cudaSetDevice(prev));
  }
};

// Caller holds s.mu.
void release_cache_locked(DeviceState& s) noexcept {
  size_t kept = 0;  // graph pools keep their blocks: a live graph replays into them
  for (auto& [pool, lists] : s.pool_free)
    for (auto& [sz, blocks] : lists) kept += sz * blocks.size();
  for (auto& kv : s.free_blocks)
    for (void* p : kv.second) ASAP_CUDA_WARN(cudaFree(p));
  s.free_blocks.clear();
  s.cached = kept;
}

cudaStream_t stream_of(int dev) {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.stream) {
    DeviceGuard g(dev);
    // Non-blocking: no implicit synchronisation with the legacy default stream, which nothing of
    // ours uses (every kernel, copy, memset and library call names this stream).
    ASAP_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  }
  return s.stream;
}

}  // namespace

int current_device() {
  int d = 0;
  ASAP_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

cudaStream_t stream() { return stream_of(current_device()); }

void* device_allocate(size_t bytes, int device_index) {
  const int dev = device_index < 0 ? current_device() : device_index;
  DeviceGuard guard(device_index);
  cudaStream_t st = stream_of(dev);
  DeviceState& s = state(dev);
  const size_t sz = round_size(bytes);
  std::lock_guard<std::mutex> lock(s.mu);
  void* p = nullptr;
  auto it = s.free_blocks.find({st, sz});
  std::vector<void*>* pool_list = s.capturing_pool ? &s.pool_free[s.capturing_pool][sz] : nullptr;
  if (pool_list && !pool_list->empty()) {
    p = pool_list->back();  // reuse inside the capture, in stream order
    pool_list->pop_back();
    s.cached -= sz;
  } else if (it != s.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    s.cached -= sz;
  } else {
    // While a graph captures, a new block joins its private pool and stays the graph's until the
    // pool is released, so the allocation is safe to make mid-capture: relax this thread's
    // capture mode around it (as PyTorch's caching allocator does).
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    if (s.capturing_pool) ASAP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    cudaError_t e = cudaMalloc(&p, sz);
    if (s.capturing_pool) ASAP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear it, then give the cache back and retry once
      release_cache_locked(s);
      e = cudaMalloc(&p, sz);
    }
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      (void)cudaGetLastError();
      throw DeviceError(detail::concat(
          "CUDA out of memory on cuda:", dev, ": asked for ", bytes, " bytes (", sz,
          " rounded), ", s.in_use, " bytes in use by tensors, ", free_b, " of ", total_b,
          " bytes free on the device. Lower `data.batch_size` (or the network width) and retry."));
    }
    if (e == cudaErrorStreamCaptureUnsupported) {
      (void)cudaGetLastError();
      throw DeviceError(detail::concat("CUDA graph capture: a new ", sz, "-byte block was needed while capturing (",
                                       s.in_use, " bytes in use); the step did not reach a steady state before it"));
    }
    ASAP_CUDA_CHECK(e);
  }
  if (!s.capturing_pool) {
    auto& [out, high] = s.class_use[{st, sz}];
    high = std::max(high, ++out);
  }
  s.live[p] = LiveBlock{sz, st, s.capturing_pool};
  s.in_use += sz;
  s.peak = std::max(s.peak, s.in_use);
  return p;
}

void device_deallocate(void* p) noexcept {
  if (!p) return;
  for (int dev = 0; dev < kMaxDevices; ++dev) {
    DeviceState& s = state(dev);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.live.find(p);
    if (it == s.live.end()) continue;
    const LiveBlock b = it->second;
    const size_t sz = b.size;
    s.live.erase(it);
    s.in_use -= sz;
    try {
      if (b.pool && s.pool_free.count(b.pool)) {
        s.pool_free[b.pool][sz].push_back(p);
      } else {
        s.free_blocks[{b.stream, sz}].push_back(p);
        auto u = s.class_use.find({b.stream, sz});  // absent for a block of a released graph pool
        if (u != s.class_use.end() && u->second.first) --u->second.first;
      }
      s.cached += sz;
    } catch (...) {
      ASAP_CUDA_WARN(cudaFree(p));
    }
    return;
  }
  std::fprintf(stderr, "asap: warning: freeing unknown device pointer %p\n", p);
}

int begin_graph_pool(int dev) {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  ASAP_CHECK(s.capturing_pool == 0, "a graph pool is already capturing on cuda:", dev);
  s.capturing_pool = s.next_pool++;
  s.pool_free[s.capturing_pool];  // exists from now on: frees of its blocks come back to it
  return s.capturing_pool;
}

void end_graph_pool(int dev) {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  s.capturing_pool = 0;
}

void release_graph_pool(int dev, int pool) noexcept {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.pool_free.find(pool);
  if (it == s.pool_free.end()) return;
  try {
    for (auto& [sz, blocks] : it->second)
      for (void* p : blocks) s.free_blocks[{s.stream, sz}].push_back(p);
  } catch (...) {
    for (auto& [sz, blocks] : it->second)
      for (void* p : blocks) {
        ASAP_CUDA_WARN(cudaFree(p));
        s.cached -= sz;
      }
  }
  s.pool_free.erase(it);
  // Blocks of the pool still held by tensors go to the general cache when freed.
  for (auto& [p, b] : s.live)
    if (b.pool == pool) b.pool = 0;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes) ASAP_CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
}
PinnedBuffer::~PinnedBuffer() {
  if (ptr_) ASAP_CUDA_WARN(cudaFreeHost(ptr_));
}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) ASAP_CUDA_WARN(cudaFreeHost(ptr_));
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: not an error for the caller
    return 0;
  }
  return n;
}

std::string device_name(int index) {
  if (index >= device_count()) return "";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    (void)cudaGetLastError();
    return "";
  }
  return prop.name;
}

size_t device_bytes_in_use(int index) noexcept {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.in_use;
}
size_t device_peak_bytes(int index) noexcept {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.peak;
}
size_t device_bytes_cached(int index) noexcept {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.cached;
}
void empty_cache(int index) noexcept {
  DeviceState& s = state(index);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.stream) {
    stats::count_sync("empty_cache");
    ASAP_CUDA_WARN(cudaStreamSynchronize(s.stream));  // counted: stats::count_sync above (no-throw path)
  }
  release_cache_locked(s);
}

namespace {

// --- AllocatorTable for DeviceType::CUDA ---
void* table_allocate(size_t bytes, int dev) { return device_allocate(bytes, dev); }
void table_deallocate(void* p, size_t, int) noexcept { device_deallocate(p); }

void table_copy(void* dst, const void* src, size_t bytes, int kind, int dev) {
  if (bytes == 0) return;
  DeviceGuard guard(dev);
  cudaStream_t st = stream_of(dev);
  switch (kind) {
    case 0: {  // h2d
      cudaPointerAttributes attr{};
      const bool pinned = cudaPointerGetAttributes(&attr, src) == cudaSuccess && attr.type == cudaMemoryTypeHost;
      (void)cudaGetLastError();
      // Pageable memory goes through the pinned staging ring (no wait, the source reusable at once).
      if (!pinned && upload_staged(dst, src, bytes, st, dev < 0 ? current_device() : dev)) break;
      copy_async(dst, src, bytes, cudaMemcpyHostToDevice, st);
      // From pinned memory the copy returns at once, so wait: the caller may reuse its host
      // buffer right after we return.
      if (pinned) sync_stream(st, "copy from pinned host memory");
      break;
    }
    case 1:  // d2h: the host reads the result right after, so this synchronises
      copy_async(dst, src, bytes, cudaMemcpyDeviceToHost, st);
      sync_stream(st, "device-to-host copy");
      break;
    case 2:
      copy_async(dst, src, bytes, cudaMemcpyDeviceToDevice, st);
      break;
    default:
      throw Error("CUDA copy: unknown kind " + std::to_string(kind));
  }
}

void table_memset_zero(void* p, size_t bytes, int dev) {
  if (bytes == 0) return;
  DeviceGuard guard(dev);
  ASAP_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_of(dev)));
}

void table_sync(int dev) {
  DeviceGuard guard(dev);
  sync_stream(stream_of(dev), "synchronize");
}

size_t table_in_use(int dev) { return device_bytes_in_use(dev); }
size_t table_peak(int dev) { return device_peak_bytes(dev); }
size_t table_cached(int dev) { return device_bytes_cached(dev); }

void table_mark_cache(int dev) {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& [key, use] : s.class_use) use.second = use.first;
}

// cudaFree waits for the device; a trim runs at a log point after a re-plan, never inside a step.
size_t table_trim_cache(int dev) {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  size_t freed = 0;
  for (auto& [key, blocks] : s.free_blocks) {
    auto u = s.class_use.find(key);
    const size_t keep = u == s.class_use.end() ? 0 : u->second.second - u->second.first;
    while (blocks.size() > keep) {
      ASAP_CUDA_WARN(cudaFree(blocks.back()));
      blocks.pop_back();
      freed += key.second;
    }
  }
  if (freed) stats::count_sync("cache trim (cudaFree)");
  s.cached -= freed;
  return freed;
}

void table_reset_peak(int dev) {
  DeviceState& s = state(dev);
  std::lock_guard<std::mutex> lock(s.mu);
  s.peak = s.in_use;
}

const bool registered = [] {
  AllocatorTable t;
  t.allocate = table_allocate;
  t.deallocate = table_deallocate;
  t.copy = table_copy;
  t.memset_zero = table_memset_zero;
  t.synchronize = table_sync;
  t.bytes_in_use = table_in_use;
  t.peak_bytes = table_peak;
  t.reset_peak = table_reset_peak;
  t.bytes_cached = table_cached;
  t.mark_cache = table_mark_cache;
  t.trim_cache = table_trim_cache;
  register_allocator_table(DeviceType::CUDA, t);
  return true;
}();

}  // namespace
}  // namespace asap::cuda
