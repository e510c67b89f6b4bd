// Multi-tensor launches without per-call pageable copies: a table of per-chunk pointers lives on
// the device, cached by the exact list of words that defines it (pointers, sizes, device). The
// caching allocator hands back the same addresses step after step, so after the first step a
// lookup hits and nothing is copied. On a miss the table is built in page-locked host memory that
// the cache entry keeps alive, then copied in-stream: under stream capture that copy is recorded
// and replayed later from the same, never rewritten, pinned bytes. An entry also owns `scratch`
// device bytes (partial sums), so a captured graph never points at freed scratch. Entries are
// evicted least-recently-used beyond max_entries (a graph captured with an evicted entry must be
// re-captured; the search loop uses a handful of distinct lists). Pinned bytes come from 1 MiB
// slabs allocated ahead, so a miss during a capture (cudaMallocHost is not allowed there) finds
// pinned space unless the slab is full; a slab whose entries were all evicted is reused (slabs
// are never freed: cudaFreeHost synchronises the device). When the grads move between steps
// (the eager search step: the allocator's free lists do not hand back the same grad blocks)
// each step rebuilds its tables: async copies from pinned memory, no host wait; a captured graph
// keeps the table it was captured with.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/host_sync.h"

namespace asap::cuda {

class DeviceTableCache {
 public:
  explicit DeviceTableCache(size_t max_entries = 16) : max_(max_entries) {}

  struct View {
    const void* table;  // device copy of the built bytes
    void* scratch;      // device scratch owned by the entry (may be null when 0 bytes asked)
  };

  // key: the exact words defining the table. build(std::vector<unsigned char>&) appends the
  // table bytes; called only on a miss.
  template <typename Build>
  View get(std::vector<uint64_t> key, size_t scratch_bytes, Build build) {
    key.push_back(static_cast<uint64_t>(current_device()));
    key.push_back(scratch_bytes);
    std::lock_guard<std::mutex> lock(mu_);
    ++tick_;
    for (Entry& e : entries_)
      if (e.key == key) {
        e.last_use = tick_;
        return View{e.dev.get(), scratch_bytes ? static_cast<unsigned char*>(e.dev.get()) + e.table_bytes : nullptr};
      }
    ++misses_;
    std::vector<unsigned char> bytes;
    build(bytes);
    if (entries_.size() >= max_) {
      auto lru = std::min_element(entries_.begin(), entries_.end(),
                                  [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
      release_slab(lru->slab);
      entries_.erase(lru);
    }
    Entry e;
    e.key = std::move(key);
    e.last_use = tick_;
    e.table_bytes = (bytes.size() + 255) / 256 * 256;
    e.dev = DeviceBuffer(std::max<size_t>(1, e.table_bytes + scratch_bytes));
    if (!bytes.empty()) {
      unsigned char* pin = pinned_bytes(e.table_bytes, e.slab);
      std::memcpy(pin, bytes.data(), bytes.size());
      copy_async(e.dev.get(), pin, bytes.size(), cudaMemcpyHostToDevice, stream());
    }
    entries_.push_back(std::move(e));
    Entry& n = entries_.back();
    return View{n.dev.get(), scratch_bytes ? static_cast<unsigned char*>(n.dev.get()) + n.table_bytes : nullptr};
  }

  uint64_t misses() const { return misses_; }

  // A cache for one call site, created with its first pinned slab and never destroyed (storages,
  // and with them cached tables, may die during static destruction).
  static DeviceTableCache& leaked() {
    auto* t = new DeviceTableCache();
    t->reserve_pinned();
    return *t;
  }

  // Pinned slabs are allocated ahead of need (outside any capture, by the first call).
  void reserve_pinned() {
    std::lock_guard<std::mutex> lock(mu_);
    if (slabs_.empty()) new_slab(kSlab);
  }

 private:
  static constexpr size_t kSlab = size_t{1} << 20;
  struct Slab {
    PinnedBuffer buf;
    size_t used = 0;
    int live = 0;  // entries holding bytes in it
  };
  struct Entry {
    std::vector<uint64_t> key;
    DeviceBuffer dev;
    size_t table_bytes = 0;
    uint64_t last_use = 0;
    Slab* slab = nullptr;  // owner of this entry's pinned bytes (never rewritten while it lives)
  };

  Slab* new_slab(size_t bytes) {
    slabs_.push_back(std::make_unique<Slab>());
    slabs_.back()->buf = PinnedBuffer(bytes);
    return slabs_.back().get();
  }
  unsigned char* pinned_bytes(size_t bytes, Slab*& owner) {
    Slab* s = slabs_.empty() ? nullptr : slabs_.back().get();
    if (!s || s->buf.bytes() - s->used < bytes) {
      // Reuse a slab none of whose entries is cached any more (its copies were issued at least
      // max_entries misses ago), else allocate one: slabs are never freed (cudaFreeHost would
      // synchronise the device), so their number stays bounded by the entries they serve.
      auto spare = std::find_if(slabs_.begin(), slabs_.end(), [&](const std::unique_ptr<Slab>& x) {
        return x.get() != s && x->live == 0 && x->buf.bytes() >= bytes;
      });
      if (spare != slabs_.end()) {
        std::unique_ptr<Slab> keep = std::move(*spare);
        slabs_.erase(spare);
        keep->used = 0;
        slabs_.push_back(std::move(keep));
        s = slabs_.back().get();
      } else {
        s = new_slab(std::max(kSlab, bytes));
      }
    }
    unsigned char* p = static_cast<unsigned char*>(s->buf.get()) + s->used;
    s->used += bytes;
    ++s->live;
    owner = s;
    return p;
  }
  void release_slab(Slab* s) {
    if (s && --s->live == 0 && s == slabs_.back().get()) s->used = 0;  // current slab: reuse from its start
  }

  size_t max_;
  std::mutex mu_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Slab>> slabs_;
  uint64_t tick_ = 0, misses_ = 0;
};

// True when v is neither infinite nor NaN (inf - inf and NaN - NaN are NaN); no libm needed.
__device__ __forceinline__ bool finite_value(double v) { return v - v == 0.0; }

// A 0-d gate value: nullptr means "no gate" (open); F64 when is_f64, else F32.
__device__ __forceinline__ bool gate_open(const void* gate, bool is_f64) {
  if (!gate) return true;
  return finite_value(is_f64 ? *static_cast<const double*>(gate) : static_cast<double>(*static_cast<const float*>(gate)));
}

template <typename T>
inline void append_pod(std::vector<unsigned char>& out, const T& v) {
  const auto* b = reinterpret_cast<const unsigned char*>(&v);
  out.insert(out.end(), b, b + sizeof(T));
}

}  // namespace asap::cuda
