// Cooperative fibers for the CUDA emulator: one fiber per emulated CUDA thread of a block. A fiber
// runs until it reaches a collective (__syncthreads, a warp shuffle) or returns, then switches back
// to the block scheduler on the same OS thread. Fibers never migrate between OS threads, which is
// what makes `static thread_local` correct for __shared__ memory.
//
// Stacks are mmap'd once per worker with a PROT_NONE guard page below each one (a kernel that
// overflows its stack faults instead of corrupting its neighbour) and reused for every block.
// The context switch saves only the callee-saved registers and the FP control words (x86-64
// SysV); other targets fall back to ucontext. Exceptions never cross a switch: the fiber entry
// catches everything and hands it to the scheduler.
#pragma once
#include <cstddef>
#include <exception>

// Internal to the emulator library: hidden, so calls bind directly instead of through the PLT.
#define ASAP_EMU_INTERNAL __attribute__((visibility("hidden")))

namespace cuda_emu {

class ASAP_EMU_INTERNAL StackPool {
 public:
  StackPool() = default;
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  // Top-of-stack pointer of stack i (grows the pool to at least i + 1 stacks).
  char* top(size_t i);
  char* bottom(size_t i);  // lowest usable address (just above the guard page)
  static size_t stack_bytes();

 private:
  void grow(size_t n);
  char* base_ = nullptr;
  size_t count_ = 0;
};

struct FiberContext {
  void* sp = nullptr;       // saved stack pointer (x86-64 switch)
  void* impl = nullptr;     // ucontext_t* on other targets
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void (*entry)(void*) = nullptr;  // ucontext fallback: the start function and its argument
  void* arg = nullptr;
};

using FiberEntry = void (*)(void* arg);

// Prepares `f` to start `entry(arg)` on stack [bottom, top) at its first switch_to.
ASAP_EMU_INTERNAL void fiber_prepare(FiberContext& f, char* bottom, char* top, FiberEntry entry, void* arg);
// Saves the current context into `from` and resumes `to`.
ASAP_EMU_INTERNAL void fiber_switch(FiberContext& from, FiberContext& to);
// The scheduler's own context: its stack is the OS thread's (used for the sanitizer annotations).
ASAP_EMU_INTERNAL void fiber_init_thread_context(FiberContext& f);
// Sanitizer bookkeeping: after_switch runs on the side that was resumed; fiber_started first
// thing in a new fiber's entry function.
ASAP_EMU_INTERNAL void fiber_after_switch(FiberContext& from);
ASAP_EMU_INTERNAL void fiber_started();

}  // namespace cuda_emu
