// The CPU kernels' parallel loop: a small persistent thread pool instead of one OpenMP parallel
// region per kernel call.
//
// Why: a search step on small images runs thousands of short kernels (tens of microseconds each).
// With libgomp every one is a fork/join whose idle threads spin-wait for up to GOMP_SPINCOUNT
// iterations (hundreds of microseconds); on a loaded machine the spinning threads steal the core
// from the thread that still has work, and a step took 10-40x its single-thread time. This pool
// spins for a bounded time (ASAP_SPIN_US, default 250 us: long enough to catch the next kernel of
// a step, short enough not to starve anyone), then sleeps on a futex.
//
// Semantics: fn(lo, hi) is called on contiguous blocks that partition [0, n), one block per
// thread, like OpenMP schedule(static). Kernels keep results independent of the partition (per
// sample / per chunk partials reduced in index order), so output is bit-identical for any thread
// count. The thread count is omp_get_max_threads() (OMP_NUM_THREADS, omp_set_num_threads), so the
// existing knobs keep working. Calls from inside a parallel_for block, from an OpenMP parallel
// region or while another thread holds the pool run serially on the caller.
#pragma once
#include <cstdint>
#include <utility>

namespace asap::cpu {

// Type-erased reference to a callable void(int64_t lo, int64_t hi); no allocation.
class RangeFn {
 public:
  template <typename F>
  RangeFn(F& f) : obj_(&f), call_([](void* o, int64_t lo, int64_t hi) { (*static_cast<F*>(o))(lo, hi); }) {}
  void operator()(int64_t lo, int64_t hi) const { call_(obj_, lo, hi); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

// Threads a parallel_for would use now (1 inside a parallel block).
int parallel_threads();

void parallel_for_impl(int64_t n, RangeFn fn);

// Runs fn(lo, hi) over [0, n) in parallel when `parallel` is true, else fn(0, n) on the caller.
template <typename F>
inline void parallel_for(int64_t n, bool parallel, F&& fn) {
  if (n <= 0) return;
  if (!parallel || n == 1) {
    fn(int64_t(0), n);
    return;
  }
  parallel_for_impl(n, RangeFn(fn));
}

// Per-index convenience: body(i) for every i in [0, n).
template <typename F>
inline void parallel_for_each(int64_t n, bool parallel, F&& body) {
  parallel_for(n, parallel, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) body(i);
  });
}

}  // namespace asap::cpu
