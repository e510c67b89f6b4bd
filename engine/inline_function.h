// A move-only std::function replacement that keeps the callable inside the object when it fits.
// Why: every differentiable op hands the tape a backward closure, and most capture one to four
// Tensors (shared_ptrs). libstdc++'s std::function stores inline only trivially copyable
// callables of at most 16 bytes, so each of those closures cost a heap allocation and a free per
// op and step. Here closures up to kInline bytes live in the node itself; larger ones (the mixed
// ops capture vectors) still go to the heap.
#pragma once
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace asap {

template <typename Sig, size_t kInline = 64>
class InlineFunction;

template <typename R, typename... Args, size_t kInline>
class InlineFunction<R(Args...), kInline> {
 public:
  InlineFunction() = default;
  InlineFunction(std::nullptr_t) {}

  template <typename F, typename D = std::decay_t<F>,
            typename = std::enable_if_t<!std::is_same_v<D, InlineFunction> && std::is_invocable_r_v<R, D&, Args...>>>
  InlineFunction(F&& f) {  // NOLINT: implicit, like std::function
    if constexpr (fits<D>()) {
      ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      *reinterpret_cast<D**>(buf_) = new D(std::forward<F>(f));
      ops_ = &heap_ops<D>;
    }
  }

  InlineFunction(InlineFunction&& o) noexcept { take(o); }
  InlineFunction& operator=(InlineFunction&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  R operator()(Args... args) const { return ops_->call(const_cast<unsigned char*>(buf_), std::forward<Args>(args)...); }

  // True when a callable of type F is stored without a heap allocation (tests).
  template <typename F>
  static constexpr bool stores_inline() {
    return fits<std::decay_t<F>>();
  }

 private:
  struct Ops {
    R (*call)(void* self, Args&&... args);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst from src, destroys src
    void (*destroy)(void* self) noexcept;
  };

  template <typename D>
  static constexpr bool fits() {
    return sizeof(D) <= kInline && alignof(D) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<D>;
  }

  template <typename D>
  static constexpr Ops inline_ops = {
      [](void* s, Args&&... a) -> R { return (*static_cast<D*>(s))(std::forward<Args>(a)...); },
      [](void* dst, void* src) noexcept {
        ::new (dst) D(std::move(*static_cast<D*>(src)));
        static_cast<D*>(src)->~D();
      },
      [](void* s) noexcept { static_cast<D*>(s)->~D(); }};

  template <typename D>
  static constexpr Ops heap_ops = {
      [](void* s, Args&&... a) -> R { return (**static_cast<D**>(s))(std::forward<Args>(a)...); },
      [](void* dst, void* src) noexcept { *static_cast<D**>(dst) = *static_cast<D**>(src); },
      [](void* s) noexcept { delete *static_cast<D**>(s); }};

  void take(InlineFunction& o) noexcept {
    if (!o.ops_) return;
    o.ops_->move(buf_, o.buf_);
    ops_ = o.ops_;
    o.ops_ = nullptr;
  }
  void reset() noexcept {
    if (ops_) ops_->destroy(buf_);
    ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char buf_[kInline];
  const Ops* ops_ = nullptr;
};

}  // namespace asap
