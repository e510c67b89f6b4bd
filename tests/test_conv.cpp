// conv2d against a naive double-precision loop reference (forward, input and weight gradients),
// in float32 and float64, over the shapes the DARTS space produces and some awkward ones; plus
// central-difference gradient checks in float64.
#include <omp.h>

#include "tests/test_util.h"

using namespace asap;

namespace {

struct Geo {
  int64_t N, C, H, W, O, Cg, Og, KH, KW, Ho, Wo;
};

Geo geo(const Shape& xs, const Shape& ws, const Conv2dParams& p) {
  Geo g{xs[0], xs[1], xs[2], xs[3], ws[0], xs[1] / p.groups, ws[0] / p.groups, ws[2], ws[3], 0, 0};
  g.Ho = (g.H + 2 * p.padding - p.dilation * (g.KH - 1) - 1) / p.stride + 1;
  g.Wo = (g.W + 2 * p.padding - p.dilation * (g.KW - 1) - 1) / p.stride + 1;
  return g;
}

// Calls f(x_index, w_index, y_index) for every multiply of the convolution.
template <typename F>
void conv_loop(const Geo& g, const Conv2dParams& p, F f) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o) {
      const int64_t grp = o / g.Og;
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow)
          for (int64_t c = 0; c < g.Cg; ++c)
            for (int64_t i = 0; i < g.KH; ++i)
              for (int64_t j = 0; j < g.KW; ++j) {
                int64_t ih = oh * p.stride - p.padding + i * p.dilation;
                int64_t iw = ow * p.stride - p.padding + j * p.dilation;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                int64_t ci = grp * g.Cg + c;
                f(((n * g.C + ci) * g.H + ih) * g.W + iw, ((o * g.Cg + c) * g.KH + i) * g.KW + j,
                  ((n * g.O + o) * g.Ho + oh) * g.Wo + ow);
              }
    }
}

struct Case {
  const char* name;
  Shape x, w;
  Conv2dParams p;
  bool shifted = false;  // feed x[:, :, 1:, 1:] as a strided view (FactorizedReduce)
};

std::vector<Case> cases() {
  return {
      {"depthwise 3x3 s1", {3, 5, 7, 9}, {5, 1, 3, 3}, {1, 1, 1, 5}},
      {"depthwise 3x3 s2 odd", {1, 4, 9, 7}, {4, 1, 3, 3}, {2, 1, 1, 4}},
      {"depthwise 5x5 s1", {3, 3, 8, 7}, {3, 1, 5, 5}, {1, 2, 1, 3}},
      {"depthwise 5x5 s2 odd", {3, 3, 9, 11}, {3, 1, 5, 5}, {2, 2, 1, 3}},
      {"dil 3x3 d2 s1", {1, 4, 9, 9}, {4, 1, 3, 3}, {1, 2, 2, 4}},
      {"dil 3x3 d2 s2", {3, 4, 7, 9}, {4, 1, 3, 3}, {2, 2, 2, 4}},
      {"dil 5x5 d2 s1", {2, 3, 9, 8}, {3, 1, 5, 5}, {1, 4, 2, 3}},
      {"dil 5x5 d2 s2 odd", {3, 2, 11, 9}, {2, 1, 5, 5}, {2, 4, 2, 2}},
      // Even padded planes (28x28 with pad 1: every DARTS reduction at Fashion-MNIST size).
      {"depthwise 3x3 s2 even", {2, 3, 8, 8}, {3, 1, 3, 3}, {2, 1, 1, 3}},
      {"depthwise 5x5 s2 even", {2, 2, 10, 12}, {2, 1, 5, 5}, {2, 2, 1, 2}},
      {"dil 3x3 d2 s2 even", {2, 2, 12, 10}, {2, 1, 3, 3}, {2, 2, 2, 2}},
      {"dil 5x5 d2 s2 even", {1, 2, 14, 14}, {2, 1, 5, 5}, {2, 4, 2, 2}},
      {"depthwise 3x3 no pad", {2, 3, 6, 5}, {3, 1, 3, 3}, {1, 0, 1, 3}},
      {"1x1 s1 batch 1", {1, 6, 5, 7}, {4, 6, 1, 1}, {1, 0, 1, 1}},
      {"1x1 s1 batch 3", {3, 5, 4, 3}, {7, 5, 1, 1}, {1, 0, 1, 1}},
      {"1x1 s2 odd", {3, 4, 9, 7}, {3, 4, 1, 1}, {2, 0, 1, 1}},
      {"1x1 s2 shifted view", {3, 4, 8, 8}, {2, 4, 1, 1}, {2, 0, 1, 1}, true},
      {"1x1 s2 shifted view odd", {2, 3, 9, 7}, {2, 3, 1, 1}, {2, 0, 1, 1}, true},
      {"1x1 s1 shifted view", {2, 3, 6, 5}, {4, 3, 1, 1}, {1, 0, 1, 1}, true},
      {"1x1 padded", {2, 3, 4, 5}, {2, 3, 1, 1}, {1, 1, 1, 1}},
      {"stem 3x3", {3, 3, 10, 9}, {8, 3, 3, 3}, {1, 1, 1, 1}},
      {"stem 3x3 one channel", {1, 1, 7, 7}, {6, 1, 3, 3}, {1, 1, 1, 1}},
      {"3x3 s2 no pad", {2, 4, 9, 8}, {5, 4, 3, 3}, {2, 0, 1, 1}},
      {"grouped 3x3 g2", {3, 6, 7, 6}, {4, 3, 3, 3}, {1, 1, 1, 2}},
      {"grouped 3x3 g3 s2 d2", {2, 6, 9, 9}, {6, 2, 3, 3}, {2, 2, 2, 3}},
      {"depthwise multiplier 2", {2, 3, 6, 6}, {6, 1, 3, 3}, {1, 1, 1, 3}},
      // Tiny output planes (<= 16 outputs: samples batched in blocks, the last one short).
      {"aux 1x1 on 2x2, 5 blocks", {37, 6, 2, 2}, {10, 6, 1, 1}, {1, 0, 1, 1}},
      {"aux 2x2 to 1x1, 2 blocks", {37, 5, 2, 2}, {12, 5, 2, 2}, {1, 0, 1, 1}},
      {"3x3 s2 to 3x3, padded", {7, 3, 5, 5}, {4, 3, 3, 3}, {2, 1, 1, 1}},
      {"1x1 s2 shifted view to 4x4", {5, 3, 9, 9}, {2, 3, 1, 1}, {2, 0, 1, 1}, true},
  };
}

// Values of the (possibly shifted) input as a contiguous vector, and its shape.
std::vector<double> input_values(const std::vector<double>& full, const Case& c, Shape& shape) {
  if (!c.shifted) {
    shape = c.x;
    return full;
  }
  shape = {c.x[0], c.x[1], c.x[2] - 1, c.x[3] - 1};
  std::vector<double> v;
  for (int64_t n = 0; n < c.x[0]; ++n)
    for (int64_t ch = 0; ch < c.x[1]; ++ch)
      for (int64_t h = 1; h < c.x[2]; ++h)
        for (int64_t w = 1; w < c.x[3]; ++w) v.push_back(full[((n * c.x[1] + ch) * c.x[2] + h) * c.x[3] + w]);
  return v;
}

Tensor apply(const Case& c, const Tensor& x, const Tensor& w) {
  Tensor xin = c.shifted ? ops::narrow(ops::narrow(x, 2, 1, c.x[2] - 1), 3, 1, c.x[3] - 1) : x;
  return ops::conv2d(xin, w, c.p);
}

}  // namespace

TEST_CASE("conv2d matches a naive reference, forward and backward", "[conv]") {
  uint64_t seed = 100;
  for (const Case& c : cases()) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(c.name << " " << dtype_name(dt) << " x " << c.x.str() << " w " << c.w.str());
      seed += 3;
      Tensor x64 = test::random_tensor(c.x, seed), w64 = test::random_tensor(c.w, seed + 1);
      Tensor x = x64.to(dt), w = w64.to(dt);
      x.set_requires_grad(true);
      w.set_requires_grad(true);
      Tensor y = apply(c, x, w);

      Shape xs;
      std::vector<double> xv = input_values(x.to_vector_f64(), c, xs);
      std::vector<double> wv = w.to_vector_f64();
      Geo g = geo(xs, c.w, c.p);
      REQUIRE(y.shape() == Shape({g.N, g.O, g.Ho, g.Wo}));
      std::vector<double> yref(y.numel(), 0.0);
      conv_loop(g, c.p, [&](int64_t xi, int64_t wi, int64_t yi) { yref[yi] += xv[xi] * wv[wi]; });
      const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
      CHECK(test::max_rel_error(y.to_vector_f64(), yref) < tol);

      Tensor dy64 = test::random_tensor(y.shape(), seed + 2);
      std::vector<double> dyv = dy64.to_vector_f64();
      backward(y, dy64.to(dt));
      std::vector<double> dxref(xv.size(), 0.0), dwref(wv.size(), 0.0);
      conv_loop(g, c.p, [&](int64_t xi, int64_t wi, int64_t yi) {
        dxref[xi] += wv[wi] * dyv[yi];
        dwref[wi] += xv[xi] * dyv[yi];
      });
      Shape unused;
      std::vector<double> dxgot = input_values(x.grad().to_vector_f64(), c, unused);
      CHECK(test::max_rel_error(dxgot, dxref) < tol);
      if (c.shifted) {  // the row and column outside the view get no gradient
        std::vector<double> full = x.grad().to_vector_f64();
        double outside = 0;
        for (int64_t i = 0; i < x.numel(); ++i) {
          int64_t w_ = i % c.x[3], h_ = (i / c.x[3]) % c.x[2];
          if (h_ == 0 || w_ == 0) outside = std::max(outside, std::fabs(full[i]));
        }
        CHECK(outside == 0.0);
      }
      CHECK(test::max_rel_error(w.grad().to_vector_f64(), dwref) < tol);
    }
  }
}

TEST_CASE("conv2d gradients pass central differences in float64", "[conv]") {
  const std::vector<Case> small = {
      {"depthwise 3x3 s2", {2, 3, 5, 6}, {3, 1, 3, 3}, {2, 1, 1, 3}},
      {"dil 5x5 d2 s1", {1, 2, 7, 6}, {2, 1, 5, 5}, {1, 4, 2, 2}},
      {"1x1 s2 shifted view", {2, 3, 6, 5}, {2, 3, 1, 1}, {2, 0, 1, 1}, true},
      {"stem 3x3", {2, 2, 5, 4}, {3, 2, 3, 3}, {1, 1, 1, 1}},
      {"grouped g2 s2", {1, 4, 6, 5}, {4, 2, 3, 3}, {2, 1, 1, 2}},
  };
  uint64_t seed = 500;
  for (const Case& c : small) {
    INFO(c.name);
    seed += 2;
    Tensor x = test::random_tensor(c.x, seed), w = test::random_tensor(c.w, seed + 1);
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    test::check_gradients([&](const std::vector<Tensor>& in) { return apply(c, in[0], in[1]); }, {x, w});
  }
}

TEST_CASE("conv2d records one node and only what is asked for", "[conv]") {
  Tensor x = test::random_tensor({2, 3, 5, 5}, 7), w = test::random_tensor({3, 1, 3, 3}, 8);
  w.set_requires_grad(true);  // x is data: no input gradient
  clear_tape();
  Tensor y = ops::conv2d(x, w, {1, 1, 1, 3});
  CHECK(tape_size() == 1);
  backward(ops::sum(y));
  CHECK(w.grad().defined());
  CHECK_FALSE(x.grad().defined());
  {
    NoGradGuard ng;
    clear_tape();
    ops::conv2d(x, w, {1, 1, 1, 3});
    CHECK(tape_size() == 0);
  }
}

TEST_CASE("conv2d weight gradients do not depend on the thread count", "[conv]") {
  const int prev = omp_get_max_threads();
  auto run = [](int threads, const Conv2dParams& p, const Shape& ws) {
    omp_set_num_threads(threads);
    Tensor x = test::random_tensor({5, 6, 9, 9}, 21, DType::F32);
    Tensor w = test::random_tensor(ws, 22, DType::F32);
    w.set_requires_grad(true);
    Tensor y = ops::conv2d(x, w, p);
    backward(y, test::random_tensor(y.shape(), 23, DType::F32));
    return w.grad().to_vector();
  };
  for (auto [p, ws] : {std::pair<Conv2dParams, Shape>{{1, 1, 1, 6}, {6, 1, 3, 3}},
                       {{2, 0, 1, 1}, {4, 6, 1, 1}},
                       {{1, 1, 1, 1}, {4, 6, 3, 3}},
                       {{3, 0, 1, 1}, {4, 6, 3, 3}}})  // 3x3 output: the batched tiny path
    CHECK(run(1, p, ws) == run(3, p, ws));
  omp_set_num_threads(prev);
}

TEST_CASE("conv2d rejects mismatched shapes naming the op", "[conv]") {
  Tensor x = test::random_tensor({2, 4, 6, 6}, 1, DType::F32);
  CHECK_THROWS_AS(ops::conv2d(x, test::random_tensor({3, 3, 3, 3}, 2, DType::F32), {}), ShapeError);
  CHECK_THROWS_AS(ops::conv2d(x, test::random_tensor({4, 1, 3, 3}, 2, DType::F32), {1, 1, 1, 3}), ShapeError);
  CHECK_THROWS_AS(ops::conv2d(x, test::random_tensor({4, 4, 9, 9}, 2, DType::F32), {}), ShapeError);
  CHECK_THROWS_AS(ops::conv2d(x, test::random_tensor({4, 4, 3, 3}, 2, DType::F64), {}), ShapeError);
  try {
    ops::conv2d(x, test::random_tensor({3, 3, 3, 3}, 2, DType::F32), {});
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()).find("conv2d") != std::string::npos);
  }
}

// The gradient check itself must be able to fail: a conv whose backward is 1% off is caught.
TEST_CASE("gradient check catches a wrong conv gradient", "[conv][!shouldfail]") {
  Tensor x = test::random_tensor({1, 2, 4, 4}, 31), w = test::random_tensor({2, 1, 3, 3}, 32);
  x.set_requires_grad(true);
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor y = ops::conv2d(in[0], w, {1, 1, 1, 2});
    Tensor z = y.detach().clone();
    record("wrong_identity", z, {y}, [](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
      std::vector<double> v = g.to_vector_f64();
      for (double& e : v) e *= 1.01;
      gin[0] = Tensor::from_vector(v, g.shape());
    });
    return z;
  };
  test::check_gradients(f, {x});
}

// ops::relu_conv1x1 (the ReLU fused into the 1x1 conv of ReLUConvBN and FactorizedReduce) is the
// same arithmetic as relu then conv2d: forward and both gradients bit for bit, on contiguous inputs
// at stride 1 and 2 and on FactorizedReduce's shifted view; and its gradients pass central
// differences in float64.
TEST_CASE("relu_conv1x1 equals relu then conv2d bit for bit, and passes central differences", "[conv]") {
  struct FusedCase {
    const char* name;
    Shape x, w;
    int stride;
    bool shifted;
  };
  const std::vector<FusedCase> cs = {{"1x1 stride 1", {3, 6, 9, 7}, {5, 6, 1, 1}, 1, false},
                                     {"1x1 stride 2", {2, 5, 10, 9}, {4, 5, 1, 1}, 2, false},
                                     {"1x1 stride 2 on the shifted view", {2, 5, 10, 10}, {4, 5, 1, 1}, 2, true}};
  auto view = [](const Tensor& x, bool shifted) {
    return shifted ? ops::narrow(ops::narrow(x, 2, 1, x.dim(2) - 1), 3, 1, x.dim(3) - 1) : x;
  };
  uint64_t seed = 700;
  for (const FusedCase& c : cs)
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(c.name << " " << dtype_name(dt));
      seed += 4;
      auto run = [&](bool fused) {
        Tensor x = test::random_tensor(c.x, seed).to(dt), w = test::random_tensor(c.w, seed + 1).to(dt);
        x.set_requires_grad(true);
        w.set_requires_grad(true);
        Tensor v = view(x, c.shifted);
        Conv2dParams p;
        p.stride = c.stride;
        Tensor y = fused ? ops::relu_conv1x1(v, w, c.stride) : ops::conv2d(ops::relu(v), w, p);
        backward(y, test::random_tensor(y.shape(), seed + 2).to(dt));
        return std::vector<std::vector<double>>{y.to_vector_f64(), x.grad().to_vector_f64(),
                                                w.grad().to_vector_f64()};
      };
      const auto fused = run(true), unfused = run(false);
      CHECK(fused[0] == unfused[0]);
      CHECK(fused[1] == unfused[1]);
      CHECK(fused[2] == unfused[2]);
      if (dt == DType::F64) {
        Tensor x = test::random_tensor(c.x, seed + 3), w = test::random_tensor(c.w, seed + 1);
        x.set_requires_grad(true);
        w.set_requires_grad(true);
        test::check_gradients(
            [&](const std::vector<Tensor>& in) { return ops::relu_conv1x1(view(in[0], c.shifted), in[1], c.stride); },
            {x, w});
      }
    }
}

TEST_CASE("relu_conv1x1 records one node and rejects a kernel that is not 1x1", "[conv]") {
  Tensor x = test::random_tensor({2, 3, 6, 6}, 41, DType::F32), w = test::random_tensor({4, 3, 1, 1}, 42, DType::F32);
  w.set_requires_grad(true);
  clear_tape();
  Tensor y = ops::relu_conv1x1(x, w, 1);
  CHECK(tape_size() == 1);
  backward(ops::sum(y));
  CHECK(w.grad().defined());
  CHECK_FALSE(x.grad().defined());
  CHECK_THROWS_AS(ops::relu_conv1x1(x, test::random_tensor({4, 3, 3, 3}, 43, DType::F32), 1), ShapeError);
  CHECK_THROWS_AS(ops::relu_conv1x1(x, test::random_tensor({4, 2, 1, 1}, 44, DType::F32), 1), ShapeError);
}
