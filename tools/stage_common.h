// Pieces shared by the search and train stages of asap_run: device choice, data loaders built
// from the config, the data sets (read once), checkpoints (tools/checkpoint.h) and run metrics.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/tensor.h"
#include "tools/checkpoint.h"
#include "tools/config.h"

namespace asap::run {

// "auto": the first CUDA device when the backend is built and a device is present, else the CPU.
Device resolve_device(const std::string& name);
// Applies run.threads to OpenMP (0: leave the default, all cores).
void apply_threads(int threads);

// One split of the config's data set, read once per process: the up-front checks and the stages
// share it. Throws asap::IoError naming the files.
std::shared_ptr<const data::Dataset> stage_dataset(const RunConfig& c, data::SplitKind split);

// Loader options for a stage: batch size, seed, device, augmentation and normalisation.
data::LoaderOptions loader_options(const RunConfig& c, data::DatasetKind kind, int64_t batch_size,
                                   uint64_t seed, Device dev, bool train_augment, bool cutout = false);

double peak_memory_mb(Device dev);
// What the device's caching allocator holds (in use + cached), in MiB: falls with the plan's live
// set once re-plans trim the cache (Searcher::step).
double reserved_memory_mb(Device dev);
// The process's resident set (Linux /proc/self/statm), in MiB; 0 where unknown.
double resident_memory_mb();
void reset_peak_memory(Device dev);

}  // namespace asap::run
