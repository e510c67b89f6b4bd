// A minimal protocol-buffers encoder (wire format only: varints, 64-bit, length-delimited and
// 32-bit fields), enough to write ONNX models and TensorBoard events without a protobuf
// dependency. Repeated scalars are written unpacked, which every proto2 and proto3 parser reads.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace asap::exporting {

class PbWriter {
 public:
  void varint_field(int field, uint64_t v) {
    tag(field, 0);
    varint(v);
  }
  void int64_field(int field, int64_t v) { varint_field(field, static_cast<uint64_t>(v)); }
  void float_field(int field, float v) {
    tag(field, 5);
    raw(&v, 4);  // little-endian hosts only (x86-64, aarch64), as the rest of the engine
  }
  void double_field(int field, double v) {
    tag(field, 1);
    raw(&v, 8);
  }
  void bytes_field(int field, const std::string& s) {
    tag(field, 2);
    varint(s.size());
    buf_ += s;
  }
  void bytes_field(int field, const void* p, size_t n) {
    tag(field, 2);
    varint(n);
    raw(p, n);
  }
  void message_field(int field, const PbWriter& m) { bytes_field(field, m.buf_); }
  const std::string& bytes() const { return buf_; }

 private:
  void tag(int field, int wire) { varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string buf_;
};

}  // namespace asap::exporting
