// Controls and ground-truth counters of the CUDA emulator, for tests and tools built with
// ASAP_CUDA_EMU=ON. Settings start from the environment and may be changed between launches:
//   ASAP_EMU_SCHEDULE = fwd | rev | shuffle:SEED   order in which a block's threads run to their
//                       next collective (fwd: thread 0 first; rev: the last thread first)
//   ASAP_EMU_WORKERS  = N      OS threads running blocks (default 1: fully deterministic)
//   ASAP_EMU_SMS      = N      multiprocessor count the device reports (default 4, so grid-stride
//                              loops sized by SM count iterate more than once)
//   ASAP_EMU_DEVICE_MEMORY = bytes   device memory the emulated card has (default 16 GiB)
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace cuda_emu {

enum class Schedule { Forward, Reverse, Shuffle };

struct Options {
  Schedule schedule = Schedule::Forward;
  uint64_t shuffle_seed = 0;
  int workers = 1;
  int sm_count = 4;
  uint64_t device_memory = uint64_t(16) << 30;
};

Options& options();            // read from the environment on first use
void set_schedule(Schedule s, uint64_t seed = 0);
std::string schedule_name();   // "fwd", "rev", "shuffle:SEED"

// What the emulated runtime itself executed: the ground truth the backend's own counters
// (kernels/cuda/stats.h) are checked against.
struct Counters {
  uint64_t launches = 0;       // kernels run or recorded through a launch
  std::map<std::string, uint64_t> launches_by_kernel;
  uint64_t host_syncs = 0;     // stream, device and event synchronisations, blocking cudaMemcpy
  uint64_t bytes_h2d = 0, bytes_d2h = 0, bytes_d2d = 0;
  uint64_t blas_calls = 0;
  uint64_t graph_launches = 0;
  uint64_t graph_kernel_nodes_run = 0;
  uint64_t blocks = 0;         // blocks executed
  uint64_t live_allocations = 0;
  uint64_t live_device_bytes = 0;
};
Counters counters();
void reset_counters();

}  // namespace cuda_emu
