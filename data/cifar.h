// CIFAR-10 / CIFAR-100 "binary version" files: fixed-size records, no header.
//   CIFAR-10:  1 label byte, 3072 pixel bytes (3x32x32, channel-major: the R plane, G, B)
//   CIFAR-100: 1 coarse label byte, 1 fine label byte, 3072 pixel bytes; we use the fine label
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace asap::data {

constexpr int kCifarPixels = 3 * 32 * 32;
constexpr int kCifar10Record = 1 + kCifarPixels;
constexpr int kCifar100Record = 2 + kCifarPixels;

// Appends the records of one in-memory file to `out` (C/H/W/num_classes set on first use).
// Throws asap::IoError "<name>: ..." when the size is not a multiple of the record size or a
// label is out of range.
void parse_cifar10(const std::vector<uint8_t>& bytes, const std::string& name, Dataset& out);
void parse_cifar100(const std::vector<uint8_t>& bytes, const std::string& name, Dataset& out);

// Reads and concatenates files in order (e.g. data_batch_1..5.bin).
Dataset load_cifar10(const std::vector<std::string>& paths);
Dataset load_cifar100(const std::vector<std::string>& paths);

}  // namespace asap::data
