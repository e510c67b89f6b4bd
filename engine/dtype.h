// Element types and devices. float32 is the engine's type; float64 exists on the CPU only so that
// gradient checks can use central differences without float32 round-off swamping them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace asap {

enum class DType : uint8_t { F32, F64, I32 };  // I32: labels and argmax indices
enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const { return type == DeviceType::CPU ? "cpu" : "cuda:" + std::to_string(index); }
  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
};

// Parses "cpu", "cuda", "cuda:N"; throws asap::Error otherwise.
Device parse_device(const std::string& s);

inline size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }
inline const char* dtype_name(DType t) {
  return t == DType::F32 ? "float32" : t == DType::F64 ? "float64" : "int32";
}

}  // namespace asap
