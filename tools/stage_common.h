// Pieces shared by the search and train stages of asap_run: device choice, data loaders built
// from the config, checkpoints (safetensors + JSON state in the metadata) and run metrics.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/tensor.h"
#include "tools/config.h"

namespace asap::run {

// "auto": the first CUDA device when the backend is built and a device is present, else the CPU.
Device resolve_device(const std::string& name);
// Applies run.threads to OpenMP (0: leave the default, all cores).
void apply_threads(int threads);

// Loader options for a stage: batch size, seed, device, augmentation and normalisation.
data::LoaderOptions loader_options(const RunConfig& c, data::DatasetKind kind, int64_t batch_size,
                                   uint64_t seed, Device dev, bool train_augment, bool cutout = false);

// Checkpoint = one safetensors file: tensors, plus the JSON state in metadata["state"].
// Written atomically, so the file on disk is always the last complete checkpoint.
void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors,
                     const nlohmann::json& state);
// Loads and validates; throws asap::IoError naming the file when it is unreadable or incomplete.
std::pair<std::map<std::string, Tensor>, nlohmann::json> load_checkpoint(const std::string& path);

double peak_memory_mb(Device dev);
void reset_peak_memory(Device dev);

}  // namespace asap::run
