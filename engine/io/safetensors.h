// safetensors files (https://github.com/huggingface/safetensors), the checkpoint format:
//   u64 little-endian N | N bytes of JSON header | data section.
// Header: {"<name>": {"dtype": "F32"|"F64"|"I32", "shape": [...], "data_offsets": [b, e]}, ...,
// "__metadata__": {"<key>": "<string>"}}; offsets are relative to the data section, which must be
// covered exactly (no gaps, no overlaps) as the spec requires. We write the header padded with
// spaces so the data starts 8-byte aligned, tensors in the given order.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace asap {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensorList tensors;  // in header order (= write order for our files); CPU tensors
  std::map<std::string, std::string> metadata;

  bool has(const std::string& name) const;
  const Tensor& get(const std::string& name) const;  // throws asap::IoError when absent
  std::map<std::string, Tensor> as_map() const;
};

// Writes atomically: a temporary file in the same folder, fsync, rename over `path`, fsync of
// the folder; a crash leaves either the old file or the new one, never a torn one. Tensors on a
// device (or strided) are copied to packed host memory. Throws asap::IoError on failure or on
// duplicate/reserved names.
void save_safetensors(const std::string& path, const NamedTensorList& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates a file; throws asap::IoError naming the file and the problem.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace asap
