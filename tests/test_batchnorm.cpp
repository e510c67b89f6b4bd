// Batch norm: train/eval forward against a double reference, running-stat updates against
// hand-computed values, and central-difference gradients (affine on and off, both modes).
#include <cmath>

#include "tests/test_util.h"

using namespace asap;
using asap::test::check_gradients;
using asap::test::max_rel_error;
using asap::test::random_tensor;

namespace {

struct BnRef {
  std::vector<double> y, mean, var;  // var: biased (divides by N*HW)
};

// gamma/beta empty = affine off. stats_mean/var given = eval mode with those statistics.
BnRef bn_ref(const Tensor& x, const std::vector<double>& gamma, const std::vector<double>& beta,
             double eps, const std::vector<double>* stats_mean = nullptr,
             const std::vector<double>* stats_var = nullptr) {
  const auto xv = x.to_vector_f64();
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.numel() / (N * C);
  BnRef r;
  r.y.resize(xv.size());
  r.mean.assign(C, 0.0);
  r.var.assign(C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) r.mean[c] += xv[(n * C + c) * HW + i];
    r.mean[c] /= static_cast<double>(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double d = xv[(n * C + c) * HW + i] - r.mean[c];
        r.var[c] += d * d;
      }
    r.var[c] /= static_cast<double>(N * HW);
    const double m = stats_mean ? (*stats_mean)[c] : r.mean[c];
    const double v = stats_var ? (*stats_var)[c] : r.var[c];
    const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * C + c) * HW + i;
        r.y[j] = (xv[j] - m) / std::sqrt(v + eps) * g + b;
      }
  }
  return r;
}

const std::vector<Shape> kShapes = {{3, 5, 7, 9}, {1, 4, 5, 3}, {2, 3, 1, 1}, {6, 3}, {4, 16, 8, 8}};

}  // namespace

TEST_CASE("batch_norm train forward and running statistics match the reference", "[bn]") {
  for (const Shape& s : kShapes) {
    for (DType dt : {DType::F32, DType::F64}) {
      for (bool affine : {true, false}) {
        INFO("shape " << s.str() << " " << dtype_name(dt) << " affine " << affine);
        const int64_t C = s[1];
        Tensor x = random_tensor(s, 1, dt, -2.0, 3.0);
        Tensor gamma, beta;
        std::vector<double> gv, bv;
        if (affine) {
          gamma = random_tensor({C}, 2, dt, 0.5, 1.5);
          beta = random_tensor({C}, 3, dt);
          gv = gamma.to_vector_f64();
          bv = beta.to_vector_f64();
        }
        Tensor rm = random_tensor({C}, 4, dt);
        Tensor rv = random_tensor({C}, 5, dt, 0.5, 2.0);
        const auto rm0 = rm.to_vector_f64(), rv0 = rv.to_vector_f64();
        BatchNormParams bp;
        bp.momentum = 0.3;
        bp.eps = 1e-3;
        Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, true, bp);
        BnRef r = bn_ref(x, gv, bv, bp.eps);
        const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
        CHECK(max_rel_error(y.to_vector_f64(), r.y) < tol);
        // running = (1 - m) * running + m * batch, with the UNBIASED batch variance.
        const double M = static_cast<double>(x.numel() / C);
        std::vector<double> erm(C), erv(C);
        for (int64_t c = 0; c < C; ++c) {
          erm[c] = 0.7 * rm0[c] + 0.3 * r.mean[c];
          erv[c] = 0.7 * rv0[c] + 0.3 * r.var[c] * M / (M - 1.0);
        }
        CHECK(max_rel_error(rm.to_vector_f64(), erm) < tol);
        CHECK(max_rel_error(rv.to_vector_f64(), erv) < tol);
      }
    }
  }
}

TEST_CASE("batch_norm running statistics: hand-computed values", "[bn]") {
  // One channel, values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 6}, Shape{2, 1, 1, 2});
  Tensor rm = Tensor::from_vector(std::vector<double>{0.0}, Shape{1});
  Tensor rv = Tensor::from_vector(std::vector<double>{1.0}, Shape{1});
  ops::batch_norm(x, Tensor(), Tensor(), rm, rv, true);  // momentum 0.1
  CHECK(rm.item() == Approx(0.3).epsilon(1e-14));
  CHECK(rv.item() == Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-14));
  ops::batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  CHECK(rm.item() == Approx(0.9 * 0.3 + 0.3).epsilon(1e-14));
  CHECK(rv.item() == Approx(0.9 * (0.9 + 0.1 * 14.0 / 3.0) + 0.1 * 14.0 / 3.0).epsilon(1e-14));
  // Eval mode uses the running statistics and leaves them alone.
  Tensor y = ops::batch_norm(x, Tensor(), Tensor(), rm, rv, false);
  const double m = rm.item(), v = rv.item();
  auto yv = y.to_vector_f64();
  CHECK(yv[3] == Approx((6.0 - m) / std::sqrt(v + 1e-5)).epsilon(1e-12));
  CHECK(rm.item() == m);
}

TEST_CASE("batch_norm float32 statistics survive a large mean", "[bn]") {
  // |mean| / std ~ 2000: a naive E[x^2] - E[x]^2 in float32 would lose the variance entirely.
  Tensor x = random_tensor({8, 2, 6, 6}, 6, DType::F32, 999.0, 1001.0);
  Tensor rm = Tensor::zeros({2}, DType::F32), rv = Tensor::full({2}, 1.0, DType::F32);
  Tensor y = ops::batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  BnRef r = bn_ref(x, {}, {}, 1e-5);
  CHECK(max_rel_error(y.to_vector_f64(), r.y) < 1e-3);
}

TEST_CASE("batch_norm eval forward matches the reference", "[bn]") {
  for (const Shape& s : kShapes) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO("shape " << s.str() << " " << dtype_name(dt));
      const int64_t C = s[1];
      Tensor x = random_tensor(s, 7, dt);
      Tensor gamma = random_tensor({C}, 8, dt, 0.5, 1.5), beta = random_tensor({C}, 9, dt);
      Tensor rm = random_tensor({C}, 10, dt), rv = random_tensor({C}, 11, dt, 0.5, 2.0);
      const auto rmv = rm.to_vector_f64(), rvv = rv.to_vector_f64();
      Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, false);
      BnRef r = bn_ref(x, gamma.to_vector_f64(), beta.to_vector_f64(), 1e-5, &rmv, &rvv);
      CHECK(max_rel_error(y.to_vector_f64(), r.y) < (dt == DType::F32 ? 2e-6 : 1e-13));
      CHECK(rm.to_vector_f64() == rmv);
      CHECK(rv.to_vector_f64() == rvv);
    }
  }
}

TEST_CASE("batch_norm gradients match central differences", "[bn]") {
  for (const Shape& s : {Shape{3, 2, 3, 5}, Shape{1, 3, 3, 3}, Shape{5, 4}}) {
    const int64_t C = s[1];
    Tensor rm = Tensor::zeros({C}, DType::F64), rv = Tensor::full({C}, 1.0, DType::F64);
    for (bool training : {true, false}) {
      INFO("shape " << s.str() << " training " << training);
      Tensor x = random_tensor(s, 12, DType::F64, -1.0, 2.0).set_requires_grad(true);
      Tensor gamma = random_tensor({C}, 13, DType::F64, 0.5, 1.5).set_requires_grad(true);
      Tensor beta = random_tensor({C}, 14, DType::F64).set_requires_grad(true);
      Tensor erm = random_tensor({C}, 15, DType::F64), erv = random_tensor({C}, 16, DType::F64, 0.5, 2.0);
      Tensor& m = training ? rm : erm;
      Tensor& v = training ? rv : erv;
      // affine on: x, gamma, beta
      check_gradients(
          [&](const std::vector<Tensor>& in) { return ops::batch_norm(in[0], in[1], in[2], m, v, training); },
          {x, gamma, beta});
      // affine off: x only
      Tensor x2 = random_tensor(s, 17, DType::F64, -1.0, 2.0).set_requires_grad(true);
      check_gradients(
          [&](const std::vector<Tensor>& in) { return ops::batch_norm(in[0], Tensor(), Tensor(), m, v, training); },
          {x2});
      // gamma alone (x and beta constant) still gets its gradient.
      Tensor xc = random_tensor(s, 18, DType::F64);
      Tensor g2 = random_tensor({C}, 19, DType::F64, 0.5, 1.5).set_requires_grad(true);
      check_gradients([&](const std::vector<Tensor>& in) { return ops::batch_norm(xc, in[0], Tensor(), m, v, training); },
                      {g2});
    }
  }
}

TEST_CASE("batch_norm float32 backward agrees with float64", "[bn]") {
  Tensor x64 = random_tensor({4, 6, 7, 5}, 20, DType::F64, -1.0, 2.0);
  Tensor g64 = random_tensor({6}, 21, DType::F64, 0.5, 1.5);
  Tensor dy = random_tensor(x64.shape(), 22, DType::F64);
  std::vector<Tensor> grads[2];
  for (int k = 0; k < 2; ++k) {
    DType dt = k ? DType::F32 : DType::F64;
    Tensor x = x64.to(dt).set_requires_grad(true), g = g64.to(dt).set_requires_grad(true);
    Tensor b = Tensor::zeros({6}, dt).set_requires_grad(true);
    Tensor rm = Tensor::zeros({6}, dt), rv = Tensor::full({6}, 1.0, dt);
    backward(ops::batch_norm(x, g, b, rm, rv, true), dy.to(dt));
    grads[k] = {x.grad(), g.grad(), b.grad()};
  }
  for (int i = 0; i < 3; ++i) CHECK(max_rel_error(grads[1][i], grads[0][i]) < 2e-5);
}

TEST_CASE("batch_norm records one node only when something needs a gradient", "[bn]") {
  clear_tape();
  Tensor x = random_tensor({2, 3, 4, 4}, 23, DType::F32);
  Tensor rm = Tensor::zeros({3}, DType::F32), rv = Tensor::full({3}, 1.0, DType::F32);
  ops::batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  CHECK(tape_size() == 0);
  x.set_requires_grad(true);
  ops::batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  CHECK(tape_size() == 1);
  ops::batch_norm(x, Tensor(), Tensor(), rm, rv, false);
  CHECK(tape_size() == 2);
  clear_tape();
}

TEST_CASE("batch_norm rejects bad arguments", "[bn]") {
  Tensor x = random_tensor({2, 3, 4, 4}, 24, DType::F32);
  Tensor rm = Tensor::zeros({3}, DType::F32), rv = Tensor::full({3}, 1.0, DType::F32);
  Tensor bad = Tensor::zeros({4}, DType::F32);
  CHECK_THROWS_AS(ops::batch_norm(x, bad, Tensor(), rm, rv, true), ShapeError);
  CHECK_THROWS_AS(ops::batch_norm(x, Tensor(), Tensor(), bad, rv, true), ShapeError);
  CHECK_THROWS_AS(ops::batch_norm(x, Tensor::zeros({3}, DType::F64), Tensor(), rm, rv, true), ShapeError);
  CHECK_THROWS_AS(ops::batch_norm(random_tensor({1, 3}, 25, DType::F32), Tensor(), Tensor(), rm, rv, true),
                  ShapeError);  // one value per channel
  CHECK_THROWS_AS(ops::batch_norm(random_tensor({2, 3, 4}, 26, DType::F32), Tensor(), Tensor(), rm, rv, true),
                  ShapeError);
  Tensor none;
  CHECK_THROWS_AS(ops::batch_norm(x, Tensor(), Tensor(), none, none, false), ShapeError);  // eval needs stats
}
