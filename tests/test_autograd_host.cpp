// The host-side machinery of the tape (issue 15, item 2): closures stored in the node, nodes and
// tensors recycled through per-thread pools, and the backward tables indexed through the tensor.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "engine/autograd.h"
#include "engine/inline_function.h"
#include "engine/ops.h"
#include "engine/pool_allocator.h"

using namespace asap;

namespace {

struct Counted {  // counts live copies, to prove every stored callable is destroyed exactly once
  static int live;
  int* hits;
  explicit Counted(int* h) : hits(h) { ++live; }
  Counted(const Counted& o) : hits(o.hits) { ++live; }
  Counted(Counted&& o) noexcept : hits(o.hits) { ++live; }
  ~Counted() { --live; }
  void operator()(int k) const { *hits += k; }
};
int Counted::live = 0;

Tensor leaf(std::vector<float> v) {
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST_CASE("InlineFunction stores small closures inline, large ones on the heap, and destroys each once",
          "[core][autograd]") {
  Tensor a = Tensor::zeros({1}), b = a, c = a, d = a;
  auto four = [a, b, c, d](int) {};
  auto big = [a, b, c, d, e = a](int) {};
  STATIC_REQUIRE(InlineFunction<void(int), 64>::stores_inline<decltype(four)>());
  STATIC_REQUIRE_FALSE(InlineFunction<void(int), 64>::stores_inline<decltype(big)>());
  // The tape's closure type: four captured tensors fit.
  STATIC_REQUIRE(sizeof(BackwardFn) <= 80);

  int hits = 0;
  {
    InlineFunction<void(int), 16> small{Counted(&hits)};
    InlineFunction<void(int), 16> moved(std::move(small));
    REQUIRE_FALSE(small);
    REQUIRE(moved);
    moved(2);
    InlineFunction<void(int), 16> assigned;
    assigned = std::move(moved);
    assigned(3);
    REQUIRE(Counted::live == 1);
  }
  REQUIRE(Counted::live == 0);
  REQUIRE(hits == 5);

  struct Wide {  // larger than the buffer: takes the heap path
    Counted c;
    char pad[64];
    void operator()(int k) const { c(k); }
  };
  {
    InlineFunction<void(int), 16> heap{Wide{Counted(&hits), {}}};
    InlineFunction<void(int), 16> moved(std::move(heap));
    moved(10);
    REQUIRE(Counted::live == 1);
  }
  REQUIRE(Counted::live == 0);
  REQUIRE(hits == 15);
}

TEST_CASE("the pool allocator hands a freed block back to the next allocation of its size", "[core][autograd]") {
  struct Obj {
    double v[5];
  };
  std::shared_ptr<Obj> first = make_pooled<Obj>();
  const void* where = first.get();
  first.reset();
  std::shared_ptr<Obj> second = make_pooled<Obj>();
  if (kPoolsEnabled)  // off under AddressSanitizer (engine/pool_allocator.h)
    REQUIRE(static_cast<const void*>(second.get()) == where);
  // Recording a step twice: the second step's nodes are the first step's blocks.
  Tensor x = leaf({0.5f, -1.0f, 2.0f});
  backward(ops::sum(ops::relu(x)));
  Tensor y = ops::relu(x);
  REQUIRE(tape_size() == 1);
  clear_tape();
}

TEST_CASE("backward after a throwing closure leaves no stale slot and gives exact gradients", "[core][autograd]") {
  Tensor x = leaf({1.0f, -2.0f, 3.0f});
  // Recorded first, so it runs last: by then x holds a gradient and waits for two more terms in
  // the deferred table (three uses of x below).
  Tensor bad = Tensor::empty(x.shape());
  record("throws", bad, {x}, [](const Tensor&, const std::vector<bool>&, std::vector<Tensor>&) {
    throw std::runtime_error("planted");
  });
  Tensor y = ops::add(ops::add(ops::relu(x), ops::relu(x)), ops::relu(x));
  REQUIRE_THROWS_AS(backward(ops::sum(ops::add(bad, y))), std::runtime_error);
  REQUIRE(x.impl()->slots.deferred == -1);
  REQUIRE(x.impl()->slots.held == -1);
  clear_tape();
  x.zero_grad();

  Tensor z = ops::add(ops::add(ops::relu(x), ops::relu(x)), ops::relu(x));
  backward(ops::sum(z));
  REQUIRE(x.impl()->slots.deferred == -1);
  const std::vector<float> g = x.grad().to_vector();
  REQUIRE(g == std::vector<float>{3.0f, 0.0f, 3.0f});
}
