// Dtype dispatch for CPU kernels: every floating kernel is a template over float and double.
#pragma once
#include "engine/error.h"
#include "engine/tensor.h"

// Calls FN<float>(args...) or FN<double>(args...) by the dtype of tensor T.
#define ASAP_CPU_DISPATCH(T, FN, ...)                                                   \
  do {                                                                                  \
    switch ((T).dtype()) {                                                              \
      case ::asap::DType::F32: FN<float>(__VA_ARGS__); break;                           \
      case ::asap::DType::F64: FN<double>(__VA_ARGS__); break;                          \
      default: throw ::asap::Error(std::string(#FN ": unsupported dtype ") +             \
                                   ::asap::dtype_name((T).dtype()));                    \
    }                                                                                   \
  } while (0)

namespace asap::cpu {
// Parallelise only when the work pays for the fork/join (about 32K elements).
constexpr int64_t kParallelGrain = 1 << 15;
}  // namespace asap::cpu
