// Full reductions to a 0-d tensor. Deterministic two-pass scheme: a fixed number of blocks each
// sum a fixed grid-stride slice in double, then one block sums the partials in a fixed order.
// No atomics, so a rerun on the same device gives the same bits.
#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

enum class Red { Sum, Dot, SumSq };

template <Red R>
__global__ void partial_kernel(const float* __restrict__ a, const float* __restrict__ b, int64_t n,
                               double* __restrict__ partial) {
  double s = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double v = a[i];
    if (R == Red::Sum) s += v;
    if (R == Red::Dot) s += v * static_cast<double>(b[i]);
    if (R == Red::SumSq) s += v * v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <Red R>
void reduce_all(const float* a, const float* b, int64_t n, float* out, const char* op) {
  const int nb = reduce_blocks(n);
  DeviceBuffer partial(sizeof(double) * nb);
  ASAP_LAUNCH(partial_kernel<R>, nb, kThreads, 0, stream(), a, b, n, partial.as<double>());
  ASAP_CUDA_LAUNCH_CHECK(op);
  reduce_partials(partial.as<double>(), nb, 1, out, op);
}

void sum_all_cuda(const Tensor& x, Tensor& out) {
  check_f32(x, "sum_all");
  check_f32(out, "sum_all");
  reduce_all<Red::Sum>(fptr(x), nullptr, x.numel(), fptr(out), "sum_all");
}
void dot_cuda(const Tensor& a, const Tensor& b, Tensor& out) {
  check_f32(a, "dot");
  check_f32(b, "dot");
  ASAP_CHECK_SHAPE(a.numel() == b.numel(), "dot: sizes differ ", a.shape().str(), " vs ", b.shape().str());
  reduce_all<Red::Dot>(fptr(a), fptr(b), a.numel(), fptr(out), "dot");
}
void sum_sq_cuda(const Tensor& x, Tensor& out) {
  check_f32(x, "sum_sq");
  reduce_all<Red::SumSq>(fptr(x), nullptr, x.numel(), fptr(out), "sum_sq");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, sum_all, sum_all_cuda);
ASAP_REGISTER_KERNEL(CUDA, dot, dot_cuda);
ASAP_REGISTER_KERNEL(CUDA, sum_sq, sum_sq_cuda);

}  // namespace asap::cuda
