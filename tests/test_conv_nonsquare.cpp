// Non-square convolution kernels (kh != kw: the 1x7 and 7x1 of conv_7x1_1x7) on the CPU against a
// naive double loop, central-difference gradients, and the conv_7x1_1x7 primitive against the
// DARTS definition (stride (1, s) / (s, 1), padding (0, 3) / (3, 0)) written out as loops.
#include "tests/test_util.h"

#include "engine/autograd.h"
#include "nas/layers.h"
#include "nas/primitives.h"

using namespace asap;

namespace {

// y[n,o,oh,ow] = sum x[n, g*Cg+c, oh*sh - ph + i*d, ow*sw - pw + j*d] * w[o,c,i,j], per-dim stride
// and padding (the DARTS op needs them per dim; the engine's convs use one value for both).
std::vector<double> naive_conv(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                               const Shape& ws, int sh, int sw, int ph, int pw, int d, int groups, Shape& ys) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], KH = ws[2], KW = ws[3];
  const int64_t Cg = C / groups, Og = O / groups;
  const int64_t Ho = (H + 2 * ph - d * (KH - 1) - 1) / sh + 1, Wo = (W + 2 * pw - d * (KW - 1) - 1) / sw + 1;
  ys = Shape{N, O, Ho, Wo};
  std::vector<double> y(static_cast<size_t>(N * O * Ho * Wo), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * sh - ph + i * d, iw = ow * sw - pw + j * d;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + (o / Og) * Cg + c) * H + ih) * W + iw] * w[((o * Cg + c) * KH + i) * KW + j];
              }
          y[((n * O + o) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

struct Case {
  const char* name;
  Shape x, w;
  int stride, pad, dil, groups;
};

std::vector<Case> cases() {
  return {
      {"1x7 pad 3", {2, 3, 5, 9}, {4, 3, 1, 7}, 1, 3, 1, 1},
      {"7x1 pad 0 s2", {2, 3, 11, 5}, {2, 3, 7, 1}, 2, 0, 1, 1},
      {"7x1 pad 3 s1", {1, 2, 6, 4}, {3, 2, 7, 1}, 1, 3, 1, 1},
      {"1x3 s2 grouped", {2, 4, 7, 8}, {4, 2, 1, 3}, 2, 1, 1, 2},
      {"3x1 dilation 2", {1, 2, 9, 5}, {2, 2, 3, 1}, 1, 2, 2, 1},
      {"2x5 depthwise", {2, 3, 6, 9}, {3, 1, 2, 5}, 1, 2, 1, 3},
      {"5x2 depthwise s2", {1, 4, 9, 6}, {4, 1, 5, 2}, 2, 1, 1, 4},
  };
}

Conv2dParams params(const Case& c) {
  Conv2dParams p;
  p.stride = c.stride;
  p.padding = c.pad;
  p.dilation = c.dil;
  p.groups = c.groups;
  return p;
}

}  // namespace

TEST_CASE("conv2d with non-square kernels matches a naive loop (float32 and float64)", "[conv]") {
  for (const Case& c : cases()) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(c.name << " " << dtype_name(dt));
      Tensor x = test::random_tensor(c.x, 11, dt), w = test::random_tensor(c.w, 12, dt);
      Shape ys;
      const auto ref = naive_conv(x.to_vector_f64(), c.x, w.to_vector_f64(), c.w, c.stride, c.stride, c.pad, c.pad,
                                  c.dil, c.groups, ys);
      Tensor y = ops::conv2d(x, w, params(c));
      REQUIRE(y.shape() == ys);
      CHECK(test::max_rel_error(y.to_vector_f64(), ref) < (dt == DType::F32 ? 1e-4 : 1e-10));
    }
  }
}

TEST_CASE("conv2d with non-square kernels: central-difference gradients", "[conv]") {
  for (const Case& c : cases()) {
    INFO(c.name);
    const Conv2dParams p = params(c);
    Tensor x = test::random_tensor(c.x, 21), w = test::random_tensor(c.w, 22);
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    test::check_gradients([&](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], p); }, {x, w});
  }
}

TEST_CASE("conv_7x1_1x7 equals the DARTS definition, stride 1 and 2", "[conv]") {
  for (int stride : {1, 2}) {
    for (int64_t hw : {8, 7}) {
      INFO("stride " << stride << " size " << hw);
      Generator gen(5);
      nas::PrimitiveArgs a;
      a.C = 3;
      a.stride = stride;
      a.affine = false;
      auto op = nas::make_primitive("conv_7x1_1x7", a, gen);
      auto named = op->named_parameters();
      REQUIRE(named.size() == 2);  // conv1 [C,C,1,7], conv2 [C,C,7,1]; BN affine off
      const Tensor w1 = named[0].second, w2 = named[1].second;
      REQUIRE(w1.shape() == Shape{3, 3, 1, 7});
      REQUIRE(w2.shape() == Shape{3, 3, 7, 1});
      const Shape xs{2, 3, hw, hw};
      Tensor x = test::random_tensor(xs, 31, DType::F32);
      Tensor y = op->forward(x);  // training-mode BN over the batch
      // DARTS: ReLU, Conv2d(1x7, stride (1,s), pad (0,3)), Conv2d(7x1, stride (s,1), pad (3,0)), BN.
      std::vector<double> r = x.to_vector_f64();
      for (double& v : r) v = std::max(v, 0.0);
      Shape s1, s2;
      auto h = naive_conv(r, xs, w1.to_vector_f64(), w1.shape(), 1, stride, 0, 3, 1, 1, s1);
      auto z = naive_conv(h, s1, w2.to_vector_f64(), w2.shape(), stride, 1, 3, 0, 1, 1, s2);
      REQUIRE(y.shape() == s2);
      // BN (affine off, batch statistics, eps 1e-5, biased variance) per channel.
      const int64_t N = s2[0], C = s2[1], P = s2[2] * s2[3];
      for (int64_t ch = 0; ch < C; ++ch) {
        double m = 0, v = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t q = 0; q < P; ++q) m += z[(n * C + ch) * P + q];
        m /= double(N * P);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t q = 0; q < P; ++q) v += (z[(n * C + ch) * P + q] - m) * (z[(n * C + ch) * P + q] - m);
        v /= double(N * P);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t q = 0; q < P; ++q) z[(n * C + ch) * P + q] = (z[(n * C + ch) * P + q] - m) / std::sqrt(v + 1e-5);
      }
      CHECK(test::max_rel_error(y.to_vector_f64(), z) < 1e-3);
    }
  }
}
