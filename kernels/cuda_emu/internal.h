// Declarations shared by the emulator's own translation units (not for kernels or tests).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda_emu/emulator.h"

namespace cuda_emu::detail {

// --- runtime.cpp: errors, memory registry, streams ---
void set_last_error(cudaError_t e);
[[noreturn]] void fault(const std::string& message);  // throws asap::DeviceError("CUDA emulator: ...")

enum class MemKind { None, Device, Pinned };
struct Region {
  MemKind kind = MemKind::None;
  uintptr_t base = 0;
  size_t size = 0;
  uint64_t id = 0;  // allocation number, for messages
};
// The live allocation holding [p, p + bytes) (bytes may be 0: p may then equal base + size).
Region find_region(const void* p, size_t bytes = 0);
std::string describe(const void* p);  // "device allocation #7 (4096 bytes) + 128", "host memory"
bool valid_stream(cudaStream_t s);

// --- counters (runtime.cpp) ---
void count_launch(const char* kernel);
void count_sync();
void count_copy_bytes(cudaMemcpyKind kind, size_t bytes);
void count_blas();
void count_blocks(uint64_t n);
void count_graph(uint64_t kernel_nodes);

// --- capture (graph.cpp) ---
// True when `s` is capturing: `node` is recorded into its graph instead of running now.
bool capture_if_active(cudaStream_t s, const char* what, std::function<void()> node);
// A synchronising or allocating call while any stream captures invalidates the capture.
cudaError_t capture_forbids(const char* what);

// --- block.cpp ---
struct Grid {
  const char* kernel;
  const char* file;
  int line;
  dim3 grid, block;
  size_t dynamic_shmem;
  std::function<void()> body;
};
void run_grid(const Grid& g);

}  // namespace cuda_emu::detail
