// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the counter-based
// generator cuRAND and PyTorch use. Host/device inline so the CPU and CUDA backends produce the
// same numbers for the same (seed, counter): element i of a fill uses counter offset + i / 4.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ASAP_HD __host__ __device__ __forceinline__
#else
#define ASAP_HD inline
#endif

namespace asap {

struct Philox4 {
  uint32_t v[4];
};

ASAP_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Four 32-bit random words for (seed, counter).
ASAP_HD Philox4 philox4x32(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in (0, 1]: never 0, so log() in Box-Muller is safe.
ASAP_HD double philox_uniform01(uint32_t x) { return (static_cast<double>(x) + 1.0) * (1.0 / 4294967296.0); }

// Element i of a uniform fill [lo, hi).
ASAP_HD double philox_uniform_at(uint64_t seed, uint64_t offset, uint64_t i, double lo, double hi) {
  Philox4 r = philox4x32(seed, offset + i / 4);
  return lo + (hi - lo) * (1.0 - philox_uniform01(r.v[i % 4]));
}

// Element i of a standard normal fill (Box-Muller on word pairs of one Philox block).
ASAP_HD double philox_normal_at(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox4x32(seed, offset + i / 4);
  int lane = static_cast<int>(i % 4);
  int pair = lane / 2;
  double u1 = philox_uniform01(r.v[2 * pair]);
  double u2 = philox_uniform01(r.v[2 * pair + 1]);
  double rad = std::sqrt(-2.0 * std::log(u1));
  double ang = 6.283185307179586 * u2;
  return (lane % 2 == 0) ? rad * std::cos(ang) : rad * std::sin(ang);
}

}  // namespace asap
