// drop_path: per-sample Bernoulli keep mask (Philox, drawn on the host so every backend gets the
// same mask for the same seed and offset) applied through the scale_per_sample kernel.
#include "engine/ops.h"
#include "engine/ops/op_util.h"
#include "engine/philox.h"

namespace asap::ops {
using namespace detail;

Tensor drop_path(const Tensor& x_in, double p, uint64_t seed, uint64_t offset) {
  const char* op = "drop_path";
  check_defined(op, x_in, "input");
  check_floating(op, x_in);
  ASAP_CHECK_SHAPE(p >= 0.0 && p < 1.0, op, ": drop probability must be in [0, 1), got ", p);
  ASAP_CHECK_SHAPE(x_in.ndim() >= 1, op, ": input must have a batch dimension, got ", x_in.shape().str());
  if (p == 0.0) return x_in;
  OpScope scope(op);
  const int64_t N = x_in.dim(0);
  const double keep_scale = 1.0 / (1.0 - p);
  Tensor s;
  if (x_in.dtype() == DType::F64) {
    std::vector<double> m(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n)
      m[n] = philox_uniform_at(seed, offset, static_cast<uint64_t>(n), 0.0, 1.0) >= p ? keep_scale : 0.0;
    s = Tensor::from_vector(m, Shape{N});
  } else {
    std::vector<float> m(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n)
      m[n] = philox_uniform_at(seed, offset, static_cast<uint64_t>(n), 0.0, 1.0) >= p
                 ? static_cast<float>(keep_scale)
                 : 0.0f;
    s = Tensor::from_vector(m, Shape{N});
  }
  if (x_in.device() != s.device()) s = s.to(x_in.device());
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

}  // namespace asap::ops
