// Pooling: naive double references for max / avg (padding not counted) / global average pool,
// argmax indices, and central-difference gradients in float64.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tests/test_util.h"

using namespace asap;
using asap::test::check_gradients;
using asap::test::max_rel_error;
using asap::test::random_tensor;

namespace {

struct PoolRef {
  std::vector<double> y;
  std::vector<int> argmax;
  int64_t ho, wo;
};

// Direct loops over the definition. is_max picks max pooling (ties to the first in scan order).
PoolRef pool_ref(const Tensor& x, int k, int s, int p, bool is_max) {
  const auto xv = x.to_vector_f64();
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  PoolRef r;
  r.ho = (H + 2 * p - k) / s + 1;
  r.wo = (W + 2 * p - k) / s + 1;
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < r.ho; ++oh)
      for (int64_t ow = 0; ow < r.wo; ++ow) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int arg = -1, cnt = 0;
        for (int i = 0; i < k; ++i)
          for (int j = 0; j < k; ++j) {
            const int64_t h = oh * s - p + i, w = ow * s - p + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const double v = xv[nc * H * W + h * W + w];
            if (arg < 0 || v > best) {
              best = v;
              arg = static_cast<int>(h * W + w);
            }
            sum += v;
            ++cnt;
          }
        r.y.push_back(is_max ? best : sum / cnt);
        r.argmax.push_back(arg);
      }
  return r;
}

// Distinct values 0.01 apart in shuffled order: no ties, and a 1e-6 perturbation in the gradient
// check can never change which element wins a window.
Tensor well_separated(const Shape& s, uint64_t seed) {
  const int64_t n = s.numel();
  std::vector<double> v(n);
  std::iota(v.begin(), v.end(), 0.0);
  Generator g(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[g.randint(static_cast<uint64_t>(i + 1))]);
  for (double& e : v) e = e * 0.01 - 0.005 * static_cast<double>(n);
  return Tensor::from_vector(v, s);
}

struct Case {
  Shape shape;
  int k, s, p;
};

const std::vector<Case> kCases = {
    {{1, 2, 7, 9}, 3, 1, 1},  // batch 1, odd H and W
    {{3, 3, 7, 5}, 3, 2, 1},  // stride 2 on odd sizes
    {{2, 1, 8, 6}, 3, 2, 1},  // stride 2 on even sizes
    {{2, 3, 28, 28}, 3, 2, 1},  // reduction-cell size: long interior rows (vector loop + tails)
    {{1, 2, 15, 17}, 3, 2, 0},  // stride 2 without padding, odd width
    {{1, 1, 3, 4}, 3, 2, 0},    // one interior window per row
    {{3, 2, 5, 5}, 2, 2, 0},  // general k/s/p
    {{1, 3, 9, 7}, 5, 1, 2},
    {{2, 2, 6, 7}, 3, 3, 0},
    {{1, 1, 1, 1}, 3, 1, 1},  // a single pixel: every window is mostly padding
};

}  // namespace

TEST_CASE("max_pool2d matches the reference, values and argmax", "[pool]") {
  for (const Case& c : kCases) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO("shape " << c.shape.str() << " k" << c.k << " s" << c.s << " p" << c.p << " " << dtype_name(dt));
      Tensor x = random_tensor(c.shape, 11, dt);
      Pool2dParams pp{c.k, c.s, c.p};
      Tensor y = ops::max_pool2d(x, pp);
      PoolRef r = pool_ref(x, c.k, c.s, c.p, true);
      REQUIRE(y.shape() == Shape{c.shape[0], c.shape[1], r.ho, r.wo});
      // Max pooling copies an input value: exact in either dtype.
      CHECK(max_rel_error(y.to_vector_f64(), r.y) == 0.0);
      Tensor argmax = Tensor::empty(y.shape(), DType::I32);
      Tensor y2 = Tensor::empty_like(y);
      kernels(DeviceType::CPU).maxpool_fwd(x, y2, argmax, pp);
      const int32_t* a = argmax.data<int32_t>();
      for (size_t i = 0; i < r.argmax.size(); ++i) REQUIRE(a[i] == r.argmax[i]);
    }
  }
}

TEST_CASE("max_pool2d ties go to the first element in scan order", "[pool]") {
  Tensor x = Tensor::full({1, 1, 4, 4}, 2.0, DType::F32);
  Tensor y = Tensor::empty({1, 1, 4, 4}, DType::F32);
  Tensor argmax = Tensor::empty({1, 1, 4, 4}, DType::I32);
  kernels(DeviceType::CPU).maxpool_fwd(x, y, argmax, Pool2dParams{3, 1, 1});
  const int32_t* a = argmax.data<int32_t>();
  CHECK(a[0] == 0);      // window rows 0-1, cols 0-1
  CHECK(a[5] == 0);      // (1,1): window starts at (0,0)
  CHECK(a[15] == 2 * 4 + 2);  // (3,3): window starts at (2,2)
}

TEST_CASE("3x3 stride-2 max_pool2d: ties to the first in scan order, NaN propagates", "[pool]") {
  for (int pad : {0, 1}) {
    INFO("padding " << pad);
    Tensor x = Tensor::full({1, 1, 9, 12}, 2.0, DType::F32);
    const Pool2dParams pp{3, 2, pad};
    const int64_t ho = (9 + 2 * pad - 3) / 2 + 1, wo = (12 + 2 * pad - 3) / 2 + 1;
    Tensor y = Tensor::empty({1, 1, ho, wo}, DType::F32);
    Tensor argmax = Tensor::empty(y.shape(), DType::I32);
    kernels(DeviceType::CPU).maxpool_fwd(x, y, argmax, pp);
    const int32_t* a = argmax.data<int32_t>();
    for (int64_t oh = 0; oh < ho; ++oh)
      for (int64_t ow = 0; ow < wo; ++ow) {
        const int64_t h0 = std::max<int64_t>(2 * oh - pad, 0), w0 = std::max<int64_t>(2 * ow - pad, 0);
        REQUIRE(a[oh * wo + ow] == h0 * 12 + w0);  // every value equal: the window's first tap
      }
    x.data<float>()[4 * 12 + 5] = std::nanf("");  // row 4, column 5: inside interior windows
    x.data<float>()[4 * 12 + 6] = 7.0f;           // a larger value after it must not win
    kernels(DeviceType::CPU).maxpool_fwd(x, y, argmax, pp);
    for (int64_t oh = 0; oh < ho; ++oh)
      for (int64_t ow = 0; ow < wo; ++ow) {
        const int64_t hs = 2 * oh - pad, ws = 2 * ow - pad;
        const bool has_nan = hs <= 4 && 4 < hs + 3 && ws <= 5 && 5 < ws + 3;
        if (!has_nan) continue;
        INFO("output " << oh << "," << ow);
        CHECK(std::isnan(y.data<float>()[oh * wo + ow]));
        CHECK(a[oh * wo + ow] == 4 * 12 + 5);
      }
  }
}

TEST_CASE("3x3 stride-1 max_pool2d: all -inf windows point inside the image, NaN at a border wins", "[pool]") {
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int pad : {0, 1}) {
    INFO("padding " << pad);
    const int64_t H = 7, W = 9, ho = H + 2 * pad - 2, wo = W + 2 * pad - 2;
    Tensor x = Tensor::full({2, 1, H, W}, ninf, DType::F32);  // plane 0: all -inf
    float* xv = x.data<float>() + H * W;                      // plane 1: values, -inf, NaN
    for (int64_t i = 0; i < H * W; ++i) xv[i] = float(i % 5) - 2.0f;
    xv[0] = std::nanf("");  // the top-left corner: every border window that covers it
    xv[1] = 9.0f;           // larger, after it in scan order: must not win
    xv[(H - 1) * W + W - 1] = ninf;
    const Pool2dParams pp{3, 1, pad};
    Tensor y = Tensor::empty({2, 1, ho, wo}, DType::F32);
    Tensor argmax = Tensor::empty(y.shape(), DType::I32);
    kernels(DeviceType::CPU).maxpool_fwd(x, y, argmax, pp);
    const int32_t* a = argmax.data<int32_t>();
    const float* yv = y.data<float>();
    for (int64_t oh = 0; oh < ho; ++oh)
      for (int64_t ow = 0; ow < wo; ++ow) {
        INFO("output " << oh << "," << ow);
        const int64_t h0 = std::max<int64_t>(oh - pad, 0), w0 = std::max<int64_t>(ow - pad, 0);
        CHECK(yv[oh * wo + ow] == ninf);
        CHECK(a[oh * wo + ow] == h0 * W + w0);  // the window's first tap inside the image
        const int64_t k = ho * wo + oh * wo + ow;
        if (oh - pad <= 0 && ow - pad <= 0) {  // the window covers the NaN
          CHECK(std::isnan(yv[k]));
          CHECK(a[k] == 0);
        } else {
          CHECK(a[k] >= 0);
          CHECK(a[k] < H * W);
        }
      }
    PoolRef r = pool_ref(x, 3, 1, pad, true);  // the rest against the reference (no NaN there)
    for (int64_t i = 0; i < ho * wo; ++i)
      if (!(i / wo - pad <= 0 && i % wo - pad <= 0)) {
        CHECK(yv[ho * wo + i] == float(r.y[ho * wo + i]));
        CHECK(a[ho * wo + i] == r.argmax[ho * wo + i]);
      }
  }
}

TEST_CASE("avg_pool2d matches the reference and does not count padding", "[pool]") {
  for (const Case& c : kCases) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO("shape " << c.shape.str() << " k" << c.k << " s" << c.s << " p" << c.p << " " << dtype_name(dt));
      Tensor x = random_tensor(c.shape, 12, dt);
      Tensor y = ops::avg_pool2d(x, Pool2dParams{c.k, c.s, c.p});
      PoolRef r = pool_ref(x, c.k, c.s, c.p, false);
      REQUIRE(y.shape() == Shape{c.shape[0], c.shape[1], r.ho, r.wo});
      CHECK(max_rel_error(y.to_vector_f64(), r.y) < (dt == DType::F32 ? 1e-6 : 1e-14));
    }
  }
  // Constant input: with the padding excluded from the divisor every output equals the constant
  // (counting padding would make the 3x3 corner 4/9 of it).
  Tensor ones = Tensor::full({1, 1, 5, 6}, 3.0, DType::F32);
  for (float v : ops::avg_pool2d(ones, Pool2dParams{3, 1, 1}).to_vector()) REQUIRE(v == Approx(3.0f));
  for (float v : ops::avg_pool2d(ones, Pool2dParams{3, 2, 1}).to_vector()) REQUIRE(v == Approx(3.0f));
}

TEST_CASE("global_avg_pool matches the plane means", "[pool]") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = random_tensor({3, 4, 5, 7}, 13, dt);
    Tensor y = ops::global_avg_pool(x);
    REQUIRE(y.shape() == Shape{3, 4});
    auto xv = x.to_vector_f64();
    std::vector<double> ref(12, 0.0);
    for (int pl = 0; pl < 12; ++pl) {
      for (int i = 0; i < 35; ++i) ref[pl] += xv[pl * 35 + i];
      ref[pl] /= 35.0;
    }
    CHECK(max_rel_error(y.to_vector_f64(), ref) < (dt == DType::F32 ? 1e-6 : 1e-14));
  }
}

TEST_CASE("pooling gradients match central differences", "[pool]") {
  for (const Case& c : kCases) {
    INFO("shape " << c.shape.str() << " k" << c.k << " s" << c.s << " p" << c.p);
    Pool2dParams pp{c.k, c.s, c.p};
    Tensor xm = well_separated(c.shape, 21);
    xm.set_requires_grad(true);
    check_gradients([pp](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], pp); }, {xm});
    Tensor xa = random_tensor(c.shape, 22);
    xa.set_requires_grad(true);
    check_gradients([pp](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], pp); }, {xa});
  }
  Tensor xg = random_tensor({3, 2, 5, 3}, 23);
  xg.set_requires_grad(true);
  check_gradients([](const std::vector<Tensor>& in) { return ops::global_avg_pool(in[0]); }, {xg});
}

TEST_CASE("pooling float32 backward agrees with float64", "[pool]") {
  Pool2dParams pp{3, 2, 1};
  Tensor x64 = random_tensor({2, 3, 9, 7}, 31);
  for (int which = 0; which < 2; ++which) {
    Tensor a = x64.clone().set_requires_grad(true);
    Tensor b = x64.to(DType::F32).set_requires_grad(true);
    // One forward/backward at a time: backward consumes (and clears) the whole tape.
    Tensor ya = which ? ops::avg_pool2d(a, pp) : ops::max_pool2d(a, pp);
    Tensor g = random_tensor(ya.shape(), 32);
    backward(ya, g);
    Tensor yb = which ? ops::avg_pool2d(b, pp) : ops::max_pool2d(b, pp);
    backward(yb, g.to(DType::F32));
    REQUIRE(b.grad().defined());
    CHECK(max_rel_error(b.grad(), a.grad()) < 1e-6);
  }
}

TEST_CASE("pooling rejects bad arguments", "[pool]") {
  Tensor x = random_tensor({1, 2, 5, 5}, 41, DType::F32);
  CHECK_THROWS_AS(ops::max_pool2d(x, Pool2dParams{3, 1, 2}), ShapeError);  // padding > k/2
  CHECK_THROWS_AS(ops::avg_pool2d(x, Pool2dParams{3, 0, 1}), ShapeError);  // stride 0
  CHECK_THROWS_AS(ops::max_pool2d(random_tensor({2, 5, 5}, 42, DType::F32), Pool2dParams{}), ShapeError);
  CHECK_THROWS_AS(ops::avg_pool2d(random_tensor({1, 1, 2, 2}, 43, DType::F32), Pool2dParams{5, 1, 1}),
                  ShapeError);  // window larger than the padded input
  CHECK_THROWS_AS(ops::global_avg_pool(random_tensor({2, 5}, 44, DType::F32)), ShapeError);
}
