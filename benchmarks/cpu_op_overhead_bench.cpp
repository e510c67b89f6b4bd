// Host cost of one small op end to end (issue 15, item 2): validation, output allocation, the
// autograd tape node and its closure, and the kernel dispatch, on 1-element tensors so the
// arithmetic is negligible. Each layer is measured on its own, so the differences say where the
// nanoseconds go:
//   BM_kernel_call      the kernel table call alone (output preallocated)
//   BM_tensor_empty     one output allocation through the caching allocator
//   BM_op_nograd/...    ops::relu / ops::add with autograd off (validation + allocation + kernel)
//   BM_op_grad/...      the same with an input that requires grad (+ tape node and closure)
//   BM_op_fwd_bwd/...   forward and backward of one op (+ the backward closure and its kernel)
// Run: OMP_NUM_THREADS=1 ./cpu_op_overhead_bench
#include <benchmark/benchmark.h>

#include "engine/autograd.h"
#include "engine/kernel_table.h"
#include "engine/ops.h"

using namespace asap;

namespace {

Tensor one(double v, bool grad = false) {
  Tensor t = Tensor::empty({1}, DType::F32);
  t.fill_(v);
  t.set_requires_grad(grad);
  return t;
}

void BM_kernel_call(benchmark::State& st) {
  Tensor x = one(0.5), y = one(0.0);
  for (auto _ : st) {
    ASAP_KERNEL(x.device(), relu_fwd)(x, y);
    benchmark::DoNotOptimize(y.raw_data());
  }
}

void BM_tensor_empty(benchmark::State& st) {
  for (auto _ : st) {
    Tensor t = Tensor::empty({1}, DType::F32);
    benchmark::DoNotOptimize(t.raw_data());
  }
}

// which: 0 = relu, 1 = add.
Tensor run_op(int which, const Tensor& a, const Tensor& b) { return which == 0 ? ops::relu(a) : ops::add(a, b); }

void BM_op_nograd(benchmark::State& st, int which) {
  NoGradGuard ng;
  Tensor a = one(0.5), b = one(0.25);
  for (auto _ : st) {
    Tensor y = run_op(which, a, b);
    benchmark::DoNotOptimize(y.raw_data());
  }
}

void BM_op_grad(benchmark::State& st, int which) {
  Tensor a = one(0.5, true), b = one(0.25, true);
  int64_t n = 0;
  for (auto _ : st) {
    Tensor y = run_op(which, a, b);
    benchmark::DoNotOptimize(y.raw_data());
    if (++n % 256 == 0) {  // keep the tape short, as a step does
      st.PauseTiming();
      clear_tape();
      st.ResumeTiming();
    }
  }
  clear_tape();
}

void BM_op_fwd_bwd(benchmark::State& st, int which) {
  Tensor a = one(0.5, true), b = one(0.25, true), seed = one(1.0);
  for (auto _ : st) {
    backward(run_op(which, a, b), seed);
    benchmark::DoNotOptimize(a.grad().raw_data());
  }
}

}  // namespace

BENCHMARK(BM_kernel_call);
BENCHMARK(BM_tensor_empty);
BENCHMARK_CAPTURE(BM_op_nograd, relu, 0);
BENCHMARK_CAPTURE(BM_op_nograd, add, 1);
BENCHMARK_CAPTURE(BM_op_grad, relu, 0);
BENCHMARK_CAPTURE(BM_op_grad, add, 1);
BENCHMARK_CAPTURE(BM_op_fwd_bwd, relu, 0);
BENCHMARK_CAPTURE(BM_op_fwd_bwd, add, 1);
BENCHMARK_MAIN();
