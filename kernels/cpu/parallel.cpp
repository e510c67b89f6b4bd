// Persistent thread pool behind asap::cpu::parallel_for (see parallel.h for why it exists).
// One job at a time: the caller publishes the job and bumps a generation counter, runs block 0
// itself, then waits for the workers' count to reach zero. Every wait spins for a bounded time and
// then sleeps on a futex; the wake-ups pair a seq_cst store and load on each side, so a sleeper is
// never missed.
#include "kernels/cpu/parallel.h"

#include <linux/futex.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace asap::cpu {
namespace {

thread_local bool t_in_parallel = false;

void futex_wait(std::atomic<int>* word, int expected) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<int>* word) {
  syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

int64_t spin_ns() {
  static const int64_t ns = [] {
    const char* e = std::getenv("ASAP_SPIN_US");
    long us = e ? std::strtol(e, nullptr, 10) : 250;
    return int64_t(us < 0 ? 0 : us) * 1000;
  }();
  return ns;
}

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Spins until pred() or the spin budget is spent; returns pred().
template <typename P>
inline bool spin_until(P pred) {
  const int64_t budget = spin_ns();
  if (pred()) return true;
  if (budget == 0) return false;
  const int64_t t0 = now_ns();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (now_ns() - t0 > budget) return pred();
  }
}

class Pool {
 public:
  void run(int threads, int64_t n, RangeFn fn) {
    ensure_workers(threads - 1);
    fn_ = &fn;
    n_ = n;
    threads_ = threads;
    error_ = nullptr;
    // Every started worker takes part (idle ones just check in), so none can lag into the next job.
    pending_.store(static_cast<int>(workers_), std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake(&gen_);
    t_in_parallel = true;
    std::exception_ptr mine;
    try {
      run_block(0);
    } catch (...) {
      mine = std::current_exception();
    }
    t_in_parallel = false;
    wait_done();
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

  std::mutex& mutex() { return mu_; }

 private:
  void run_block(int t) {
    const int64_t lo = n_ * t / threads_, hi = n_ * (t + 1) / threads_;
    if (lo < hi) (*fn_)(lo, hi);
  }

  void wait_done() {
    auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    while (!spin_until(done)) {
      main_sleeping_.store(1, std::memory_order_seq_cst);
      const int p = pending_.load(std::memory_order_seq_cst);
      if (p != 0) futex_wait(&pending_, p);
      main_sleeping_.store(0, std::memory_order_relaxed);
    }
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers_) < count) {
      const int id = static_cast<int>(++workers_);
      // The worker must treat the job about to be posted as new, even if it starts after the post.
      const int seen = gen_.load(std::memory_order_relaxed);
      std::thread([this, id, seen] { worker(id, seen); }).detach();
    }
  }

  void worker(int id, int seen) {
    t_in_parallel = true;
    for (;;) {
      auto posted = [&] { return gen_.load(std::memory_order_acquire) != seen; };
      while (!spin_until(posted)) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (gen_.load(std::memory_order_seq_cst) == seen) futex_wait(&gen_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = gen_.load(std::memory_order_acquire);
      try {
        if (id < threads_) run_block(id);
      } catch (...) {
        std::lock_guard<std::mutex> lk(err_mu_);
        if (!error_) error_ = std::current_exception();
      }
      if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
          main_sleeping_.load(std::memory_order_seq_cst))
        futex_wake(&pending_);
    }
  }

  std::mutex mu_;       // one job at a time
  std::mutex err_mu_;
  size_t workers_ = 0;  // started workers (ids 1..workers_)
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int threads_ = 1;
  std::exception_ptr error_;
  std::atomic<int> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<int> main_sleeping_{0};
};

// Never destroyed: detached workers may still be parked on its futexes at exit.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

int parallel_threads() {
  if (t_in_parallel || omp_in_parallel()) return 1;
  return omp_get_max_threads();
}

void parallel_for_impl(int64_t n, RangeFn fn) {
  int threads = parallel_threads();
  if (threads > n) threads = static_cast<int>(n);
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  Pool& p = pool();
  std::unique_lock<std::mutex> lk(p.mutex(), std::try_to_lock);
  if (!lk.owns_lock()) {  // another application thread is using the pool
    fn(0, n);
    return;
  }
  p.run(threads, n, fn);
}

}  // namespace asap::cpu
