// CUDA kernels of the search loop's state vector (engine/search_kernels.h). All tiny: one block
// each, launched a few times per step, never synchronised; the math is the CPU's
// (kernels/common/search_step_math.h), in double.
#include "engine/search_kernels.h"
#include "kernels/common/search_step_math.h"
#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

__device__ double load_scalar(const void* p, bool f64) {
  if (!p) return 0.0;
  return f64 ? *static_cast<const double*>(p) : double(*static_cast<const float*>(p));
}

// One block: every thread counts the rows it owns, a fixed tree adds them, thread 0 records.
__global__ void record_step_kernel(const void* loss, bool loss_f64, const float* __restrict__ logits,
                                   const int32_t* __restrict__ labels, int64_t N, int64_t K, const void* norm,
                                   bool norm_f64, double* __restrict__ st, int slot, bool advance, ScheduleConsts s) {
  double c = double(search_math::correct_rows(logits, labels, threadIdx.x, N, blockDim.x, K));
  c = block_sum(c);
  if (threadIdx.x == 0)
    search_math::record(st, load_scalar(loss, loss_f64), load_scalar(norm, norm_f64), static_cast<int64_t>(c), N,
                        slot, advance, s);
}

__global__ void prune_test_kernel(const float* __restrict__ alpha, float* __restrict__ mask, double* __restrict__ st,
                                  int cell_type, ScheduleConsts s) {
  search_math::prune_cell(alpha, mask, st, cell_type, s);
}

__global__ void put_kernel(double* __restrict__ st, StatePut p) {
  for (int i = 0; i < p.n; ++i) st[p.index[i]] = p.value[i];
}

void check_state(const Tensor& state) {
  ASAP_CHECK(state.dtype() == DType::F64 && state.is_contiguous() && state.device().is_cuda(),
             "search step: the state must be a contiguous float64 CUDA tensor");
}

const void* scalar_ptr(const Tensor& t, bool& f64) {
  f64 = false;
  if (!t.defined()) return nullptr;
  ASAP_CHECK(t.numel() == 1 && (t.dtype() == DType::F32 || t.dtype() == DType::F64) && t.device().is_cuda(),
             "search step: expected a 0-d float32/float64 CUDA tensor");
  f64 = t.dtype() == DType::F64;
  return t.raw_data();
}

void record_step_cuda(const Tensor& loss, const Tensor& logits, const Tensor& labels, const Tensor& norm,
                      Tensor& state, int slot, bool advance, const ScheduleConsts& s) {
  check_state(state);
  check_f32(logits, "record_step");
  check_i32(labels, "record_step");
  ASAP_CHECK(logits.ndim() == 2 && logits.is_contiguous() && labels.is_contiguous() && labels.numel() == logits.dim(0),
             "record_step: contiguous logits [N,K] and labels [N] expected");
  bool loss_f64 = false, norm_f64 = false;
  const void* lp = scalar_ptr(loss, loss_f64);
  const void* np = scalar_ptr(norm, norm_f64);
  ASAP_LAUNCH(record_step_kernel, 1, kThreads, 0, stream(), lp, loss_f64, fptr(logits), iptr(labels), logits.dim(0),
              logits.dim(1), np, norm_f64, state.data<double>(), slot, advance, s);
  ASAP_CUDA_LAUNCH_CHECK("record_step");
}

void prune_test_cuda(const Tensor& alpha, Tensor& mask, Tensor& state, int cell_type, const ScheduleConsts& s) {
  check_state(state);
  check_f32(alpha, "prune_test");
  check_f32(mask, "prune_test");
  ASAP_CHECK(alpha.is_contiguous() && mask.is_contiguous() && alpha.numel() == int64_t(s.edges) * s.ops &&
                 mask.numel() == alpha.numel() && state.numel() >= step_state::size(s.edges, s.ops),
             "prune_test: alpha and mask must be contiguous [edges, ops] and the state long enough");
  ASAP_LAUNCH(prune_test_kernel, 1, 1, 0, stream(), fptr(alpha), fptr(mask), state.data<double>(), cell_type, s);
  ASAP_CUDA_LAUNCH_CHECK("prune_test");
}

void put_cuda(Tensor& state, const StatePut& p) {
  check_state(state);
  for (int i = 0; i < p.n; ++i)
    ASAP_CHECK(p.index[i] >= 0 && p.index[i] < state.numel(), "state put: index ", p.index[i], " out of range");
  ASAP_LAUNCH(put_kernel, 1, 1, 0, stream(), state.data<double>(), p);
  ASAP_CUDA_LAUNCH_CHECK("state put");
}

}  // namespace

ASAP_REGISTER_SEARCH_KERNEL(CUDA, record_step, record_step_cuda);
ASAP_REGISTER_SEARCH_KERNEL(CUDA, prune_test, prune_test_cuda);
ASAP_REGISTER_SEARCH_KERNEL(CUDA, put, put_cuda);

}  // namespace asap::cuda
