#include "engine/optim/clip.h"

#include <cmath>
#include <map>
#include <tuple>

#include "engine/error.h"
#include "engine/kernel_table.h"

namespace asap {

double grad_norm(const std::vector<Tensor>& params) {
  // Sum of squares accumulated on each device so a GPU run reads back one number per group
  // rather than synchronising once per tensor (a DARTS supernet has hundreds of them).
  std::map<std::tuple<int, int, int>, Tensor> acc;
  for (const Tensor& p : params) {
    if (!p.defined()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!g.is_contiguous()) g = g.contiguous();
    const Device dev = g.device();
    const auto key = std::make_tuple(static_cast<int>(dev.type), dev.index, static_cast<int>(g.dtype()));
    Tensor tmp = Tensor::empty(Shape{}, g.dtype(), dev);
    ASAP_KERNEL(dev, sum_sq)(g, tmp);
    auto it = acc.find(key);
    if (it == acc.end())
      acc.emplace(key, tmp);
    else
      ASAP_KERNEL(dev, axpy)(1.0, tmp, it->second);
  }
  double total_sq = 0.0;
  for (const auto& [key, a] : acc) total_sq += a.item();
  return std::sqrt(total_sq);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite) {
  const double total = grad_norm(params);
  if (error_if_nonfinite && !std::isfinite(total))
    throw NumericError("clip_grad_norm: the total gradient norm is " + std::to_string(total));
  const double coef = max_norm / (total + 1e-6);
  // PyTorch multiplies by min(coef, 1); skipping the multiply by exactly 1 changes nothing.
  if (!(coef < 1.0) && std::isfinite(total)) return total;
  for (const Tensor& p : params) {
    if (!p.defined()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    ASAP_CHECK(g.is_contiguous(), "clip_grad_norm: gradients must be contiguous");
    ASAP_KERNEL(g.device(), mul_scalar)(g, coef, g);  // elementwise, safe in place
  }
  return total;
}

}  // namespace asap
