// Memory follows the workload: when a step of a new workload starts (a search re-plan; the train
// stage after a search), the caching allocator is marked, and at the next point where the host
// waits for the device anyway, the cache is trimmed to what the steps since the mark used
// (engine/storage.h, mark_memory_cache / trim_memory_cache). On a GPU the trim's cudaFree then
// adds no synchronisation of its own. Shared by the Searcher and the EvalTrainer.
#pragma once
#include <cstdint>

#include "engine/dtype.h"
#include "engine/storage.h"

namespace asap {

class CacheTrim {
 public:
  // Call at the start of every step with the workload's key (a plan version; any constant for a
  // workload that never changes): a new key marks the cache and arms one trim.
  void before_step(Device dev, uint64_t workload) {
    if (workload == workload_) return;
    mark_memory_cache(dev);
    workload_ = workload;
    pending_ = true;
  }
  // Call where the host has waited for the device, after at least one step: trims once per mark.
  void trim_if_pending(Device dev) {
    if (!pending_) return;
    trim_memory_cache(dev);
    pending_ = false;
  }

 private:
  uint64_t workload_ = ~uint64_t(0);  // the workload the cache was last marked for
  bool pending_ = false;              // marked and not trimmed yet
};

}  // namespace asap
