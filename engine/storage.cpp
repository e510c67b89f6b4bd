// Storage and the CPU allocator. The CPU allocator caches freed blocks by size: a search step
// allocates the same shapes every time (the execution plan is static between prunes), so after
// the first step nothing reaches malloc, and large blocks avoid mmap/munmap page-fault churn.
#include "engine/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "engine/error.h"

namespace asap {
namespace {

struct TableSlot {
  AllocatorTable table;
  bool set = false;
};
TableSlot& slot(DeviceType t) {
  static TableSlot slots[2];
  return slots[static_cast<int>(t)];
}

// --- CPU caching allocator ---
constexpr size_t kAlign = 64;
std::atomic<size_t> g_cpu_in_use{0};
std::atomic<size_t> g_cpu_peak{0};

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t unit = bytes < (1u << 16) ? kAlign : 4096;
  return (bytes + unit - 1) / unit * unit;
}

// Per size class: the cached blocks, and how many of the class are out (held by storages) and the
// most that were out at once since the last mark: what a trim keeps.
struct SizeClass {
  std::vector<void*> free;
  size_t out = 0, high = 0;
};
// Sizes below 64 KiB (rounded to 64 bytes: most tensors of a step) index a flat table; larger
// ones a hash map. The table lookup took 7 % of a small op's host cost as a hash lookup.
constexpr size_t kSmallLimit = 1u << 16;
struct CpuCache {
  std::mutex mu;
  std::vector<SizeClass> small = std::vector<SizeClass>(kSmallLimit / kAlign);
  std::unordered_map<size_t, SizeClass> large;
  size_t cached = 0;
  SizeClass& of(size_t sz) { return sz < kSmallLimit ? small[sz / kAlign - 1] : large[sz]; }
  template <typename F>
  void for_each(F&& f) {  // f(size, class)
    for (size_t i = 0; i < small.size(); ++i) f((i + 1) * kAlign, small[i]);
    for (auto& kv : large) f(kv.first, kv.second);
  }
  ~CpuCache() {
    for_each([](size_t, SizeClass& k) {
      for (void* p : k.free) std::free(p);
    });
  }
};
CpuCache& cpu_cache() {
  static CpuCache* c = new CpuCache();  // leaked on purpose: storages may die during static teardown
  return *c;
}

void* cpu_allocate(size_t bytes, int) {
  const size_t sz = round_size(bytes);
  void* p = nullptr;
  {
    CpuCache& c = cpu_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    SizeClass& k = c.of(sz);
    if (!k.free.empty()) {
      p = k.free.back();
      k.free.pop_back();
      c.cached -= sz;
    }
    k.high = std::max(k.high, ++k.out);
  }
  if (!p) {
    p = std::aligned_alloc(kAlign, sz);
    if (!p) {
      CpuCache& c = cpu_cache();
      std::lock_guard<std::mutex> lock(c.mu);
      --c.of(sz).out;
      throw Error("out of host memory allocating " + std::to_string(sz) + " bytes");
    }
  }
  size_t now = g_cpu_in_use.fetch_add(sz) + sz;
  size_t peak = g_cpu_peak.load();
  while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void cpu_deallocate(void* p, size_t bytes, int) noexcept {
  if (!p) return;
  const size_t sz = round_size(bytes);
  g_cpu_in_use.fetch_sub(sz);
  CpuCache& c = cpu_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  try {
    SizeClass& k = c.of(sz);
    if (k.out) --k.out;
    k.free.push_back(p);
    c.cached += sz;
  } catch (...) {
    std::free(p);
  }
}

void cpu_mark_cache(int) {
  CpuCache& c = cpu_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.for_each([](size_t, SizeClass& k) { k.high = k.out; });
}

size_t cpu_trim_cache(int) {
  CpuCache& c = cpu_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  size_t freed = 0;
  c.for_each([&freed](size_t sz, SizeClass& k) {
    const size_t keep = k.high - k.out;  // high >= out always
    while (k.free.size() > keep) {
      std::free(k.free.back());
      k.free.pop_back();
      freed += sz;
    }
  });
  c.cached -= freed;
#if defined(__GLIBC__)
  // glibc keeps what free() returns in its heap: after the first large free it raises its mmap
  // threshold, so later large blocks come from the heap and never go back to the OS. Without
  // this the resident set stayed at the dense plan's size for the whole search.
  if (freed > 0) malloc_trim(0);
#endif
  return freed;
}

size_t cpu_cached_fn(int) {
  CpuCache& c = cpu_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

void cpu_copy(void* dst, const void* src, size_t bytes, int, int) { std::memcpy(dst, src, bytes); }
void cpu_memset_zero(void* p, size_t bytes, int) { std::memset(p, 0, bytes); }
void cpu_sync(int) {}
size_t cpu_in_use_fn(int) { return g_cpu_in_use.load(); }
size_t cpu_peak_fn(int) { return g_cpu_peak.load(); }
void cpu_reset_peak_fn(int) { g_cpu_peak.store(g_cpu_in_use.load()); }

const bool cpu_registered = [] {
  AllocatorTable t;
  t.allocate = cpu_allocate;
  t.deallocate = cpu_deallocate;
  t.copy = cpu_copy;
  t.memset_zero = cpu_memset_zero;
  t.synchronize = cpu_sync;
  t.bytes_in_use = cpu_in_use_fn;
  t.peak_bytes = cpu_peak_fn;
  t.reset_peak = cpu_reset_peak_fn;
  t.bytes_cached = cpu_cached_fn;
  t.mark_cache = cpu_mark_cache;
  t.trim_cache = cpu_trim_cache;
  register_allocator_table(DeviceType::CPU, t);
  return true;
}();

}  // namespace

void register_allocator_table(DeviceType t, const AllocatorTable& table) {
  slot(t).table = table;
  slot(t).set = true;
}

bool backend_available(DeviceType t) { return slot(t).set; }

const AllocatorTable& allocator_table(DeviceType t) {
  if (!slot(t).set)
    throw Error(std::string("device backend '") + (t == DeviceType::CPU ? "cpu" : "cuda") +
                "' is not compiled into this build (configure with -DASAP_CUDA=ON)");
  return slot(t).table;
}

Storage::Storage(size_t bytes, Device dev) : bytes_(bytes), dev_(dev) {
  ptr_ = allocator_table(dev.type).allocate(bytes, dev.index);
}

Storage::~Storage() {
  if (ptr_) allocator_table(dev_.type).deallocate(ptr_, bytes_, dev_.index);
}

size_t cpu_bytes_in_use() { return g_cpu_in_use.load(); }

size_t reserved_bytes(Device dev) {
  const AllocatorTable& t = allocator_table(dev.type);
  return t.bytes_in_use(dev.index) + (t.bytes_cached ? t.bytes_cached(dev.index) : 0);
}
void mark_memory_cache(Device dev) {
  const AllocatorTable& t = allocator_table(dev.type);
  if (t.mark_cache) t.mark_cache(dev.index);
}
size_t trim_memory_cache(Device dev) {
  const AllocatorTable& t = allocator_table(dev.type);
  return t.trim_cache ? t.trim_cache(dev.index) : 0;
}
size_t cpu_peak_bytes() { return g_cpu_peak.load(); }
void cpu_reset_peak() { cpu_reset_peak_fn(0); }

}  // namespace asap
