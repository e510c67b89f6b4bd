// Mixed-op weighted sum (one tape node, gradients to every input and every weight) and channel
// concat: double references, chunk/thread boundaries, determinism, central-difference gradients.
#include "tests/test_util.h"

using namespace asap;
using asap::test::check_gradients;
using asap::test::max_rel_error;
using asap::test::random_tensor;

namespace {

std::vector<Tensor> random_inputs(int K, const Shape& s, DType dt, uint64_t seed) {
  std::vector<Tensor> xs;
  for (int k = 0; k < K; ++k) xs.push_back(random_tensor(s, seed + k, dt));
  return xs;
}

std::vector<double> wsum_ref(const std::vector<Tensor>& xs, const std::vector<double>& w) {
  std::vector<double> y(xs[0].numel(), 0.0);
  for (size_t k = 0; k < xs.size(); ++k) {
    auto xv = xs[k].to_vector_f64();
    for (size_t i = 0; i < y.size(); ++i) y[i] += w[k] * xv[i];
  }
  return y;
}

}  // namespace

TEST_CASE("weighted_sum forward matches the reference", "[mixed]") {
  // 2*16*33*31 = 32736 and 3*16*32*33 = 50688: below and above the parallel threshold, neither a
  // multiple of the chunk size.
  const std::vector<Shape> shapes = {{1, 2, 3, 5}, {3, 5, 7, 7}, {2, 16, 33, 31}, {3, 16, 32, 33}, {7}};
  for (const Shape& s : shapes) {
    for (int K : {1, 3, 8}) {
      for (DType dt : {DType::F32, DType::F64}) {
        INFO("shape " << s.str() << " K " << K << " " << dtype_name(dt));
        auto xs = random_inputs(K, s, dt, 100);
        Tensor w = random_tensor({K}, 7, dt, 0.0, 1.0);
        Tensor y = ops::weighted_sum(xs, w);
        REQUIRE(y.shape() == s);
        CHECK(max_rel_error(y.to_vector_f64(), wsum_ref(xs, w.to_vector_f64())) <
              (dt == DType::F32 ? 2e-6 : 1e-14));
      }
    }
  }
}

TEST_CASE("weighted_sum backward matches the reference and is deterministic", "[mixed]") {
  const Shape s{3, 16, 32, 33};
  const int K = 5;
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(dtype_name(dt));
    auto xs = random_inputs(K, s, dt, 200);
    for (auto& x : xs) x.set_requires_grad(true);
    Tensor w = random_tensor({K}, 8, dt, 0.0, 1.0).set_requires_grad(true);
    Tensor dy = random_tensor(s, 9, dt);
    backward(ops::weighted_sum(xs, w), dy);
    auto dyv = dy.to_vector_f64();
    auto wv = w.to_vector_f64();
    std::vector<double> dw_ref(K, 0.0);
    for (int k = 0; k < K; ++k) {
      auto xv = xs[k].to_vector_f64();
      for (size_t i = 0; i < xv.size(); ++i) dw_ref[k] += xv[i] * dyv[i];
      std::vector<double> dx_ref(dyv.size());
      for (size_t i = 0; i < dyv.size(); ++i) dx_ref[i] = wv[k] * dyv[i];
      CHECK(max_rel_error(xs[k].grad().to_vector_f64(), dx_ref) < (dt == DType::F32 ? 1e-7 : 1e-15));
    }
    // dw is accumulated in double even for float32 inputs: only the final rounding remains.
    CHECK(max_rel_error(w.grad().to_vector_f64(), dw_ref) < (dt == DType::F32 ? 1e-6 : 1e-12));
    // Same inputs, same bits: the chunk partials are summed in a fixed order.
    auto first = w.grad().to_vector_f64();
    w.zero_grad();
    backward(ops::weighted_sum(xs, w), dy);
    CHECK(w.grad().to_vector_f64() == first);
  }
}

TEST_CASE("weighted_sum is one tape node with gradients to every input and weight", "[mixed]") {
  clear_tape();
  auto xs = random_inputs(4, {2, 3, 5, 5}, DType::F32, 300);
  Tensor w = random_tensor({4}, 10, DType::F32).set_requires_grad(true);
  for (auto& x : xs) x.set_requires_grad(true);
  ops::weighted_sum(xs, w);
  CHECK(tape_size() == 1);
  clear_tape();

  for (int K : {1, 3, 8}) {
    INFO("K " << K);
    auto in = random_inputs(K, {3, 2, 3, 5}, DType::F64, 400);
    in.push_back(random_tensor({K}, 11, DType::F64));
    for (auto& t : in) t.set_requires_grad(true);
    check_gradients(
        [K](const std::vector<Tensor>& v) {
          return ops::weighted_sum(std::vector<Tensor>(v.begin(), v.begin() + K), v[K]);
        },
        in);
  }
  // Only some inputs need a gradient, weights fixed: the others get none.
  auto in = random_inputs(3, {1, 3, 4, 3}, DType::F64, 500);
  Tensor wfix = random_tensor({3}, 12, DType::F64);
  in[1].set_requires_grad(true);
  check_gradients([wfix](const std::vector<Tensor>& v) { return ops::weighted_sum(v, wfix); }, in);
  CHECK_FALSE(in[0].grad().defined());
  // Weights only (the alpha step): inputs are constants.
  auto xs2 = random_inputs(3, {2, 2, 3, 3}, DType::F64, 600);
  Tensor w2 = random_tensor({3}, 13, DType::F64).set_requires_grad(true);
  check_gradients([xs2](const std::vector<Tensor>& v) { return ops::weighted_sum(xs2, v[0]); }, {w2});
  // Through a temperature softmax, as the mixed op uses it.
  Tensor alpha = random_tensor({3}, 14, DType::F64).set_requires_grad(true);
  check_gradients([xs2](const std::vector<Tensor>& v) { return ops::weighted_sum(xs2, ops::softmax(v[0], 0.7)); },
                  {alpha});
}

TEST_CASE("weighted_sum rejects bad arguments", "[mixed]") {
  auto xs = random_inputs(2, {2, 3, 4, 4}, DType::F32, 700);
  CHECK_THROWS_AS(ops::weighted_sum({}, Tensor::zeros({0}, DType::F32)), ShapeError);
  CHECK_THROWS_AS(ops::weighted_sum(xs, Tensor::zeros({3}, DType::F32)), ShapeError);
  CHECK_THROWS_AS(ops::weighted_sum(xs, Tensor::zeros({2}, DType::F64)), ShapeError);
  xs[1] = random_tensor({2, 3, 4, 5}, 701, DType::F32);
  CHECK_THROWS_AS(ops::weighted_sum(xs, Tensor::zeros({2}, DType::F32)), ShapeError);
}

TEST_CASE("concat_channels matches the reference and its gradients", "[mixed]") {
  for (DType dt : {DType::F32, DType::F64}) {
    std::vector<Tensor> xs = {random_tensor({3, 2, 5, 7}, 800, dt), random_tensor({3, 1, 5, 7}, 801, dt),
                              random_tensor({3, 4, 5, 7}, 802, dt)};
    Tensor y = ops::concat_channels(xs);
    REQUIRE(y.shape() == Shape{3, 7, 5, 7});
    auto yv = y.to_vector_f64();
    int64_t c0 = 0;
    for (const Tensor& x : xs) {
      auto xv = x.to_vector_f64();
      const int64_t C = x.dim(1);
      for (int64_t n = 0; n < 3; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < 35; ++i) REQUIRE(yv[(n * 7 + c0 + c) * 35 + i] == xv[(n * C + c) * 35 + i]);
      c0 += C;
    }
  }
  // A non-contiguous input (a spatial slice) is packed first.
  Tensor base = random_tensor({2, 3, 4, 6}, 803, DType::F64);
  Tensor y2 = ops::concat_channels({base.narrow(3, 1, 4), random_tensor({2, 1, 4, 4}, 804)});
  CHECK(y2.narrow(1, 0, 3).contiguous().to_vector_f64() == base.narrow(3, 1, 4).contiguous().to_vector_f64());

  std::vector<Tensor> in = {random_tensor({1, 2, 3, 5}, 805), random_tensor({1, 3, 3, 5}, 806),
                            random_tensor({1, 1, 3, 5}, 807)};
  in[0].set_requires_grad(true);
  in[2].set_requires_grad(true);
  check_gradients([](const std::vector<Tensor>& v) { return ops::concat_channels(v); }, in);
  std::vector<Tensor> in2 = {random_tensor({3, 2}, 808), random_tensor({3, 5}, 809)};  // [N,C]
  for (auto& t : in2) t.set_requires_grad(true);
  check_gradients([](const std::vector<Tensor>& v) { return ops::concat_channels(v); }, in2);

  CHECK_THROWS_AS(ops::concat_channels({random_tensor({2, 3, 4, 4}, 1), random_tensor({2, 3, 4, 5}, 2)}),
                  ShapeError);
  CHECK_THROWS_AS(ops::concat_channels({random_tensor({2, 3, 4, 4}, 1), random_tensor({3, 3, 4, 4}, 2)}),
                  ShapeError);
}
