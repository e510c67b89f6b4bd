// Shared by the CUDA test files: the device guard and the relative error every CUDA-vs-CPU
// comparison states its tolerance in.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "engine/storage.h"
#include "engine/tensor.h"
#include "kernels/cuda/device.h"

namespace asap::test {

inline bool cuda_ready() { return backend_available(DeviceType::CUDA) && cuda::device_count() > 0; }

// ||got - ref|| / ||ref|| over all elements (||got - ref|| when ref is zero); a non-finite
// element of got gives infinity, so NaN never passes.
inline double rel_l2(const Tensor& got, const Tensor& ref) {
  const std::vector<double> a = got.to_vector_f64(), b = ref.to_vector_f64();
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

}  // namespace asap::test

// Without a device a CUDA case WARNs "SKIPPED: no CUDA device" (counted by .ci/run in the CUDA
// build) and returns. The emulation build always has its device: there a skip would hide every
// CUDA test, so it fails instead.
#if defined(ASAP_CUDA_EMU)
#define ASAP_SKIP_WITHOUT_CUDA() REQUIRE(::asap::test::cuda_ready())
#else
#define ASAP_SKIP_WITHOUT_CUDA()             \
  do {                                       \
    if (!::asap::test::cuda_ready()) {       \
      WARN("SKIPPED: no CUDA device");       \
      return;                                \
    }                                        \
  } while (0)
#endif
