// CPU kernels of the search loop's state vector (engine/search_kernels.h); the math is shared with
// the CUDA kernels in kernels/common/search_step_math.h.
#include "engine/error.h"
#include "engine/search_kernels.h"
#include "kernels/common/search_step_math.h"

namespace asap::cpu {
namespace {

double scalar_value(const Tensor& t) {
  if (!t.defined()) return 0.0;
  ASAP_CHECK(t.numel() == 1, "search step: expected a 0-d tensor, got ", t.shape().str());
  if (t.dtype() == DType::F64) return t.data<double>()[0];
  ASAP_CHECK(t.dtype() == DType::F32, "search step: float32 or float64 scalars only");
  return t.data<float>()[0];
}

void check_state(const Tensor& state) {
  ASAP_CHECK(state.dtype() == DType::F64 && state.is_contiguous(), "search step: the state must be contiguous float64");
}

void record_step_cpu(const Tensor& loss, const Tensor& logits, const Tensor& labels, const Tensor& norm,
                     Tensor& state, int slot, bool advance, const ScheduleConsts& s) {
  check_state(state);
  ASAP_CHECK(logits.dtype() == DType::F32 && logits.ndim() == 2 && labels.dtype() == DType::I32,
             "record_step: float32 logits [N,K] and int32 labels expected");
  const Tensor lg = logits.contiguous(), lb = labels.contiguous();
  const int64_t N = lg.dim(0), K = lg.dim(1);
  const int64_t correct = search_math::correct_rows(lg.data<float>(), lb.data<int32_t>(), 0, N, 1, K);
  search_math::record(state.data<double>(), scalar_value(loss), scalar_value(norm), correct, N, slot, advance, s);
}

void prune_test_cpu(const Tensor& alpha, Tensor& mask, Tensor& state, int cell_type, const ScheduleConsts& s) {
  check_state(state);
  ASAP_CHECK(alpha.dtype() == DType::F32 && mask.dtype() == DType::F32 && alpha.is_contiguous() &&
                 mask.is_contiguous() && alpha.numel() == int64_t(s.edges) * s.ops && mask.numel() == alpha.numel(),
             "prune_test: alpha and mask must be contiguous float32 [edges, ops]");
  ASAP_CHECK(state.numel() >= step_state::size(s.edges, s.ops), "prune_test: state vector too short");
  search_math::prune_cell(alpha.data<float>(), mask.data<float>(), state.data<double>(), cell_type, s);
}

void put_cpu(Tensor& state, const StatePut& p) {
  check_state(state);
  for (int i = 0; i < p.n; ++i) {
    ASAP_CHECK(p.index[i] >= 0 && p.index[i] < state.numel(), "state put: index ", p.index[i], " out of range");
    state.data<double>()[p.index[i]] = p.value[i];
  }
}

}  // namespace

ASAP_REGISTER_SEARCH_KERNEL(CPU, record_step, record_step_cpu);
ASAP_REGISTER_SEARCH_KERNEL(CPU, prune_test, prune_test_cpu);
ASAP_REGISTER_SEARCH_KERNEL(CPU, put, put_cpu);

}  // namespace asap::cpu
