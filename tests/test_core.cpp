// Tensor, storage, RNG and autograd core, plus the elementwise ops.
#include "tests/test_util.h"

#include "engine/philox.h"
#include "engine/storage.h"

using namespace asap;
using asap::test::check_gradients;
using asap::test::random_tensor;

TEST_CASE("tensor factories, views and copies", "[core]") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{1, 2, 1, 3});
  REQUIRE(t.is_contiguous());
  CHECK(t.strides() == Shape({6, 3, 3, 1}));
  Tensor ch = t.narrow(1, 1, 1);
  CHECK(ch.to_vector() == std::vector<float>{4, 5, 6});
  Tensor col = t.narrow(3, 1, 2);  // strided view
  CHECK_FALSE(col.is_contiguous());
  CHECK(col.contiguous().to_vector() == std::vector<float>{2, 3, 5, 6});
  CHECK(col.storage() == t.storage());  // a view, not a copy
  Tensor z = Tensor::zeros(Shape{2, 3});
  z.narrow(1, 1, 2).copy_(Tensor::full(Shape{2, 2}, 7.0));
  CHECK(z.to_vector() == std::vector<float>{0, 7, 7, 0, 7, 7});
  CHECK(Tensor::scalar(2.5).item() == 2.5);
  CHECK_THROWS_AS(t.view(Shape{5}), ShapeError);
  CHECK_THROWS_AS(t.narrow(1, 1, 2), ShapeError);
  CHECK(t.to(DType::F64).to_vector_f64()[5] == 6.0);
}

TEST_CASE("the CPU allocator reuses freed blocks and counts bytes", "[core]") {
  size_t before = cpu_bytes_in_use();
  void* first;
  {
    Tensor a = Tensor::empty(Shape{1000, 100});
    first = a.raw_data();
    CHECK(cpu_bytes_in_use() >= before + 400000);
  }
  CHECK(cpu_bytes_in_use() == before);
  Tensor b = Tensor::empty(Shape{1000, 100});
  CHECK(b.raw_data() == first);
  CHECK(cpu_peak_bytes() >= before + 400000);
}

TEST_CASE("Philox matches the published known-answer vector", "[core][rng]") {
  // Random123 kat_vectors: philox4x32_10, counter 0, key 0.
  Philox4 r = philox4x32(0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
}

TEST_CASE("generator is deterministic and seed dependent", "[core][rng]") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = Tensor::empty(Shape{1001}), b = Tensor::empty(Shape{1001}), c = Tensor::empty(Shape{1001});
  g1.normal_(a);
  g2.normal_(b);
  g3.normal_(c);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  // Statistics of 1001 standard normals.
  auto v = a.to_vector_f64();
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  s = std::sqrt(s / v.size());
  CHECK(std::fabs(m) < 0.15);
  CHECK(std::fabs(s - 1.0) < 0.1);
  // Successive fills continue the stream instead of repeating it.
  Tensor d = Tensor::empty(Shape{1001});
  g1.normal_(d);
  CHECK(d.to_vector() != a.to_vector());
  // Float and double fills of the same stream position agree.
  Generator h1(7), h2(7);
  Tensor f = Tensor::empty(Shape{16}), e = Tensor::empty(Shape{16}, DType::F64);
  h1.uniform_(f, -1, 1);
  h2.uniform_(e, -1, 1);
  auto fv = f.to_vector_f64(), ev = e.to_vector_f64();
  for (size_t i = 0; i < fv.size(); ++i) CHECK(fv[i] == Approx(ev[i]).epsilon(1e-6));
}

TEST_CASE("default init bounds follow fan-in", "[core][rng]") {
  Generator g(1);
  Tensor w = Tensor::empty(Shape{16, 8, 3, 3});
  default_init_(w, g);
  double bound = 1.0 / std::sqrt(72.0), mx = 0;
  for (double x : w.to_vector_f64()) mx = std::max(mx, std::fabs(x));
  CHECK(mx <= bound);
  CHECK(mx > 0.9 * bound);
}

TEST_CASE("elementwise ops: values", "[core][ops]") {
  Tensor a = Tensor::from_vector(std::vector<float>{-1, 2, -3, 4}, Shape{4});
  Tensor b = Tensor::from_vector(std::vector<float>{10, 20, 30, 40}, Shape{4});
  CHECK(ops::relu(a).to_vector() == std::vector<float>{0, 2, 0, 4});
  CHECK(ops::add(a, b).to_vector() == std::vector<float>{9, 22, 27, 44});
  CHECK(ops::mul_scalar(a, 2).to_vector() == std::vector<float>{-2, 4, -6, 8});
  CHECK(ops::scale(a, Tensor::scalar(-1)).to_vector() == std::vector<float>{1, -2, 3, -4});
  CHECK(ops::sum(b).item() == 100);
  CHECK_THROWS_AS(ops::add(a, Tensor::zeros(Shape{5})), ShapeError);
  CHECK_THROWS_AS(ops::add(a, Tensor::zeros(Shape{4}, DType::F64)), ShapeError);
}

TEST_CASE("elementwise ops: gradients", "[core][ops][grad]") {
  Tensor x = random_tensor(Shape{3, 2, 5, 7}, 1).set_requires_grad(true);
  Tensor y = random_tensor(Shape{3, 2, 5, 7}, 2).set_requires_grad(true);
  Tensor s = Tensor::from_vector(std::vector<double>{0.7}, Shape{}).set_requires_grad(true);
  check_gradients([](const std::vector<Tensor>& in) { return ops::relu(in[0]); }, {x});
  check_gradients([](const std::vector<Tensor>& in) { return ops::add(in[0], in[1]); }, {x, y});
  check_gradients([](const std::vector<Tensor>& in) { return ops::scale(in[0], in[1]); }, {x, s});
  check_gradients([](const std::vector<Tensor>& in) { return ops::mul_scalar(in[0], -1.5); }, {x});
  check_gradients([](const std::vector<Tensor>& in) { return ops::sum(ops::relu(in[0])); }, {x});
  check_gradients(
      [](const std::vector<Tensor>& in) {
        Tensor v = ops::narrow(ops::narrow(in[0], 2, 1, 4), 3, 1, 6);  // the one-pixel shift view
        return ops::relu(v);
      },
      {x});
}

TEST_CASE("autograd accumulates, frees the graph and honours no-grad", "[core][autograd]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, -2, 3}, Shape{3}).set_requires_grad(true);
  // x used twice: gradients add up.
  Tensor y = ops::sum(ops::add(ops::mul_scalar(x, 2), ops::relu(x)));
  CHECK(tape_size() == 4);
  backward(y);
  CHECK(tape_size() == 0);
  CHECK(x.grad().to_vector() == std::vector<float>{3, 2, 3});
  // A second backward accumulates into the leaf's gradient.
  backward(ops::sum(x));
  CHECK(x.grad().to_vector() == std::vector<float>{4, 3, 4});
  x.zero_grad();
  {
    NoGradGuard ng;
    Tensor z = ops::relu(x);
    CHECK_FALSE(z.requires_grad());
    CHECK(tape_size() == 0);
  }
  // Constants record nothing.
  Tensor c = ops::relu(Tensor::zeros(Shape{3}));
  CHECK(tape_size() == 0);
  (void)c;
}

TEST_CASE("the gradient check catches a wrong backward", "[core][grad]") {
  // An op whose recorded backward is off by 10%: the check must see it.
  auto wrong_op = [](const std::vector<Tensor>& in) {
    Tensor y = Tensor::empty_like(in[0]);
    ASAP_KERNEL(y.device(), mul_scalar)(in[0], 2.0, y);
    record("wrong", y, {in[0]}, [](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
      Tensor dx = Tensor::empty_like(g);
      ASAP_KERNEL(g.device(), mul_scalar)(g, 2.2, dx);
      gin[0] = dx;
    });
    return y;
  };
  Tensor x = random_tensor(Shape{2, 3}, 5).set_requires_grad(true);
  CHECK(asap::test::max_gradient_error(wrong_op, {x}) > 0.05);
  CHECK(asap::test::max_gradient_error([](const std::vector<Tensor>& in) { return ops::mul_scalar(in[0], 2.0); },
                                       {x}) < 1e-8);
}
