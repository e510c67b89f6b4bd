#include "data/cifar.h"

#include <algorithm>

#include "data/read_bytes.h"
#include "engine/error.h"

namespace asap::data {

namespace {

// label_offset: which byte of the record holds the label we keep (CIFAR-100: the fine one).
void parse_records(const std::vector<uint8_t>& bytes, const std::string& name, int record, int label_offset,
                   int num_classes, Dataset& out) {
  ASAP_CHECK_T(IoError, !bytes.empty(), name, ": empty file");
  ASAP_CHECK_T(IoError, bytes.size() % record == 0, name, ": size ", bytes.size(),
               " bytes is not a multiple of the ", record, "-byte record (",
               bytes.size() / record, " whole records and ", bytes.size() % record,
               " bytes left over): truncated or not a ", num_classes == 10 ? "CIFAR-10" : "CIFAR-100",
               " binary file");
  out.C = 3;
  out.H = 32;
  out.W = 32;
  out.num_classes = num_classes;
  size_t n = bytes.size() / record;
  size_t base_img = out.images.size();
  out.images.resize(base_img + n * kCifarPixels);
  out.labels.reserve(out.labels.size() + n);
  const int pixel_offset = record - kCifarPixels;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* r = bytes.data() + i * record;
    int32_t label = r[label_offset];
    ASAP_CHECK_T(IoError, label < num_classes, name, ": label ", label, " in record ", i,
                 " is out of range 0..", num_classes - 1);
    out.labels.push_back(label);
    std::copy(r + pixel_offset, r + record, out.images.begin() + base_img + i * kCifarPixels);
  }
}

}  // namespace

void parse_cifar10(const std::vector<uint8_t>& bytes, const std::string& name, Dataset& out) {
  parse_records(bytes, name, kCifar10Record, 0, 10, out);
}

void parse_cifar100(const std::vector<uint8_t>& bytes, const std::string& name, Dataset& out) {
  parse_records(bytes, name, kCifar100Record, 1, 100, out);
}

Dataset load_cifar10(const std::vector<std::string>& paths) {
  Dataset d;
  for (const auto& p : paths) parse_cifar10(read_file_bytes(p), base_name(p), d);
  return d;
}

Dataset load_cifar100(const std::vector<std::string>& paths) {
  Dataset d;
  for (const auto& p : paths) parse_cifar100(read_file_bytes(p), base_name(p), d);
  return d;
}

}  // namespace asap::data
