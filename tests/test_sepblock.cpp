// The fused separable block against the unfused relu -> depthwise conv2d -> 1x1 conv2d sequence,
// forward and all three gradients, plus central-difference checks in float64.
#include "tests/test_util.h"

using namespace asap;

namespace {

struct SepCase {
  const char* name;
  Shape x;
  int64_t O, k;
  Conv2dParams p;  // groups ignored by sep_block
};

std::vector<SepCase> sep_cases() {
  return {
      {"sep 3x3 s1", {3, 5, 7, 9}, 6, 3, {1, 1, 1, 1}},
      {"sep 3x3 s2 odd", {1, 4, 9, 7}, 8, 3, {2, 1, 1, 1}},
      {"sep 5x5 s1", {3, 3, 8, 7}, 3, 5, {1, 2, 1, 1}},
      {"sep 5x5 s2 odd", {3, 4, 11, 9}, 4, 5, {2, 2, 1, 1}},
      {"dil 3x3 d2 s1", {2, 4, 9, 9}, 4, 3, {1, 2, 2, 1}},
      {"dil 3x3 d2 s2", {3, 3, 7, 8}, 6, 3, {2, 2, 2, 1}},
      {"dil 5x5 d2 s1", {1, 3, 9, 8}, 5, 5, {1, 4, 2, 1}},
      {"dil 5x5 d2 s2 odd", {3, 2, 11, 9}, 4, 5, {2, 4, 2, 1}},
      {"darts-like 16ch 14x14", {2, 16, 14, 14}, 16, 3, {1, 1, 1, 1}},
  };
}

Tensor unfused(const Tensor& x, const Tensor& wd, const Tensor& wp, Conv2dParams p) {
  p.groups = int(x.dim(1));
  return ops::conv2d(ops::conv2d(ops::relu(x), wd, p), wp, Conv2dParams{});
}

}  // namespace

TEST_CASE("sep_block equals relu -> depthwise -> 1x1, forward and backward", "[sepblock]") {
  uint64_t seed = 1000;
  for (const SepCase& c : sep_cases()) {
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(c.name << " " << dtype_name(dt));
      seed += 5;
      const int64_t C = c.x[1];
      Tensor x64 = test::random_tensor(c.x, seed), wd64 = test::random_tensor({C, 1, c.k, c.k}, seed + 1),
             wp64 = test::random_tensor({c.O, C, 1, 1}, seed + 2);
      Tensor xf = x64.to(dt), wdf = wd64.to(dt), wpf = wp64.to(dt);
      Tensor xu = x64.to(dt), wdu = wd64.to(dt), wpu = wp64.to(dt);
      for (Tensor* t : {&xf, &wdf, &wpf, &xu, &wdu, &wpu}) t->set_requires_grad(true);

      clear_tape();
      Tensor yf = ops::sep_block(xf, wdf, wpf, c.p);
      CHECK(tape_size() == 1);  // one fused node
      Tensor dy = test::random_tensor(yf.shape(), seed + 3).to(dt);
      backward(yf, dy);  // backward consumes the whole tape: run the two graphs one after the other
      Tensor yu = unfused(xu, wdu, wpu, c.p);
      backward(yu, dy);
      REQUIRE(yf.shape() == yu.shape());
      const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
      CHECK(test::max_rel_error(yf, yu) < tol);
      CHECK(test::max_rel_error(xf.grad(), xu.grad()) < tol);
      CHECK(test::max_rel_error(wdf.grad(), wdu.grad()) < tol);
      CHECK(test::max_rel_error(wpf.grad(), wpu.grad()) < tol);
      // ReLU mask: inputs <= 0 get exactly zero gradient.
      auto xv = xf.to_vector_f64(), gx = xf.grad().to_vector_f64();
      double masked = 0;
      for (size_t i = 0; i < xv.size(); ++i)
        if (xv[i] <= 0) masked = std::max(masked, std::fabs(gx[i]));
      CHECK(masked == 0.0);
    }
  }
}

TEST_CASE("sep_block without grad and with partial grads", "[sepblock]") {
  Tensor x = test::random_tensor({3, 4, 7, 7}, 41, DType::F32);
  Tensor wd = test::random_tensor({4, 1, 3, 3}, 42, DType::F32), wp = test::random_tensor({5, 4, 1, 1}, 43, DType::F32);
  Tensor ref = unfused(x, wd, wp, {1, 1, 1, 1});
  {
    NoGradGuard ng;  // the kernel runs without a `mid` output here
    clear_tape();
    CHECK(test::max_rel_error(ops::sep_block(x, wd, wp, {1, 1, 1, 1}), ref) < 1e-5);
    CHECK(tape_size() == 0);
  }
  // Only the depthwise weight trains: x and wp get nothing, wd matches the unfused gradient.
  wd.set_requires_grad(true);
  Tensor wdu = wd.clone();
  wdu.set_requires_grad(true);
  Tensor y = ops::sep_block(x, wd, wp, {1, 1, 1, 1});
  Tensor dy = test::random_tensor(y.shape(), 44, DType::F32);
  backward(y, dy);
  backward(unfused(x, wdu, wp, {1, 1, 1, 1}), dy);
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(wp.grad().defined());
  CHECK(test::max_rel_error(wd.grad(), wdu.grad()) < 1e-5);
  // Only the input needs a gradient (a frozen block inside a larger graph).
  Tensor xi = x.clone();
  xi.set_requires_grad(true);
  Tensor xu = x.clone();
  xu.set_requires_grad(true);
  Tensor wd2 = wd.detach();
  backward(ops::sep_block(xi, wd2, wp, {2, 1, 1, 1}), test::random_tensor({3, 5, 4, 4}, 45, DType::F32));
  backward(unfused(xu, wd2, wp, {2, 1, 1, 1}), test::random_tensor({3, 5, 4, 4}, 45, DType::F32));
  CHECK(test::max_rel_error(xi.grad(), xu.grad()) < 1e-5);
}

TEST_CASE("sep_block gradients pass central differences in float64", "[sepblock]") {
  const std::vector<SepCase> small = {
      {"sep 3x3 s1", {2, 3, 5, 6}, 4, 3, {1, 1, 1, 1}},
      {"sep 5x5 s2", {1, 2, 7, 7}, 3, 5, {2, 2, 1, 1}},
      {"dil 3x3 d2 s2", {2, 2, 6, 5}, 3, 3, {2, 2, 2, 1}},
  };
  uint64_t seed = 2000;
  for (const SepCase& c : small) {
    INFO(c.name);
    seed += 3;
    const int64_t C = c.x[1];
    Tensor x = test::random_tensor(c.x, seed), wd = test::random_tensor({C, 1, c.k, c.k}, seed + 1),
           wp = test::random_tensor({c.O, C, 1, 1}, seed + 2);
    for (Tensor* t : {&x, &wd, &wp}) t->set_requires_grad(true);
    test::check_gradients(
        [&](const std::vector<Tensor>& in) { return ops::sep_block(in[0], in[1], in[2], c.p); }, {x, wd, wp});
  }
}

TEST_CASE("sep_block rejects bad weights naming the op", "[sepblock]") {
  Tensor x = test::random_tensor({2, 4, 6, 6}, 1, DType::F32);
  Tensor wd = test::random_tensor({4, 1, 3, 3}, 2, DType::F32);
  CHECK_THROWS_AS(ops::sep_block(x, test::random_tensor({3, 1, 3, 3}, 2, DType::F32),
                                 test::random_tensor({4, 4, 1, 1}, 3, DType::F32), {1, 1, 1, 1}),
                  ShapeError);
  CHECK_THROWS_AS(ops::sep_block(x, wd, test::random_tensor({4, 3, 1, 1}, 3, DType::F32), {1, 1, 1, 1}),
                  ShapeError);
}
