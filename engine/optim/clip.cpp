#include "engine/optim/clip.h"

#include <cmath>
#include <string>
#include <utility>

#include "engine/error.h"
#include "engine/kernel_table.h"

namespace asap {
namespace {

// Defined grads of `params`, grouped by device in order of first appearance (normally one group).
std::vector<std::pair<Device, std::vector<Tensor>>> grads_by_device(const std::vector<Tensor>& params,
                                                                   bool need_contiguous) {
  std::vector<std::pair<Device, std::vector<Tensor>>> groups;
  for (const Tensor& p : params) {
    if (!p.defined()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!g.is_contiguous()) {
      ASAP_CHECK(!need_contiguous, "clip_grad_norm: gradients must be contiguous");
      g = g.contiguous();
    }
    const Device dev = g.device();
    size_t k = 0;
    while (k < groups.size() && groups[k].first != dev) ++k;
    if (k == groups.size()) groups.emplace_back(dev, std::vector<Tensor>{});
    groups[k].second.push_back(std::move(g));
  }
  return groups;
}

Device first_device(const std::vector<Tensor>& params) {
  for (const Tensor& p : params)
    if (p.defined()) return p.device();
  return Device::cpu();
}

Tensor norm_of(const Device& dev, const std::vector<Tensor>& grads) {
  Tensor out = Tensor::empty(Shape{}, DType::F64, dev);
  ASAP_KERNEL(dev, multi_l2_norm)(grads, out);
  return out;
}

}  // namespace

Tensor grad_norm_device(const std::vector<Tensor>& params) {
  auto groups = grads_by_device(params, false);
  ASAP_CHECK(groups.size() <= 1, "grad_norm_device: grads on ", groups.size(), " devices (",
             groups[0].first.str(), ", ", groups[1].first.str(), "); use grad_norm");
  if (groups.empty()) return norm_of(first_device(params), {});
  return norm_of(groups[0].first, groups[0].second);
}

Tensor clip_grad_norm_device(const std::vector<Tensor>& params, double max_norm) {
  auto groups = grads_by_device(params, true);
  ASAP_CHECK(groups.size() <= 1, "clip_grad_norm_device: grads on ", groups.size(), " devices (",
             groups[0].first.str(), ", ", groups[1].first.str(), "); use clip_grad_norm");
  if (groups.empty()) return norm_of(first_device(params), {});
  Tensor norm = norm_of(groups[0].first, groups[0].second);
  ASAP_KERNEL(groups[0].first, multi_clip_scale)(groups[0].second, norm, max_norm);
  return norm;
}

double grad_norm(const std::vector<Tensor>& params) {
  auto groups = grads_by_device(params, false);
  if (groups.size() == 1) return norm_of(groups[0].first, groups[0].second).item();
  double total_sq = 0.0;
  for (const auto& [dev, grads] : groups) {
    const double n = norm_of(dev, grads).item();
    total_sq += n * n;
  }
  return std::sqrt(total_sq);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, bool error_if_nonfinite) {
  auto groups = grads_by_device(params, true);
  double total = 0.0;
  if (groups.size() == 1) {
    // One device: the norm and the scaling run on it; the single read comes after both.
    Tensor norm = norm_of(groups[0].first, groups[0].second);
    ASAP_KERNEL(groups[0].first, multi_clip_scale)(groups[0].second, norm, max_norm);
    total = norm.item();
  } else if (groups.size() > 1) {
    double total_sq = 0.0;
    for (const auto& [dev, grads] : groups) {
      const double n = norm_of(dev, grads).item();
      total_sq += n * n;
    }
    total = std::sqrt(total_sq);
    // The global norm on every device, then the same device-side rule as above.
    for (auto& [dev, grads] : groups) {
      Tensor n = Tensor::scalar(total, DType::F64);  // F64 fill is CPU-only: copy it over
      if (dev != Device::cpu()) n = n.to(dev);
      ASAP_KERNEL(dev, multi_clip_scale)(grads, n, max_norm);
    }
  }
  if (error_if_nonfinite && !std::isfinite(total))
    throw NumericError("clip_grad_norm: the total gradient norm is " + std::to_string(total));
  return total;
}

}  // namespace asap
