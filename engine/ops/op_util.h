// Argument checks shared by the op implementations.
#pragma once
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/kernel_table.h"
#include "engine/op_stats.h"
#include "engine/tensor.h"

namespace asap::ops::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what) {
  ASAP_CHECK_SHAPE(t.defined(), op, ": ", what, " is undefined");
}

// Same device and dtype for every defined tensor of one call.
inline void check_same(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return;
  ASAP_CHECK_SHAPE(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(),
                   " and ", b.device().str(), ")");
  ASAP_CHECK_SHAPE(a.dtype() == b.dtype(), op, ": mixed dtypes (", dtype_name(a.dtype()), " and ",
                   dtype_name(b.dtype()), ")");
}

inline void check_floating(const char* op, const Tensor& t) {
  ASAP_CHECK_SHAPE(t.dtype() != DType::I32, op, ": needs a floating tensor, got int32");
}

inline void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  ASAP_CHECK_SHAPE(a.shape() == b.shape(), op, ": shapes differ: ", a.shape().str(), " vs ", b.shape().str());
}

}  // namespace asap::ops::detail
