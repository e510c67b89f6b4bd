// drop_path: Philox mask per sample, whole samples zeroed, survivors scaled by 1/(1-p),
// deterministic for (seed, offset), mean preserved in expectation, gradient = mask * dy.
#include <cmath>

#include "engine/kernel_table.h"
#include "engine/philox.h"
#include "tests/test_util.h"

using namespace asap;
using asap::test::check_gradients;
using asap::test::random_tensor;

TEST_CASE("drop_path zeroes whole samples and scales the survivors", "[drop_path]") {
  const double p = 0.3;
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(dtype_name(dt));
    Tensor x = random_tensor({64, 3, 5, 7}, 1, dt, 0.5, 1.5);  // no zeros in x
    Tensor y = ops::drop_path(x, p, 1234, 56);
    REQUIRE(y.shape() == x.shape());
    auto xv = x.to_vector_f64(), yv = y.to_vector_f64();
    const int64_t per = 105;
    int dropped = 0;
    for (int64_t n = 0; n < 64; ++n) {
      const bool keep = philox_uniform_at(1234, 56, static_cast<uint64_t>(n), 0.0, 1.0) >= p;
      dropped += keep ? 0 : 1;
      for (int64_t i = 0; i < per; ++i) {
        const double want = keep ? xv[n * per + i] / (1.0 - p) : 0.0;
        REQUIRE(yv[n * per + i] == Approx(want).epsilon(dt == DType::F32 ? 1e-6 : 1e-15));
      }
    }
    // 64 draws at p = 0.3: some dropped, some kept (a mask stuck at one value fails here).
    CHECK(dropped > 5);
    CHECK(dropped < 40);
  }
}

TEST_CASE("drop_path is deterministic for a seed and offset", "[drop_path]") {
  Tensor x = random_tensor({32, 2, 3, 3}, 2, DType::F32, 0.5, 1.5);
  auto a = ops::drop_path(x, 0.5, 7, 0).to_vector();
  auto b = ops::drop_path(x, 0.5, 7, 0).to_vector();
  auto c = ops::drop_path(x, 0.5, 7, 100).to_vector();
  auto d = ops::drop_path(x, 0.5, 8, 0).to_vector();
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != d);
}

TEST_CASE("drop_path preserves the mean in expectation", "[drop_path]") {
  // Each sample's scale is 0 or 1/(1-p): mean 1, variance p/(1-p). Over 20 * 1000 samples the
  // mean's standard deviation is about 0.005, so a tolerance of 0.03 is six sigma.
  const double p = 0.3;
  Tensor x = Tensor::full({1000, 2}, 1.0, DType::F64);
  double total = 0;
  for (uint64_t off = 0; off < 20; ++off) {
    for (double v : ops::drop_path(x, p, 99, off * 1000).to_vector_f64()) total += v;
  }
  CHECK(std::fabs(total / (20 * 2000) - 1.0) < 0.03);
}

TEST_CASE("drop_path gradient is the mask times dy", "[drop_path]") {
  Tensor x = random_tensor({9, 2, 3, 3}, 3).set_requires_grad(true);
  check_gradients([](const std::vector<Tensor>& in) { return ops::drop_path(in[0], 0.4, 5, 17); }, {x});
  // Dropped samples get exactly zero gradient.
  x.zero_grad();
  backward(ops::drop_path(x, 0.4, 5, 17), Tensor::full(x.shape(), 1.0, DType::F64));
  auto g = x.grad().to_vector_f64();
  for (int64_t n = 0; n < 9; ++n) {
    const bool keep = philox_uniform_at(5, 17, static_cast<uint64_t>(n), 0.0, 1.0) >= 0.4;
    for (int i = 0; i < 18; ++i) REQUIRE(g[n * 18 + i] == Approx(keep ? 1.0 / 0.6 : 0.0));
  }
}

TEST_CASE("drop_path with p = 0 returns x and bad p throws", "[drop_path]") {
  Tensor x = random_tensor({4, 3}, 4, DType::F32);
  Tensor y = ops::drop_path(x, 0.0, 1, 0);
  CHECK(y.impl() == x.impl());
  CHECK_THROWS_AS(ops::drop_path(x, 1.0, 1, 0), ShapeError);
  CHECK_THROWS_AS(ops::drop_path(x, -0.1, 1, 0), ShapeError);
}

TEST_CASE("drop_path with a device-held counter equals the host-offset form", "[drop_path]") {
  Tensor x = random_tensor({40, 2, 3, 3}, 4, DType::F32, 0.5, 1.5);
  Tensor state = Tensor::from_vector(std::vector<double>{300.0, 0.45}, Shape{2});
  // base 300 + delta 17 draws the masks of host offset 317
  CHECK(ops::drop_path(x, 0.45, state, 11, 17).to_vector() == ops::drop_path(x, 0.45, 11, 317).to_vector());
  kernels(DeviceType::CPU).counter_advance(state, 5);
  CHECK(state.to_vector_f64()[0] == 305.0);
  CHECK(ops::drop_path(x, 0.45, state, 11, 12).to_vector() == ops::drop_path(x, 0.45, 11, 317).to_vector());
  CHECK(ops::drop_path(x, 0.45, state, 11, 0).to_vector() != ops::drop_path(x, 0.45, 11, 317).to_vector());
  // p on the device is what the mask uses
  state = Tensor::from_vector(std::vector<double>{300.0, 0.2}, Shape{2});
  CHECK(ops::drop_path(x, 0.2, state, 11, 17).to_vector() == ops::drop_path(x, 0.2, 11, 317).to_vector());
  Tensor bad = Tensor::from_vector(std::vector<float>{300.0f, 0.2f}, Shape{2});
  CHECK_THROWS_AS(ops::drop_path(x, 0.2, bad, 11, 17), ShapeError);
}

// Data parallel: a rank's shard of a batch (samples [first, first + n)) draws exactly the masks
// its samples get when the whole batch is drawn at once, whatever `first` is (Philox blocks hold 4).
TEST_CASE("drop_path on a shard with `first` equals the whole batch's masks for those samples", "[drop_path]") {
  Tensor x = random_tensor({23, 2, 3, 3}, 6, DType::F32, 0.5, 1.5);
  Tensor state = Tensor::from_vector(std::vector<double>{123.0, 0.5}, Shape{2});
  const std::vector<float> whole = ops::drop_path(x, 0.5, state, 9, 7).to_vector();
  const int64_t per = 2 * 3 * 3;
  int dropped = 0;
  for (int64_t first : {0, 3, 5, 12, 22}) {
    const int64_t n = std::min<int64_t>(7, 23 - first);
    const std::vector<float> shard = ops::drop_path(x.narrow(0, first, n), 0.5, state, 9, 7, uint64_t(first)).to_vector();
    const std::vector<float> want(whole.begin() + first * per, whole.begin() + (first + n) * per);
    CHECK(shard == want);
    for (int64_t i = 0; i < n; ++i) dropped += shard[size_t(i * per)] == 0.0f;
  }
  CHECK(dropped > 0);  // the masks drop something, so equal shards are not trivially equal
}
