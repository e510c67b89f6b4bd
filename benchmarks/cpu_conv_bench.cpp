// CPU convolution kernels on DARTS-like shapes (N=32, C=8..32, H=W=28/14/7):
//   depthwise 3x3/5x5 forward and backward (GB/s of compulsory traffic),
//   fused vs unfused separable block, forward+backward through autograd (GFLOP/s),
//   1x1 conv (the per-sample GEMM) forward (GFLOP/s), the auxiliary head's convs (GFLOP/s).
// Run: OMP_NUM_THREADS=2 ./cpu_conv_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include "engine/autograd.h"
#include "engine/kernel_table.h"
#include "engine/ops.h"
#include "engine/rng.h"

using namespace asap;

namespace {

constexpr int64_t kN = 32;

Tensor rnd(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s, DType::F32);
  Generator g(seed);
  g.uniform_(t, -1.0, 1.0);
  return t;
}

int64_t out_hw(int64_t hw, int k, const Conv2dParams& p) {
  return (hw + 2 * p.padding - p.dilation * (k - 1) - 1) / p.stride + 1;
}

// Args: C, HW, k, stride
void BM_dwconv_fwd(benchmark::State& st) {
  const int64_t C = st.range(0), HW = st.range(1);
  const int k = int(st.range(2));
  Conv2dParams p{int(st.range(3)), k / 2, 1, int(C)};
  const int64_t Ho = out_hw(HW, k, p);
  Tensor x = rnd({kN, C, HW, HW}, 1), w = rnd({C, 1, k, k}, 2), y = Tensor::empty({kN, C, Ho, Ho});
  auto fwd = kernels(DeviceType::CPU).conv2d_fwd;
  for (auto _ : st) {
    fwd(x, w, y, p);
    benchmark::DoNotOptimize(y.raw_data());
  }
  const double bytes = double(x.nbytes() + y.nbytes() + w.nbytes());
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * kN * C * Ho * Ho * k * k * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void BM_dwconv_bwd(benchmark::State& st) {
  const int64_t C = st.range(0), HW = st.range(1);
  const int k = int(st.range(2));
  Conv2dParams p{int(st.range(3)), k / 2, 1, int(C)};
  const int64_t Ho = out_hw(HW, k, p);
  Tensor x = rnd({kN, C, HW, HW}, 1), w = rnd({C, 1, k, k}, 2), dy = rnd({kN, C, Ho, Ho}, 3);
  Tensor dx = Tensor::empty(x.shape()), dw = Tensor::empty(w.shape());
  const auto& kt = kernels(DeviceType::CPU);
  for (auto _ : st) {
    kt.conv2d_bwd_data(dy, w, dx, p);
    kt.conv2d_bwd_weight(x, dy, dw, p);
    benchmark::DoNotOptimize(dx.raw_data());
  }
  // data: read dy, write dx; weight: read x and dy
  const double bytes = double(2 * dy.nbytes() + 2 * x.nbytes());
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  st.counters["GFLOP/s"] = benchmark::Counter(4.0 * kN * C * Ho * Ho * k * k * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// One separable block, forward + backward through autograd. Args: C, HW, k, stride, fused.
void BM_sepblock(benchmark::State& st) {
  const int64_t C = st.range(0), HW = st.range(1);
  const int k = int(st.range(2));
  const bool fused = st.range(4) != 0;
  Conv2dParams p{int(st.range(3)), k / 2, 1, int(C)};
  const int64_t Ho = out_hw(HW, k, p);
  Tensor x = rnd({kN, C, HW, HW}, 1), wd = rnd({C, 1, k, k}, 2), wp = rnd({C, C, 1, 1}, 3);
  Tensor dy = rnd({kN, C, Ho, Ho}, 4);
  for (Tensor* t : {&x, &wd, &wp}) t->set_requires_grad(true);
  for (auto _ : st) {
    Tensor y = fused ? ops::sep_block(x, wd, wp, p)
                     : ops::conv2d(ops::conv2d(ops::relu(x), wd, p), wp, Conv2dParams{});
    backward(y, dy);
    for (Tensor* t : {&x, &wd, &wp}) t->zero_grad();
  }
  const double flops = 3.0 * 2.0 * kN * Ho * Ho * (C * k * k + C * C);  // fwd + 2x for bwd
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(fused ? "fused" : "unfused");
}

// 1x1 conv forward (GEMM per sample). Args: C, HW, stride
void BM_pwconv_fwd(benchmark::State& st) {
  const int64_t C = st.range(0), HW = st.range(1);
  Conv2dParams p{int(st.range(2)), 0, 1, 1};
  const int64_t Ho = out_hw(HW, 1, p);
  Tensor x = rnd({kN, C, HW, HW}, 1), w = rnd({C, C, 1, 1}, 2), y = Tensor::empty({kN, C, Ho, Ho});
  auto fwd = kernels(DeviceType::CPU).conv2d_fwd;
  for (auto _ : st) {
    fwd(x, w, y, p);
    benchmark::DoNotOptimize(y.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * kN * C * C * Ho * Ho * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// 1x1 conv backward: data (W^T dY per sample) and weight (dY X^T per sample, reduced). Args: C, HW, stride
void BM_pwconv_bwd(benchmark::State& st) {
  const int64_t C = st.range(0), HW = st.range(1);
  Conv2dParams p{int(st.range(2)), 0, 1, 1};
  const int64_t Ho = out_hw(HW, 1, p);
  Tensor x = rnd({kN, C, HW, HW}, 1), w = rnd({C, C, 1, 1}, 2), dy = rnd({kN, C, Ho, Ho}, 3);
  Tensor dx = Tensor::empty_like(x), dw = Tensor::empty_like(w);
  const auto& kt = kernels(DeviceType::CPU);
  for (auto _ : st) {
    kt.conv2d_bwd_data(dy, w, dx, p);
    kt.conv2d_bwd_weight(x, dy, dw, p);
    benchmark::DoNotOptimize(dw.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(4.0 * kN * C * C * Ho * Ho * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The auxiliary head's convs (DARTS: 1x1 C->128 on 2x2, then 2x2 128->768 to 1x1), batch 96:
// forward, backward-data and backward-weight. Tiny output planes: the path that batches samples
// into one GEMM per block (kernels/cpu/conv.cpp). Args: Cin, Cout, k (input plane 2x2).
void BM_auxconv(benchmark::State& st) {
  constexpr int64_t kBatch = 96;
  const int64_t Ci = st.range(0), Co = st.range(1);
  const int k = int(st.range(2));
  Conv2dParams p{1, 0, 1, 1};
  const int64_t Ho = out_hw(2, k, p);
  Tensor x = rnd({kBatch, Ci, 2, 2}, 1), w = rnd({Co, Ci, k, k}, 2), y = Tensor::empty({kBatch, Co, Ho, Ho});
  Tensor dy = rnd(y.shape(), 3), dx = Tensor::empty_like(x), dw = Tensor::empty_like(w);
  const auto& kt = kernels(DeviceType::CPU);
  for (auto _ : st) {
    kt.conv2d_fwd(x, w, y, p);
    kt.conv2d_bwd_data(dy, w, dx, p);
    kt.conv2d_bwd_weight(x, dy, dw, p);
    benchmark::DoNotOptimize(dw.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(6.0 * kBatch * Co * Ci * k * k * Ho * Ho * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void dw_args(benchmark::internal::Benchmark* b) {
  for (auto [C, HW] : {std::pair{8, 28}, {16, 14}, {32, 7}})
    for (int k : {3, 5})
      for (int s : {1, 2}) b->Args({C, HW, k, s});
}
void sep_args(benchmark::internal::Benchmark* b) {
  for (auto [C, HW] : {std::pair{8, 28}, {16, 14}, {32, 7}})
    for (int k : {3, 5})
      for (int fused : {1, 0}) b->Args({C, HW, k, 1, fused});
}
void pw_args(benchmark::internal::Benchmark* b) {
  for (auto [C, HW] : {std::pair{8, 28}, {16, 28}, {16, 14}, {32, 14}, {32, 7}})
    for (int s : {1, 2}) b->Args({C, HW, s});
}

}  // namespace

BENCHMARK(BM_dwconv_fwd)->Apply(dw_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_dwconv_bwd)->Apply(dw_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_sepblock)->Apply(sep_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_pwconv_fwd)->Apply(pw_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_pwconv_bwd)->Apply(pw_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_auxconv)->Args({32, 128, 1})->Args({128, 768, 2})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_MAIN();
