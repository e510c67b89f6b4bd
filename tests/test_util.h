// Shared test helpers: random tensors, error metrics and the central-difference gradient check.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace asap::test {

// Uniform in [lo, hi) from a fixed seed: never all zeros, different per seed.
inline Tensor random_tensor(const Shape& s, uint64_t seed, DType dt = DType::F64, double lo = -1.0,
                            double hi = 1.0) {
  Tensor t = Tensor::empty(s, dt);
  Generator g(seed);
  g.uniform_(t, lo, hi);
  return t;
}

// max |a-b| / max(1, |b|) elementwise: relative where values are large, absolute where small.
inline double max_rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i)
    e = std::max(e, std::fabs(a[i] - b[i]) / std::max(1.0, std::fabs(b[i])));
  return e;
}
inline double max_rel_error(const Tensor& a, const Tensor& b) {
  return max_rel_error(a.to_vector_f64(), b.to_vector_f64());
}

// Largest relative error between the engine's gradient of sum(f(inputs) * R) and central
// differences, over every input with requires_grad, in float64. R is a fixed random projection so
// every output element matters (a plain sum would hide errors that cancel). f must be
// deterministic.
inline double max_gradient_error(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                 std::vector<Tensor> inputs, double eps = 1e-6) {
  for (auto& t : inputs) REQUIRE(t.dtype() == DType::F64);
  Tensor proj;
  {
    NoGradGuard ng;
    proj = random_tensor(f(inputs).shape(), 987654321ULL, DType::F64, -1.0, 1.0);
  }
  const std::vector<double> pv = proj.to_vector_f64();
  auto objective = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    auto ov = f(in).to_vector_f64();
    double s = 0;
    for (size_t i = 0; i < ov.size(); ++i) s += ov[i] * pv[i];
    return s;
  };
  for (auto& t : inputs)
    if (t.requires_grad()) t.zero_grad();
  backward(f(inputs), proj);  // analytic: incoming gradient R
  double worst = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    INFO("input " << k << " shape " << x.shape().str());
    REQUIRE(x.grad().defined());
    REQUIRE(x.is_contiguous());
    std::vector<double> analytic = x.grad().to_vector_f64();
    std::vector<double> numeric(analytic.size());
    double* p = x.data<double>();
    for (size_t i = 0; i < numeric.size(); ++i) {
      const double orig = p[i];
      p[i] = orig + eps;
      const double fp = objective(inputs);
      p[i] = orig - eps;
      const double fm = objective(inputs);
      p[i] = orig;
      numeric[i] = (fp - fm) / (2 * eps);
    }
    worst = std::max(worst, max_rel_error(analytic, numeric));
  }
  return worst;
}

inline void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, double eps = 1e-6, double tol = 1e-6) {
  const double err = max_gradient_error(f, std::move(inputs), eps);
  INFO("max relative gradient error " << err << " (limit " << tol << ")");
  CHECK(err < tol);
}

}  // namespace asap::test
