// IDX files (MNIST, Fashion-MNIST): big-endian header, then uint8 payload.
//   idx3 images: magic 0x00000803, count, rows, cols, count*rows*cols pixels
//   idx1 labels: magic 0x00000801, count, count labels
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace asap::data {

constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;

struct IdxImages {
  std::vector<uint8_t> pixels;
  int64_t count = 0;
  int rows = 0, cols = 0;
};

// Parse an in-memory file; `name` is used in error messages. Every check throws asap::IoError
// "<name>: <what is wrong>": short header, wrong magic, payload shorter (truncated) or longer
// (trailing bytes) than the header declares.
IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& name);
// Also checks every label is in [0, num_classes).
std::vector<int32_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& name,
                                      int num_classes = 10);

// Reads an image file and its label file (raw or gzip) into a 1-channel Dataset; the two counts
// must agree.
Dataset load_idx(const std::string& images_path, const std::string& labels_path, int num_classes = 10);

}  // namespace asap::data
