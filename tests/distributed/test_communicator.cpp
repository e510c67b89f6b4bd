// The MPI communicator at any world size: sums, broadcasts and barriers give every rank the
// same, expected values; the gradient buckets average for the global batch and follow the
// parameter list; the agreement check names a diverging rank; shards tile the batch.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/distributed/agreement.h"
#include "engine/distributed/grad_sync.h"
#include "tests/distributed/dist_test_world.h"

using namespace asap;
using namespace asap::dist;

TEST_CASE("rank and size match the launcher", "[dist]") {
  Communicator& w = test_world();
  REQUIRE(w.size() >= 1);
  REQUIRE(w.rank() >= 0);
  REQUIRE(w.rank() < w.size());
  if (const char* s = std::getenv("OMPI_COMM_WORLD_SIZE")) CHECK(w.size() == std::atoi(s));
  if (const char* r = std::getenv("OMPI_COMM_WORLD_RANK")) CHECK(w.rank() == std::atoi(r));
  CHECK(std::string(w.backend()) == "mpi");
  CHECK(w.device() == Device::cpu());
}

TEST_CASE("all-reduce sums float and double buffers on every rank", "[dist]") {
  Communicator& w = test_world();
  const int W = w.size(), r = w.rank();
  std::vector<float> f(1000);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(r + 1) + float(i);
  w.allreduce_sum(f.data(), f.size());
  for (size_t i = 0; i < f.size(); ++i) REQUIRE(f[i] == float(W * (W + 1) / 2) + float(W) * float(i));
  std::vector<double> d(300000, 0.25 * (r + 1));  // several MB: more than one segment of MPI's pipelines
  w.allreduce_sum(d.data(), d.size());
  for (double v : d) REQUIRE(v == 0.25 * W * (W + 1) / 2);
  // The result is rank 0's bits everywhere: hash it and compare.
  std::vector<float> noisy(4096);
  for (size_t i = 0; i < noisy.size(); ++i) noisy[i] = 1.0f / float(3 + i + 7 * r);
  w.allreduce_sum(noisy.data(), noisy.size());
  check_agreement(w, digest_bytes(noisy.data(), noisy.size() * sizeof(float)), "the all-reduce test", "sums");
  Tensor t = Tensor::full({3, 2}, 1.5, DType::F32);
  allreduce_sum(w, t);
  for (float v : t.to_vector()) CHECK(v == 1.5f * W);
  CHECK(allreduce_sum(w, double(r)) == double(W * (W - 1) / 2));
}

TEST_CASE("broadcast and barrier", "[dist]") {
  Communicator& w = test_world();
  const int root = w.size() - 1;
  std::vector<int> v(17, w.rank() == root ? 42 : -1);
  w.broadcast(v.data(), v.size() * sizeof(int), root);
  for (int x : v) CHECK(x == 42);
  std::string s = w.rank() == 0 ? std::string(100000, 'x') + "end" : std::string("stale");
  broadcast_string(w, s, 0);
  CHECK(s.size() == 100003);
  CHECK(s.substr(s.size() - 3) == "end");
  w.barrier();
}

TEST_CASE("gradient buckets average for the global batch over the listed parameters", "[dist]") {
  Communicator& w = test_world();
  const int W = w.size(), r = w.rank();
  // Three parameters (one without a gradient), and a bucket limit that splits them.
  std::vector<Tensor> ps;
  for (int64_t n : {5, 300, 7}) {
    Tensor p = Tensor::zeros({n});
    p.impl()->requires_grad = true;
    ps.push_back(p);
  }
  // The first parameter's gradient is r + 1, a 300-element one's 10 (r + 1); the last has none.
  auto set_grads = [&] {
    for (Tensor& p : ps)
      p.impl()->grad = p.numel() == 7 ? nullptr
                                      : Tensor::full(p.shape(), (p.numel() == 300 ? 10.0 : 1.0) * (r + 1)).impl_ptr();
  };
  set_grads();
  GradAllReduce sync(w, 256 * sizeof(float));
  // Rank r saw r + 1 samples: the weights are (r + 1) / sum.
  const int64_t local = r + 1;
  sync.average(ps, local);
  double num = 0, den = 0;
  for (int k = 0; k < W; ++k) {
    num += double(k + 1) * double(k + 1);
    den += double(k + 1);
  }
  const double expect = num / den;
  for (float v : ps[0].grad().to_vector()) CHECK(v == Approx(expect).epsilon(1e-6));
  for (float v : ps[1].grad().to_vector()) CHECK(v == Approx(10 * expect).epsilon(1e-6));
  CHECK_FALSE(ps[2].grad().defined());
  CHECK(sync.buckets() == 3);  // 5 + 300 floats exceed 256: a new bucket, and 7 after 300 too
  CHECK(sync.rebuilds() == 1);
  set_grads();
  sync.average(ps, local);  // same list: the layout is kept
  CHECK(sync.rebuilds() == 1);
  ps.erase(ps.begin() + 1);  // a "prune": the list changed, the buckets are rebuilt without it
  set_grads();
  sync.average(ps, local);
  CHECK(sync.rebuilds() == 2);
  CHECK(sync.buckets() == 1);
  for (float v : ps[0].grad().to_vector()) CHECK(v == Approx(expect).epsilon(1e-6));
}

TEST_CASE("the agreement check names the rank that differs", "[dist]") {
  Communicator& w = test_world();
  CHECK_NOTHROW(check_agreement(w, 0x123456789abcdefull, "test point", "values"));
  if (w.size() == 1) return;
  const uint64_t mine = w.rank() == w.size() - 1 ? 7 : 9;
  try {
    check_agreement(w, mine, "search epoch 3", "alphas or alive ops");
    FAIL("no divergence reported");
  } catch (const DistributedError& e) {
    const std::string m = e.what();
    CHECK(m.find("search epoch 3") != std::string::npos);
    CHECK(m.find("rank(s) " + std::to_string(w.size() - 1)) != std::string::npos);
  }
}

TEST_CASE("shards tile a batch in rank order", "[dist]") {
  for (int size : {1, 2, 3, 5})
    for (int64_t n : {5, 16, 17, 64}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Shard s = shard_of(n, r, size);
        CHECK(s.start == next);
        CHECK((s.count == n / size || s.count == n / size + 1));
        next += s.count;
      }
      CHECK(next == n);
    }
}
