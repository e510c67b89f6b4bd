#include "data/idx.h"

#include <cstdio>

#include "data/read_bytes.h"
#include "engine/error.h"

namespace asap::data {

namespace {

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

void check_magic(const std::vector<uint8_t>& bytes, size_t header, uint32_t expected, const char* what,
                 const std::string& name) {
  ASAP_CHECK_T(IoError, bytes.size() >= header, name, ": truncated header: ", what, " needs ", header,
               " header bytes but the file holds ", bytes.size());
  uint32_t magic = read_be32(bytes.data());
  ASAP_CHECK_T(IoError, magic == expected, name, ": bad magic ", hex32(magic), " (expected ",
               hex32(expected), " for ", what, ")");
}

}  // namespace

IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& name) {
  check_magic(bytes, 16, kIdxImagesMagic, "an idx3 image file", name);
  IdxImages out;
  out.count = read_be32(bytes.data() + 4);
  uint32_t rows = read_be32(bytes.data() + 8), cols = read_be32(bytes.data() + 12);
  // Guards the int conversion and absurd headers before any size arithmetic.
  ASAP_CHECK_T(IoError, rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536, name,
               ": implausible image size ", rows, "x", cols, " in header");
  out.rows = static_cast<int>(rows);
  out.cols = static_cast<int>(cols);
  uint64_t expected = uint64_t(out.count) * rows * cols;
  uint64_t actual = bytes.size() - 16;
  ASAP_CHECK_T(IoError, actual >= expected, name, ": truncated: header declares ", out.count,
               " images of ", rows, "x", cols, " but file holds ", actual, " bytes of pixel data (expected ",
               expected, ")");
  ASAP_CHECK_T(IoError, actual == expected, name, ": trailing bytes: header declares ", out.count,
               " images of ", rows, "x", cols, " (", expected, " bytes) but file holds ", actual,
               " bytes of pixel data");
  out.pixels.assign(bytes.begin() + 16, bytes.end());
  return out;
}

std::vector<int32_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& name,
                                      int num_classes) {
  check_magic(bytes, 8, kIdxLabelsMagic, "an idx1 label file", name);
  uint64_t count = read_be32(bytes.data() + 4);
  uint64_t actual = bytes.size() - 8;
  ASAP_CHECK_T(IoError, actual >= count, name, ": truncated: header declares ", count,
               " labels but file holds ", actual);
  ASAP_CHECK_T(IoError, actual == count, name, ": trailing bytes: header declares ", count,
               " labels but file holds ", actual);
  std::vector<int32_t> labels(count);
  for (uint64_t i = 0; i < count; ++i) {
    int32_t v = bytes[8 + i];
    ASAP_CHECK_T(IoError, v < num_classes, name, ": label ", v, " at index ", i, " is out of range 0..",
                 num_classes - 1);
    labels[i] = v;
  }
  return labels;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path, int num_classes) {
  IdxImages im = parse_idx_images(read_file_bytes(images_path), base_name(images_path));
  std::vector<int32_t> labels = parse_idx_labels(read_file_bytes(labels_path), base_name(labels_path), num_classes);
  ASAP_CHECK_T(IoError, static_cast<int64_t>(labels.size()) == im.count, base_name(images_path),
               ": count mismatch: ", im.count, " images but ", base_name(labels_path), " holds ",
               labels.size(), " labels");
  Dataset d;
  d.images = std::move(im.pixels);
  d.labels = std::move(labels);
  d.C = 1;
  d.H = im.rows;
  d.W = im.cols;
  d.num_classes = num_classes;
  return d;
}

}  // namespace asap::data
