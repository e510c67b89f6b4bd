// Fibers for the CUDA emulator (see fiber.h).
#include "kernels/cuda_emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__SANITIZE_ADDRESS__)
#define ASAP_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAP_EMU_ASAN 1
#endif
#endif
#if defined(ASAP_EMU_ASAN)
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace cuda_emu {
namespace {

constexpr size_t kMaxThreadsPerBlock = 1024;
constexpr size_t kGuard = 4096;
#if defined(ASAP_EMU_ASAN)
constexpr size_t kStack = 256 * 1024;  // ASan frames are several times larger
#else
constexpr size_t kStack = 64 * 1024;
#endif

}  // namespace

size_t StackPool::stack_bytes() { return kStack; }

StackPool::~StackPool() {
  if (base_) munmap(base_, count_ * (kStack + kGuard));
}

void StackPool::grow(size_t n) {
  if (base_) throw std::logic_error("cuda_emu: StackPool grows only once");
  const size_t slot = kStack + kGuard;
  void* p = mmap(nullptr, n * slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("cuda_emu: cannot map fiber stacks");
  base_ = static_cast<char*>(p);
  count_ = n;
  // Guard page at the low end of every slot: stacks grow down into it.
  for (size_t i = 0; i < n; ++i)
    if (mprotect(base_ + i * slot, kGuard, PROT_NONE) != 0)
      throw std::runtime_error("cuda_emu: cannot protect a fiber stack guard page");
}

char* StackPool::bottom(size_t i) {
  if (!base_) grow(kMaxThreadsPerBlock);
  if (i >= count_) throw std::out_of_range("cuda_emu: more than 1024 fibers in a block");
  return base_ + i * (kStack + kGuard) + kGuard;
}
// Stack tops are staggered by a few cache lines: with a 68 KiB slot stride every top would
// otherwise map to the same L1 set, and a block's fibers would evict each other on every switch.
char* StackPool::top(size_t i) { return bottom(i) + kStack - (i * 320) % 4096; }

#if defined(__x86_64__)

extern "C" void cuda_emu_ctx_switch(void** save_sp, void* new_sp);
extern "C" void cuda_emu_fiber_trampoline();

// Saves rbp, rbx, r12-r15 on the current stack, stores rsp in *save_sp, loads new_sp and restores
// the same from there; `ret` resumes the other context. The FP control words (MXCSR, x87 CW) are
// not switched: they are per OS thread, set once, and no kernel changes them (saving them costs
// two serialising instructions per switch, a third of the switch).
asm(R"(
  .text
  .globl cuda_emu_ctx_switch
  .hidden cuda_emu_ctx_switch
  .type cuda_emu_ctx_switch,@function
cuda_emu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuda_emu_ctx_switch, .-cuda_emu_ctx_switch

  .globl cuda_emu_fiber_trampoline
  .hidden cuda_emu_fiber_trampoline
  .type cuda_emu_fiber_trampoline,@function
cuda_emu_fiber_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size cuda_emu_fiber_trampoline, .-cuda_emu_fiber_trampoline
)");

void fiber_prepare(FiberContext& f, char* bottom, char* top, FiberEntry entry, void* arg) {
  // Initial frame, as cuda_emu_ctx_switch leaves it: r15 r14 r13 r12 rbx rbp, return address.
  // top is 16-aligned; sp = top - 72 leaves rsp = top - 16 (16-aligned) at the trampoline's call.
  auto* sp = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15)) - 9;
  sp[0] = 0;                                        // r15
  sp[1] = 0;                                        // r14
  sp[2] = reinterpret_cast<uint64_t>(entry);        // r13
  sp[3] = reinterpret_cast<uint64_t>(arg);          // r12
  sp[4] = 0;                                        // rbx
  sp[5] = 0;                                        // rbp
  sp[6] = reinterpret_cast<uint64_t>(&cuda_emu_fiber_trampoline);
  sp[7] = sp[8] = 0;
  f.sp = sp;
  f.stack_bottom = bottom;
  f.stack_size = static_cast<size_t>(top - bottom);
}

namespace {
inline void raw_switch(FiberContext& from, FiberContext& to) { cuda_emu_ctx_switch(&from.sp, to.sp); }
}  // namespace

#else  // ucontext fallback (slower: swapcontext saves the signal mask with a system call)

namespace {
// makecontext passes int arguments only: the FiberContext pointer travels as two halves.
void ucontext_start(unsigned hi, unsigned lo) {
  auto* f = reinterpret_cast<FiberContext*>((static_cast<uintptr_t>(hi) << 32) | lo);
  f->entry(f->arg);
}
inline void raw_switch(FiberContext& from, FiberContext& to) {
  if (!from.impl) from.impl = new ucontext_t();
  swapcontext(static_cast<ucontext_t*>(from.impl), static_cast<ucontext_t*>(to.impl));
}
}  // namespace

void fiber_prepare(FiberContext& f, char* bottom, char* top, FiberEntry entry, void* arg) {
  if (!f.impl) f.impl = new ucontext_t();
  auto* uc = static_cast<ucontext_t*>(f.impl);
  getcontext(uc);
  uc->uc_stack.ss_sp = bottom;
  uc->uc_stack.ss_size = static_cast<size_t>(top - bottom);
  uc->uc_link = nullptr;
  f.entry = entry;
  f.arg = arg;
  const auto bits = reinterpret_cast<uintptr_t>(&f);
  makecontext(uc, reinterpret_cast<void (*)()>(ucontext_start), 2, static_cast<unsigned>(bits >> 32),
              static_cast<unsigned>(bits & 0xffffffffu));
  f.stack_bottom = bottom;
  f.stack_size = static_cast<size_t>(top - bottom);
}

#endif

void fiber_init_thread_context(FiberContext& f) {
#if defined(ASAP_EMU_ASAN)
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    f.stack_bottom = addr;
    f.stack_size = size;
  }
#else
  (void)f;
#endif
}

void fiber_switch(FiberContext& from, FiberContext& to) {
#if defined(ASAP_EMU_ASAN)
  __sanitizer_start_switch_fiber(&from.asan_fake_stack, to.stack_bottom, to.stack_size);
#endif
  raw_switch(from, to);
  fiber_after_switch(from);
}

void fiber_started() {
#if defined(ASAP_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

void fiber_after_switch(FiberContext& from) {
#if defined(ASAP_EMU_ASAN)
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#else
  (void)from;
#endif
}

}  // namespace cuda_emu
