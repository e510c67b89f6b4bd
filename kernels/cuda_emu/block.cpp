// The block scheduler of the CUDA emulator. Every CUDA thread of a block is a fiber. A round runs
// every ready fiber, in the schedule's order (fwd, rev or a seeded shuffle), until it reaches a
// collective or returns; then the collectives are resolved:
//   - a warp collective (shuffle, ballot, vote, __syncwarp) completes when every lane named in
//     its mask waits in the same operation with the same mask and width; all results are
//     computed at once from the values deposited (lockstep semantics);
//   - __syncthreads releases when every thread that has not exited waits at it, all at the same
//     call site (exited threads are excused, as on sm_70 and later).
// Anything else is a fault naming the kernel, the block, the threads and the call sites: a
// barrier some live thread can never reach, divergent barrier sites, a lane that exited before a
// shuffle its mask names, masks that differ, a mask naming lanes the block does not have.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "engine/error.h"
#include "kernels/cuda_emu/fiber.h"
#include "kernels/cuda_emu/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ASAP_EMU_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ASAP_EMU_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ASAP_EMU_POISON(p, n) ((void)(p), (void)(n))
#define ASAP_EMU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

thread_local uint3 threadIdx ASAP_EMU_TLS{0, 0, 0};
thread_local uint3 blockIdx ASAP_EMU_TLS{0, 0, 0};
thread_local dim3 blockDim ASAP_EMU_TLS{1, 1, 1};
thread_local dim3 gridDim ASAP_EMU_TLS{1, 1, 1};

namespace cuda_emu {
namespace {

constexpr size_t kMaxDynamicShared = 48 * 1024;

enum class St : uint8_t { Ready, Barrier, Warp, Done };

struct EmuThread {
  uint3 idx{};
  int linear = 0;
  St st = St::Ready;
  const char* file = "";
  int line = 0;
  WarpOp op = WarpOp::SyncWarp;
  unsigned mask = 0;
  int width = 32;
  int arg = 0;
  uint64_t value = 0, result = 0;
  FiberContext ctx;
};

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::ShflIdx: return "__shfl_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::All: return "__all_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::SyncWarp: return "__syncwarp";
  }
  return "?";
}

std::string coord(uint3 v) {
  std::ostringstream os;
  os << "(" << v.x << "," << v.y << "," << v.z << ")";
  return os.str();
}

std::string hex(unsigned m) {
  std::ostringstream os;
  os << "0x" << std::hex << m;
  return os.str();
}

class BlockRunner;
thread_local BlockRunner* tl_runner ASAP_EMU_TLS = nullptr;
thread_local EmuThread* tl_self ASAP_EMU_TLS = nullptr;
std::atomic<uint64_t> g_launch_serial{0};

void fiber_main(void* arg);

// The coordinates of linear block b in grid order (x fastest), as the hardware numbers them.
uint3 block_coords(uint64_t b, dim3 grid) {
  return uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
               static_cast<unsigned>(b / (uint64_t(grid.x) * grid.y))};
}

class BlockRunner {
 public:
  BlockRunner() { fiber_init_thread_context(sched_); }

  void run(const detail::Grid& g, uint3 bidx, uint64_t serial) {
    grid_ = &g;
    bidx_ = bidx;
    const int n = static_cast<int>(g.block.x * g.block.y * g.block.z);
    threads_.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      EmuThread& t = threads_[i];
      t = EmuThread{};
      t.linear = i;
      t.idx = uint3{static_cast<unsigned>(i) % g.block.x, (static_cast<unsigned>(i) / g.block.x) % g.block.y,
                    static_cast<unsigned>(i) / (g.block.x * g.block.y)};
      fiber_prepare(t.ctx, stacks_.bottom(i), stacks_.top(i), fiber_main, &t);
    }
    blockIdx = bidx;
    blockDim = g.block;
    gridDim = g.grid;
    // Dynamic shared memory is uninitialised on the device: fill it with a NaN pattern so a read
    // before write shows, and poison the bytes past the requested size for AddressSanitizer.
    ASAP_EMU_UNPOISON(shared_, kMaxDynamicShared);
    std::memset(shared_, 0xff, g.dynamic_shmem);
    ASAP_EMU_POISON(shared_ + g.dynamic_shmem, kMaxDynamicShared - g.dynamic_shmem);
    order_.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) order_[i] = i;
    const Options& o = options();
    if (o.schedule == Schedule::Reverse) std::reverse(order_.begin(), order_.end());
    std::mt19937_64 rng(o.shuffle_seed ^ (serial * 0x9E3779B97F4A7C15ull) ^
                        (uint64_t(bidx.x) << 32 | uint64_t(bidx.y) << 16 | bidx.z));
    error_ = nullptr;
    TlGuard guard(this);
    for (;;) {
      if (o.schedule == Schedule::Shuffle) std::shuffle(order_.begin(), order_.end(), rng);
      // One round: every ready fiber, in schedule order, runs to its next collective. A parking
      // fiber hands over directly to the next one (one switch per fiber, not two).
      round_.clear();
      for (int i : order_)
        if (threads_[i].st == St::Ready) round_.push_back(i);
      round_pos_ = 0;
      if (!round_.empty()) {
        EmuThread& first = threads_[round_[0]];
        enter(first);
        fiber_switch(sched_, first.ctx);
        tl_self = nullptr;
        if (error_) std::rethrow_exception(error_);
      }
      if (resolve_warps()) continue;
      int live = 0, at_barrier = 0;
      for (const EmuThread& t : threads_) {
        live += t.st != St::Done;
        at_barrier += t.st == St::Barrier;
      }
      if (live == 0) break;
      if (at_barrier == live) {
        release_barrier();
        continue;
      }
      fail_deadlock();
    }
  }

  void* shared() { return shared_; }

  // Called on a fiber parked at a collective (or done): run the next fiber of this round, or
  // return to the scheduler when the round is over or a fiber failed.
  void park(EmuThread& t) {
    if (!error_ && ++round_pos_ < round_.size()) {
      EmuThread& next = threads_[round_[round_pos_]];
      enter(next);
      fiber_switch(t.ctx, next.ctx);
    } else {
      fiber_switch(t.ctx, sched_);
    }
  }

  void finish(EmuThread& t, std::exception_ptr e) {
    if (e && !error_) error_ = in_thread(t, e);
    t.st = St::Done;
    park(t);  // never resumed
    std::abort();
  }

  const detail::Grid& grid() const { return *grid_; }

 private:
  struct TlGuard {
    BlockRunner* prev;
    explicit TlGuard(BlockRunner* r) : prev(tl_runner) { tl_runner = r; }
    ~TlGuard() {
      tl_runner = prev;
      tl_self = nullptr;
    }
  };

  void enter(EmuThread& t) {
    threadIdx = t.idx;
    tl_self = &t;
  }

  std::string where() const {
    std::ostringstream os;
    os << "kernel '" << grid_->kernel << "' (launched at " << grid_->file << ":" << grid_->line << "), block "
       << coord(bidx_) << " of grid " << coord(uint3{grid_->grid.x, grid_->grid.y, grid_->grid.z}) << ", block size "
       << coord(uint3{grid_->block.x, grid_->block.y, grid_->block.z});
    return os.str();
  }

  // An exception thrown by kernel code (or by an intrinsic's argument check) on thread t.
  std::exception_ptr in_thread(const EmuThread& t, std::exception_ptr e) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    return std::make_exception_ptr(
        asap::DeviceError("CUDA emulator: " + where() + ", thread " + coord(t.idx) + ": " + what));
  }

  [[noreturn]] void fail(const std::string& msg) const {
    throw asap::DeviceError("CUDA emulator: " + where() + ": " + msg);
  }

  std::string thread_at(const EmuThread& t) const {
    std::ostringstream os;
    os << "thread " << coord(t.idx);
    switch (t.st) {
      case St::Barrier: os << " waits at __syncthreads (" << t.file << ":" << t.line << ")"; break;
      case St::Warp: os << " waits in " << op_name(t.op) << " mask " << hex(t.mask) << " (" << t.file << ":" << t.line << ")"; break;
      case St::Done: os << " has exited"; break;
      case St::Ready: os << " is ready"; break;
    }
    return os.str();
  }

  bool resolve_warps() {
    bool progressed = false;
    const int n = static_cast<int>(threads_.size());
    for (int i = 0; i < n; ++i) {
      EmuThread& t = threads_[i];
      if (t.st != St::Warp) continue;
      const int warp = i / 32, lane = i % 32;
      if (!(t.mask >> lane & 1u))
        fail(thread_at(t) + ", but its own lane " + std::to_string(lane) + " is not in the mask");
      // Every lane the mask names must be waiting in the same operation.
      for (int b = 0; b < 32; ++b) {
        if (!(t.mask >> b & 1u)) continue;
        const int j = warp * 32 + b;
        if (j >= n)
          fail(thread_at(t) + ", but the mask names lane " + std::to_string(b) + " of warp " + std::to_string(warp) +
               ", which this block of " + std::to_string(n) + " threads does not have");
        const EmuThread& u = threads_[j];
        if (u.st == St::Done)
          fail(thread_at(t) + ", but lane " + std::to_string(b) + " (thread " + coord(u.idx) +
               ") named in the mask has exited");
        if (u.st == St::Barrier) fail(thread_at(t) + ", while lane " + std::to_string(b) + ": " + thread_at(u));
        if (u.op != t.op || u.mask != t.mask || u.width != t.width)
          fail("warp " + std::to_string(warp) + " diverges: " + thread_at(t) + " width " + std::to_string(t.width) +
               ", while " + thread_at(u) + " width " + std::to_string(u.width));
      }
      compute(warp, t.mask);
      progressed = true;
    }
    return progressed;
  }

  void compute(int warp, unsigned mask) {
    EmuThread* lanes[32] = {};
    for (int b = 0; b < 32; ++b)
      if (mask >> b & 1u) lanes[b] = &threads_[warp * 32 + b];
    const EmuThread& first = *lanes[__builtin_ctz(mask)];
    uint64_t ballot = 0;
    bool all = true, any = false;
    for (int b = 0; b < 32; ++b)
      if (lanes[b]) {
        const bool p = lanes[b]->value != 0;
        ballot |= uint64_t(p) << b;
        all = all && p;
        any = any || p;
      }
    for (int b = 0; b < 32; ++b) {
      EmuThread* t = lanes[b];
      if (!t) continue;
      const int w = t->width, seg = (b / w) * w;
      int src = b;
      switch (first.op) {
        case WarpOp::ShflIdx: src = seg + ((t->arg % w) + w) % w; break;
        case WarpOp::ShflUp: src = b - t->arg >= seg ? b - t->arg : b; break;
        case WarpOp::ShflDown: src = b + t->arg < seg + w ? b + t->arg : b; break;
        case WarpOp::ShflXor: {
          const int s = b ^ t->arg;
          src = (s >= 0 && s < seg + w) ? s : b;
          break;
        }
        case WarpOp::Ballot: t->result = ballot; break;
        case WarpOp::All: t->result = all; break;
        case WarpOp::Any: t->result = any; break;
        case WarpOp::SyncWarp: t->result = 0; break;
      }
      if (first.op == WarpOp::ShflIdx || first.op == WarpOp::ShflUp || first.op == WarpOp::ShflDown ||
          first.op == WarpOp::ShflXor) {
        if (!lanes[src])
          fail(thread_at(*t) + " reads lane " + std::to_string(src) + ", which is not in the mask (undefined on the device)");
        t->result = lanes[src]->value;
      }
    }
    for (int b = 0; b < 32; ++b)
      if (lanes[b]) lanes[b]->st = St::Ready;
  }

  void release_barrier() {
    const EmuThread* first = nullptr;
    for (EmuThread& t : threads_) {
      if (t.st != St::Barrier) continue;
      if (!first) {
        first = &t;
      } else if (t.line != first->line || std::strcmp(t.file, first->file) != 0) {
        fail("divergent __syncthreads: " + thread_at(*first) + ", " + thread_at(t));
      }
    }
    for (EmuThread& t : threads_)
      if (t.st == St::Barrier) t.st = St::Ready;
  }

  [[noreturn]] void fail_deadlock() const {
    // Every live thread is parked and nothing can complete: name a barrier waiter and the first
    // thread that keeps it waiting.
    const EmuThread *bar = nullptr, *other = nullptr, *exited = nullptr;
    int done = 0;
    for (const EmuThread& t : threads_) {
      if (t.st == St::Barrier && !bar) bar = &t;
      if (t.st == St::Warp && !other) other = &t;
      if (t.st == St::Done) {
        ++done;
        if (!exited) exited = &t;
      }
    }
    std::ostringstream os;
    os << "deadlock: " << (bar ? thread_at(*bar) : std::string("no thread at a barrier")) << " but "
       << (other ? thread_at(*other) : std::string("no other thread can arrive"));
    if (done) os << "; " << done << " threads have exited (first: " << coord(exited->idx) << ")";
    fail(os.str());
  }

  const detail::Grid* grid_ = nullptr;
  uint3 bidx_{};
  std::vector<EmuThread> threads_;
  std::vector<int> order_;
  std::vector<int> round_;  // this round's ready fibers, in schedule order
  size_t round_pos_ = 0;
  StackPool stacks_;
  FiberContext sched_;
  std::exception_ptr error_;
  alignas(256) unsigned char shared_[kMaxDynamicShared];
};

void fiber_main(void* arg) {
  fiber_started();
  auto* t = static_cast<EmuThread*>(arg);
  BlockRunner* r = tl_runner;
  std::exception_ptr e;
  try {
    r->grid().body();
  } catch (...) {
    e = std::current_exception();
  }
  r->finish(*t, e);
}

BlockRunner& runner_for_this_thread() {
  thread_local std::unique_ptr<BlockRunner> r;
  if (!r) r = std::make_unique<BlockRunner>();
  return *r;
}

EmuThread& self(const char* what) {
  if (!tl_self || !tl_runner)
    throw asap::DeviceError(std::string("CUDA emulator: ") + what + " called outside a kernel");
  return *tl_self;
}

// Workers beyond the calling thread, started on the first multi-worker launch and kept.
class WorkerPool {
 public:
  static WorkerPool& get() {
    static WorkerPool* p = new WorkerPool();  // leaked: workers may outlive static destruction order
    return *p;
  }

  void run(const detail::Grid& g, int workers, uint64_t serial) {
    const uint64_t nblocks = uint64_t(g.grid.x) * g.grid.y * g.grid.z;
    std::unique_lock<std::mutex> lock(mu_);
    while (static_cast<int>(threads_.size()) < workers - 1) {
      const int index = static_cast<int>(threads_.size());
      threads_.emplace_back([this, index] { loop(index); });
    }
    job_ = &g;
    serial_ = serial;
    next_ = 0;
    total_ = nblocks;
    error_ = nullptr;
    helpers_ = workers - 1;
    // Every pool thread wakes for a job and checks in, also those beyond this job's worker count.
    active_ = static_cast<int>(threads_.size());
    ++generation_;
    cv_.notify_all();
    lock.unlock();
    work();  // the calling thread is a worker too
    lock.lock();
    done_cv_.wait(lock, [this] { return active_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      const bool take_part = index < helpers_;
      lock.unlock();
      if (take_part) work();
      lock.lock();
      if (--active_ == 0) done_cv_.notify_all();
    }
  }

  void work() {
    BlockRunner& r = runner_for_this_thread();
    const detail::Grid& g = *job_;
    for (;;) {
      const uint64_t b = next_.fetch_add(1);
      if (b >= total_ || stop_.load()) break;
      const uint3 bidx = block_coords(b, g.grid);
      try {
        r.run(g, bidx, serial_);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        next_ = total_;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> threads_;
  const detail::Grid* job_ = nullptr;
  uint64_t serial_ = 0, generation_ = 0, total_ = 0;
  std::atomic<uint64_t> next_{0};
  std::atomic<bool> stop_{false};
  int active_ = 0;
  int helpers_ = 0;  // pool threads taking part in the current job
  std::exception_ptr error_;
};

}  // namespace

namespace detail {

void run_grid(const Grid& g) {
  if (tl_self) fault(std::string("kernel '") + g.kernel + "' launched from device code (dynamic parallelism is not emulated)");
  const uint64_t serial = g_launch_serial.fetch_add(1);
  const uint64_t nblocks = uint64_t(g.grid.x) * g.grid.y * g.grid.z;
  count_blocks(nblocks);
  const int workers = std::max(1, std::min<int>(options().workers, static_cast<int>(std::min<uint64_t>(nblocks, 64))));
  if (workers == 1) {
    BlockRunner& r = runner_for_this_thread();
    for (uint64_t b = 0; b < nblocks; ++b) {
      const uint3 bidx = block_coords(b, g.grid);
      r.run(g, bidx, serial);
    }
    return;
  }
  WorkerPool::get().run(g, workers, serial);
}

}  // namespace detail

void* dynamic_shared() {
  self("extern __shared__ (ASAP_DYNAMIC_SHARED)");
  return tl_runner->shared();
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const char* file, int line) {
  EmuThread& t = self(op_name(op));
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    throw asap::DeviceError(std::string(op_name(op)) + " at " + file + ":" + std::to_string(line) + ": width " +
                            std::to_string(width) + " is not a power of two in [1, 32]");
  if (mask == 0)
    throw asap::DeviceError(std::string(op_name(op)) + " at " + file + ":" + std::to_string(line) + ": empty mask");
  t.st = St::Warp;
  t.op = op;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  t.file = file;
  t.line = line;
  tl_runner->park(t);
  return t.result;
}

}  // namespace cuda_emu

void __syncthreads(const char* file, int line) {
  cuda_emu::EmuThread& t = cuda_emu::self("__syncthreads");
  t.st = cuda_emu::St::Barrier;
  t.file = file;
  t.line = line;
  cuda_emu::tl_runner->park(t);
}

void __syncwarp(unsigned mask, const char* file, int line) {
  cuda_emu::warp_collective(cuda_emu::WarpOp::SyncWarp, mask, 0, 0, 32, file, line);
}
