// CPU memory-bound kernels on DARTS-like shapes: max/avg pool, batch norm and the mixed-op
// weighted sum (forward and backward), each as GB/s of compulsory traffic next to a measured
// memcpy of the same size, so "% of copy bandwidth" reads straight off the two counters.
// Run: OMP_NUM_THREADS=2 ./cpu_kernel_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "engine/kernel_table.h"
#include "engine/rng.h"

using namespace asap;

namespace {

Tensor rnd(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s, DType::F32);
  Generator g(seed);
  g.uniform_(t, -1.0, 1.0);
  return t;
}

void set_bandwidth(benchmark::State& st, double bytes) {
  st.counters["GB/s"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Args: N, C, HW. Reference: copying the input once (read + write).
void BM_copy(benchmark::State& st) {
  Tensor x = rnd({st.range(0), st.range(1), st.range(2), st.range(2)}, 1), y = Tensor::empty_like(x);
  for (auto _ : st) {
    std::memcpy(y.raw_data(), x.raw_data(), x.nbytes());
    benchmark::DoNotOptimize(y.raw_data());
  }
  set_bandwidth(st, 2.0 * x.nbytes());
}

// Args: N, C, HW, stride, max (1) or avg (0)
void BM_pool_fwd(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), HW = st.range(2);
  Pool2dParams p{3, int(st.range(3)), 1};
  const int64_t Ho = (HW + 2 - 3) / p.stride + 1;
  Tensor x = rnd({N, C, HW, HW}, 1), y = Tensor::empty({N, C, Ho, Ho});
  Tensor arg = Tensor::empty({N, C, Ho, Ho}, DType::I32);
  const auto& kt = kernels(DeviceType::CPU);
  for (auto _ : st) {
    if (st.range(4)) kt.maxpool_fwd(x, y, arg, p);
    else kt.avgpool_fwd(x, y, p);
    benchmark::DoNotOptimize(y.raw_data());
  }
  set_bandwidth(st, double(x.nbytes() + y.nbytes() + (st.range(4) ? arg.nbytes() : 0)));
}

// Args: N, C, HW. Train-mode forward (statistics + normalise) and backward.
void BM_bn(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), HW = st.range(2);
  Tensor x = rnd({N, C, HW, HW}, 1), y = Tensor::empty_like(x), dy = rnd(x.shape(), 2), dx = Tensor::empty_like(x);
  Tensor mean = Tensor::empty({C}), invstd = Tensor::empty({C});
  Tensor rm = Tensor::zeros({C}), rv = Tensor::full({C}, 1.0);
  Tensor none;
  const auto& kt = kernels(DeviceType::CPU);
  for (auto _ : st) {
    kt.bn_fwd_train(x, none, none, y, mean, invstd, rm, rv, BatchNormParams{});
    kt.bn_bwd_train(x, dy, none, mean, invstd, dx, none, none);
    benchmark::DoNotOptimize(dx.raw_data());
  }
  // forward reads x (stats) and x again, writes y; backward reads x, dy (twice), writes dx.
  set_bandwidth(st, 7.0 * x.nbytes());
}

// Args: N, C, HW, K. Forward: K reads + 1 write; backward: K reads of x_k + 1 of dy + K writes.
void BM_wsum(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), HW = st.range(2), K = st.range(3);
  std::vector<Tensor> xs, dxs;
  for (int64_t k = 0; k < K; ++k) {
    xs.push_back(rnd({N, C, HW, HW}, 10 + k));
    dxs.push_back(Tensor::empty({N, C, HW, HW}));
  }
  Tensor w = rnd({K}, 3), y = Tensor::empty({N, C, HW, HW}), dy = rnd(y.shape(), 4), dw = Tensor::empty({K});
  const auto& kt = kernels(DeviceType::CPU);
  for (auto _ : st) {
    kt.wsum_fwd(xs, w, y);
    kt.wsum_bwd(xs, w, dy, dxs, dw);
    benchmark::DoNotOptimize(dw.raw_data());
  }
  set_bandwidth(st, double(y.nbytes()) * (K + 1 + K + 1 + K));
}

}  // namespace

BENCHMARK(BM_copy)->Args({32, 16, 28})->Args({32, 32, 14})->Args({32, 64, 7});
BENCHMARK(BM_pool_fwd)->Args({32, 16, 28, 1, 1})->Args({32, 16, 28, 1, 0})->Args({32, 16, 28, 2, 1})->Args({32, 32, 14, 1, 1})->Args({32, 64, 7, 1, 1});
BENCHMARK(BM_bn)->Args({32, 16, 28})->Args({32, 32, 14})->Args({32, 64, 7});
BENCHMARK(BM_wsum)->Args({32, 16, 28, 7})->Args({32, 16, 28, 3})->Args({32, 32, 14, 7})->Args({32, 64, 7, 7});
BENCHMARK_MAIN();
