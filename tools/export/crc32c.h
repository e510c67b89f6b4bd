// CRC-32C (Castagnoli), as TFRecord framing needs, and TensorFlow's masked form of it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace asap::exporting {

uint32_t crc32c(const void* data, size_t n);
// TFRecord stores ((crc >> 15) | (crc << 17)) + 0xa282ead8 so that a CRC of data holding CRCs
// stays well distributed.
inline uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

}  // namespace asap::exporting
