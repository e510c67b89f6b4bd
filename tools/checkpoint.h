// asap_run checkpoints: one safetensors file holding the tensors plus a JSON state in
// metadata["state"], a format tag and a CRC-32 over the state text and every tensor's name,
// dtype, shape and bytes. Every load checks the checksum and validates the state against the
// schema of its stage (types, ranges, sizes from the config) before anything uses it, so a
// corrupt or hand-edited checkpoint is one asap::IoError naming the file and the key or tensor.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"
#include "tools/config.h"

namespace asap::run {

// What the config says a checkpoint must describe.
struct CheckpointSchema {
  enum class Kind { Search, Train } kind = Kind::Search;
  int max_epoch = 0;                    // search.epochs or train.epochs
  std::vector<std::string> primitives;  // search: space.primitives (resolved)
  int edges = 0;                        // search: edges per cell (nodes * (nodes + 3) / 2)
};
CheckpointSchema search_schema(const RunConfig& c);
CheckpointSchema train_schema(const RunConfig& c);

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  nlohmann::json state;
};

// "crc32:xxxxxxxx" over the state text and, per tensor in name order, name, dtype, shape, bytes.
std::string checkpoint_checksum(const std::string& state, const std::map<std::string, Tensor>& tensors);

// Written atomically (temporary file, fsync, rename), with the format tag and checksum.
void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors,
                     const nlohmann::json& state);
// Loads, verifies the checksum and validates the state; throws asap::IoError naming the file.
Checkpoint load_checkpoint(const std::string& path, const CheckpointSchema& schema);

// Runs `load` (a network's load_state) and turns its complaints (a missing tensor, a shape that
// does not fit this network) into asap::IoError naming the checkpoint; device errors pass.
template <typename F>
void load_into_network(const std::string& path, F&& load) {
  try {
    load();
  } catch (const DeviceError&) {
    throw;
  } catch (const Error& e) {
    throw IoError(path + ": does not fit the network of this config: " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": checkpoint state: " + e.what());
  }
}

}  // namespace asap::run
