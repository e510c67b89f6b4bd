// drop_path: per-sample Bernoulli keep mask applied through the scale_per_sample kernel. The mask
// is drawn on the input's device by the drop_path_mask kernel (Philox, identical on every backend)
// from a counter base and p held in device memory, so a captured CUDA graph draws fresh masks at
// every replay; the caller advances the base once per step (counter_advance).
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace asap::ops {
using namespace detail;

Tensor drop_path(const Tensor& x_in, double p, const Tensor& state, uint64_t seed, uint64_t delta, uint64_t first) {
  const char* op = "drop_path";
  check_defined(op, x_in, "input");
  check_floating(op, x_in);
  ASAP_CHECK_SHAPE(p >= 0.0 && p < 1.0, op, ": drop probability must be in [0, 1), got ", p);
  ASAP_CHECK_SHAPE(x_in.ndim() >= 1, op, ": input must have a batch dimension, got ", x_in.shape().str());
  ASAP_CHECK_SHAPE(state.defined() && state.dtype() == DType::F64 && state.numel() == 2 &&
                       state.device() == x_in.device(),
                   op, ": state must be a float64 [2] tensor {counter, p} on the input's device");
  if (p == 0.0) return x_in;
  OpScope scope(op);
  Tensor s = Tensor::empty(Shape{x_in.dim(0)}, x_in.dtype(), x_in.device());
  ASAP_KERNEL(x_in.device(), drop_path_mask)(state, seed, delta, first, s);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty_like(x);
  ASAP_KERNEL(x.device(), scale_per_sample)(x, s, y);
  record(op, y, {x_in}, [s](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    OpScope bscope("drop_path_bwd");
    Tensor dy = g.contiguous();
    Tensor dx = Tensor::empty_like(dy);
    ASAP_KERNEL(dy.device(), scale_per_sample)(dy, s, dx);
    gin[0] = dx;
  });
  return y;
}

Tensor drop_path(const Tensor& x, double p, uint64_t seed, uint64_t offset) {
  Tensor state = Tensor::from_vector(std::vector<double>{static_cast<double>(offset), p}, Shape{2});
  if (x.defined() && x.device() != state.device()) state = state.to(x.device());
  return drop_path(x, p, state, seed, 0);
}

}  // namespace asap::ops
