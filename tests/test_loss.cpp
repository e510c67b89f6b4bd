// Softmax with temperature and mean softmax cross-entropy: double references, numerical
// stability on large logits, and central-difference gradients in float64.
#include <cmath>

#include "tests/test_util.h"

using namespace asap;
using asap::test::check_gradients;
using asap::test::max_rel_error;
using asap::test::random_tensor;

namespace {

std::vector<double> softmax_ref(const std::vector<double>& x, int64_t R, int64_t K, double t) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < R; ++r) {
    double m = x[r * K];
    for (int64_t j = 1; j < K; ++j) m = std::max(m, x[r * K + j]);
    double s = 0;
    for (int64_t j = 0; j < K; ++j) s += std::exp((x[r * K + j] - m) / t);
    for (int64_t j = 0; j < K; ++j) y[r * K + j] = std::exp((x[r * K + j] - m) / t) / s;
  }
  return y;
}

Tensor make_labels(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

double xent_ref(const std::vector<double>& x, const std::vector<int32_t>& labels, int64_t K) {
  double total = 0;
  const int64_t N = static_cast<int64_t>(labels.size());
  for (int64_t n = 0; n < N; ++n) {
    double m = x[n * K];
    for (int64_t j = 1; j < K; ++j) m = std::max(m, x[n * K + j]);
    double s = 0;
    for (int64_t j = 0; j < K; ++j) s += std::exp(x[n * K + j] - m);
    total += m + std::log(s) - x[n * K + labels[n]];
  }
  return total / static_cast<double>(N);
}

}  // namespace

TEST_CASE("softmax with temperature matches the reference", "[loss]") {
  for (double t : {0.5, 1.0, 2.0}) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO("temperature " << t << " " << dtype_name(dt));
      const double tol = dt == DType::F32 ? 1e-6 : 1e-14;
      Tensor x2 = random_tensor({14, 8}, 1, dt, -3.0, 3.0);  // an alpha matrix
      Tensor y2 = ops::softmax(x2, t);
      REQUIRE(y2.shape() == x2.shape());
      CHECK(max_rel_error(y2.to_vector_f64(), softmax_ref(x2.to_vector_f64(), 14, 8, t)) < tol);
      Tensor x1 = random_tensor({7}, 2, dt, -3.0, 3.0);
      Tensor y1 = ops::softmax(x1, t);
      REQUIRE(y1.shape() == x1.shape());
      CHECK(max_rel_error(y1.to_vector_f64(), softmax_ref(x1.to_vector_f64(), 1, 7, t)) < tol);
      double s = 0;
      for (double v : y1.to_vector_f64()) s += v;
      CHECK(s == Approx(1.0).epsilon(1e-6));
    }
  }
}

TEST_CASE("softmax is stable for large logits and sharpens as the temperature falls", "[loss]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1000.f, 999.f, -1000.f}, Shape{3});
  auto y = ops::softmax(x, 0.5).to_vector();
  for (float v : y) REQUIRE(std::isfinite(v));
  CHECK(y[0] == Approx(1.0 / (1.0 + std::exp(-2.0))).epsilon(1e-6));
  CHECK(y[2] == 0.0f);
  Tensor a = Tensor::from_vector(std::vector<double>{0.3, 0.1, -0.2}, Shape{3});
  CHECK(ops::softmax(a, 0.5).to_vector_f64()[0] > ops::softmax(a, 2.0).to_vector_f64()[0]);
}

TEST_CASE("softmax gradients match central differences", "[loss]") {
  for (double t : {0.5, 2.0}) {
    INFO("temperature " << t);
    Tensor x2 = random_tensor({3, 5}, 3, DType::F64, -2.0, 2.0).set_requires_grad(true);
    check_gradients([t](const std::vector<Tensor>& in) { return ops::softmax(in[0], t); }, {x2});
    Tensor x1 = random_tensor({8}, 4, DType::F64, -2.0, 2.0).set_requires_grad(true);
    check_gradients([t](const std::vector<Tensor>& in) { return ops::softmax(in[0], t); }, {x1});
  }
}

TEST_CASE("cross_entropy matches the reference", "[loss]") {
  const std::vector<int32_t> lv = {3, 0, 9, 9, 4};
  Tensor labels = make_labels(lv);
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(dtype_name(dt));
    Tensor logits = random_tensor({5, 10}, 5, dt, -4.0, 4.0);
    Tensor loss = ops::cross_entropy(logits, labels);
    REQUIRE(loss.numel() == 1);
    REQUIRE(loss.ndim() == 0);
    CHECK(loss.item() == Approx(xent_ref(logits.to_vector_f64(), lv, 10)).epsilon(dt == DType::F32 ? 1e-6 : 1e-13));
  }
  // Batch 1 and huge logits: finite, and exactly the margin for a two-class problem.
  Tensor big = Tensor::from_vector(std::vector<float>{1000.f, 1010.f}, Shape{1, 2});
  Tensor l0 = ops::cross_entropy(big, make_labels({0}));
  CHECK(std::isfinite(l0.item()));
  CHECK(l0.item() == Approx(10.0 + std::log1p(std::exp(-10.0))).epsilon(1e-6));
}

TEST_CASE("cross_entropy gradients match central differences", "[loss]") {
  Tensor labels = make_labels({2, 0, 2});
  Tensor logits = random_tensor({3, 4}, 6, DType::F64, -2.0, 2.0).set_requires_grad(true);
  check_gradients([&](const std::vector<Tensor>& in) { return ops::cross_entropy(in[0], labels); }, {logits});
  // Behind another op, so the logits are not leaves.
  Tensor x = random_tensor({3, 4}, 7, DType::F64).set_requires_grad(true);
  check_gradients(
      [&](const std::vector<Tensor>& in) { return ops::cross_entropy(ops::mul_scalar(in[0], 3.0), labels); }, {x});
  // float32 gradient equals probs - onehot over N
  Tensor l32 = random_tensor({3, 4}, 8, DType::F32).set_requires_grad(true);
  backward(ops::cross_entropy(l32, labels));
  auto p = ops::softmax(l32.detach(), 1.0).to_vector_f64();
  const int32_t lab[3] = {2, 0, 2};
  for (int n = 0; n < 3; ++n) p[n * 4 + lab[n]] -= 1.0;
  for (double& v : p) v /= 3.0;
  CHECK(max_rel_error(l32.grad().to_vector_f64(), p) < 1e-6);
}

TEST_CASE("softmax and cross_entropy reject bad arguments", "[loss]") {
  Tensor x = random_tensor({2, 3}, 9, DType::F32);
  CHECK_THROWS_AS(ops::softmax(x, 0.0), ShapeError);
  CHECK_THROWS_AS(ops::softmax(random_tensor({2, 3, 4}, 10, DType::F32)), ShapeError);
  CHECK_THROWS_AS(ops::cross_entropy(x, make_labels({0})), ShapeError);      // wrong count
  CHECK_THROWS_AS(ops::cross_entropy(x, make_labels({0, 3})), ShapeError);   // label out of range
  CHECK_THROWS_AS(ops::cross_entropy(x, make_labels({-1, 0})), ShapeError);
  CHECK_THROWS_AS(ops::cross_entropy(x, Tensor::zeros({2}, DType::F32)), ShapeError);  // not int32
}
