// The CPU backend runs every parallel loop on its own pool (kernels/cpu/parallel.h) and never
// starts libgomp's: an OpenMP team's idle threads spin for milliseconds after each region and, on
// a 2-core machine, took the cores from the pool's workers (the train step was 2x slower with
// 22 OpenMP regions a step). Exact check: the process's thread count does not grow while every
// kernel family that once used `omp parallel` runs on inputs above its parallel threshold.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <iterator>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim/clip.h"
#include "engine/optim/sgd.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/cpu/parallel.h"

using namespace asap;

namespace {

long thread_count() {
  const auto it = std::filesystem::directory_iterator("/proc/self/task");
  return static_cast<long>(std::distance(std::filesystem::begin(it), std::filesystem::end(it)));
}

}  // namespace

TEST_CASE("CPU kernels above their parallel thresholds start no OpenMP threads", "[cpu][threads]") {
  if (omp_get_max_threads() < 2) {
    WARN("SKIPPED: one thread (OMP_NUM_THREADS=1): nothing could start");
    return;
  }
  // Start the pool's workers first: they are the only threads the kernels may use.
  std::vector<double> sink(1 << 16, 0.0);
  cpu::parallel_for(int64_t(sink.size()), true, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) sink[i] = double(i);
  });
  const long before = thread_count();

  Generator g(7);
  Tensor w = Tensor::empty({512, 512}, DType::F32);  // fill_uniform: 2^18 > its grain
  g.uniform_(w, -0.1, 0.1);
  w.set_requires_grad(true);
  Tensor x = Tensor::empty({1024, 512}, DType::F32);
  g.normal_(x, 0.0, 1.0);
  // w is used three times: its gradient terms meet in accumulate_n (2^18 x 3 elements).
  Tensor h = ops::add(ops::add(ops::matmul(x, w), ops::matmul(x, w)), ops::matmul(x, w));
  Tensor labels = Tensor::empty({1024}, DType::I32);
  for (int64_t i = 0; i < 1024; ++i) labels.data<int32_t>()[i] = static_cast<int32_t>(i % 512);
  Tensor loss = ops::add(ops::cross_entropy(h, labels),             // 1024 x 512 > 65536
                         ops::sum(ops::softmax(h, 2.0)));           // softmax, sum_all
  backward(loss);
  REQUIRE(w.grad().defined());
  std::vector<Tensor> params{w};
  const double norm = clip_grad_norm(params, 1.0);                  // multi_l2_norm, clip scale
  CHECK(std::isfinite(norm));
  SGD sgd(params, 0.01, 0.9, 1e-4);                                 // sgd_step, 2^18 elements
  sgd.step();

  CHECK(thread_count() == before);
}
