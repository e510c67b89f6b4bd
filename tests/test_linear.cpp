// linear and matmul against naive double loops (forward and gradients), float32 and float64,
// plus central-difference gradient checks in float64.
#include "tests/test_util.h"

using namespace asap;

namespace {

// y[n,o] = sum_i x[n,i] w[o,i] + b[o]
std::vector<double> ref_linear(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>* b, int64_t N, int64_t in, int64_t out) {
  std::vector<double> y(N * out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[n * in + i] * w[o * in + i];
      y[n * out + o] = s;
    }
  return y;
}

}  // namespace

TEST_CASE("linear matches a naive reference, forward and backward", "[linear]") {
  struct Case { int64_t N, in, out; bool bias; };
  uint64_t seed = 300;
  for (Case c : {Case{1, 5, 3, true}, Case{3, 7, 10, true}, Case{32, 64, 10, true}, Case{3, 4, 6, false},
                 Case{2, 300, 17, true}}) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO("N " << c.N << " in " << c.in << " out " << c.out << " bias " << c.bias << " " << dtype_name(dt));
      seed += 4;
      Tensor x = test::random_tensor({c.N, c.in}, seed).to(dt), w = test::random_tensor({c.out, c.in}, seed + 1).to(dt);
      Tensor b = c.bias ? test::random_tensor({c.out}, seed + 2).to(dt) : Tensor();
      x.set_requires_grad(true);
      w.set_requires_grad(true);
      if (c.bias) b.set_requires_grad(true);
      Tensor y = ops::linear(x, w, b);
      REQUIRE(y.shape() == Shape({c.N, c.out}));
      auto xv = x.to_vector_f64(), wv = w.to_vector_f64();
      std::vector<double> bv = c.bias ? b.to_vector_f64() : std::vector<double>();
      const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
      CHECK(test::max_rel_error(y.to_vector_f64(), ref_linear(xv, wv, c.bias ? &bv : nullptr, c.N, c.in, c.out)) < tol);

      Tensor dy = test::random_tensor(y.shape(), seed + 3);
      auto g = dy.to_vector_f64();
      backward(y, dy.to(dt));
      std::vector<double> dx(c.N * c.in, 0.0), dw(c.out * c.in, 0.0), db(c.out, 0.0);
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t o = 0; o < c.out; ++o) {
          db[o] += g[n * c.out + o];
          for (int64_t i = 0; i < c.in; ++i) {
            dx[n * c.in + i] += g[n * c.out + o] * wv[o * c.in + i];
            dw[o * c.in + i] += g[n * c.out + o] * xv[n * c.in + i];
          }
        }
      CHECK(test::max_rel_error(x.grad().to_vector_f64(), dx) < tol);
      CHECK(test::max_rel_error(w.grad().to_vector_f64(), dw) < tol);
      if (c.bias) CHECK(test::max_rel_error(b.grad().to_vector_f64(), db) < tol);
    }
  }
}

TEST_CASE("linear and matmul gradients pass central differences in float64", "[linear]") {
  Tensor x = test::random_tensor({3, 5}, 11), w = test::random_tensor({4, 5}, 12), b = test::random_tensor({4}, 13);
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  test::check_gradients([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); }, {x, w, b});
  test::check_gradients([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], Tensor()); }, {x, w});

  Tensor a = test::random_tensor({3, 6}, 14), m = test::random_tensor({6, 2}, 15);
  a.set_requires_grad(true);
  m.set_requires_grad(true);
  test::check_gradients([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); }, {a, m});
}

TEST_CASE("matmul matches a naive product in float32", "[linear]") {
  Tensor a = test::random_tensor({7, 9}, 21, DType::F32), b = test::random_tensor({9, 5}, 22, DType::F32);
  Tensor y = ops::matmul(a, b);
  auto av = a.to_vector_f64(), bv = b.to_vector_f64();
  std::vector<double> ref(7 * 5, 0.0);
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 5; ++j)
      for (int k = 0; k < 9; ++k) ref[i * 5 + j] += av[i * 9 + k] * bv[k * 5 + j];
  CHECK(test::max_rel_error(y.to_vector_f64(), ref) < 2e-5);
}

TEST_CASE("linear and matmul reject mismatched shapes", "[linear]") {
  Tensor x = test::random_tensor({3, 5}, 1, DType::F32);
  CHECK_THROWS_AS(ops::linear(x, test::random_tensor({4, 6}, 2, DType::F32), Tensor()), ShapeError);
  CHECK_THROWS_AS(ops::linear(x, test::random_tensor({4, 5}, 2, DType::F32), test::random_tensor({3}, 3, DType::F32)),
                  ShapeError);
  CHECK_THROWS_AS(ops::matmul(x, test::random_tensor({4, 2}, 2, DType::F32)), ShapeError);
}
