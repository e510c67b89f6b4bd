// An allocator for std::allocate_shared that recycles blocks through a per-thread free list.
// Why: every op makes an output tensor (TensorImpl + Storage objects) and, under autograd, a tape
// node; a step makes the same number of each every time, so after the first step these come
// from the free lists instead of malloc (which was a quarter of a small op's host cost). Each
// instantiation sees one block size (control block + object). A block freed on another thread
// joins that thread's list; a thread's list is freed when the thread ends.
#pragma once
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

// Under AddressSanitizer the pools are off: a recycled block would hide a use after free of a
// tensor or node from it (the sanitizer build exists to find those).
#if defined(__SANITIZE_ADDRESS__)
#define ASAP_POOLS_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAP_POOLS_ENABLED 0
#endif
#endif
#ifndef ASAP_POOLS_ENABLED
#define ASAP_POOLS_ENABLED 1
#endif

namespace asap {
inline constexpr bool kPoolsEnabled = ASAP_POOLS_ENABLED;

namespace detail {

constexpr size_t kMaxPooledBlocks = 1 << 15;  // per size and thread; more go back to the heap
inline thread_local bool t_pools_gone = false;  // trivially destructible: readable at thread exit

template <size_t Size>
struct FreeBlocks {
  std::vector<void*> blocks;
  ~FreeBlocks() {
    t_pools_gone = true;
    for (void* p : blocks) ::operator delete(p);
  }
};
template <size_t Size>
inline thread_local FreeBlocks<Size> t_free_blocks;

}  // namespace detail

template <typename T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) {}  // NOLINT: rebinding, as the standard requires

  T* allocate(size_t n) {
    if (kPoolsEnabled && n == 1 && !detail::t_pools_gone) {
      auto& fb = detail::t_free_blocks<sizeof(T)>.blocks;
      if (!fb.empty()) {
        void* p = fb.back();
        fb.pop_back();
        return static_cast<T*>(p);
      }
    }
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept {
    if (kPoolsEnabled && n == 1 && !detail::t_pools_gone) {
      auto& fb = detail::t_free_blocks<sizeof(T)>.blocks;
      if (fb.size() < detail::kMaxPooledBlocks) {
        try {
          fb.push_back(p);
          return;
        } catch (...) {  // no room for the pointer: the block goes back to the heap instead
        }
      }
    }
    ::operator delete(p);
  }
  template <typename U>
  bool operator==(const PoolAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const PoolAllocator<U>&) const { return false; }
};

// std::make_shared through the pool.
template <typename T, typename... Args>
std::shared_ptr<T> make_pooled(Args&&... args) {
  return std::allocate_shared<T>(PoolAllocator<T>(), std::forward<Args>(args)...);
}

}  // namespace asap
