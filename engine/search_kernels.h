// Kernels of the search loop's device-resident bookkeeping: the loss/accuracy accumulators, the
// NaN guard's first bad step, the annealed temperature and ASAP's prune rule all live in one
// float64 state vector on the compute device, so a search step needs no host synchronisation and
// can be captured once as a CUDA graph and replayed (docs/cuda.md, "The step without the host").
// The host reads the vector only at log points. CPU: kernels/cpu/search_step.cpp, CUDA:
// kernels/cuda/search_step.cu; both follow nas::Annealer's double-precision math exactly.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace asap {

// Layout of the state vector (float64).
namespace step_state {
constexpr int kStep = 0;         // completed search steps (the global step counter)
constexpr int kEpoch = 1;        // the running epoch
constexpr int kFirstBad = 2;     // step index of the first non-finite loss or gradient norm, -1: none
constexpr int kBadKind = 3;      // 1: weight step (train batch), 2: alpha step (validation batch)
constexpr int kT = 4;            // the temperature the next forward uses
constexpr int kInvT = 5;         // 1 / kT, read by the Phi softmax
constexpr int kAccum = 8;        // per slot s (0 train, 1 val): kAccum + 3s + {0 loss sum, 1 acc sum, 2 steps}
constexpr int kHeader = 16;      // then the prune log: per (cell type, edge, op) kLogStride values
// {step pruned at (-1: alive), phi, T, theta, the edge's best op, its phi, alpha(best) - alpha(op)}
constexpr int kLogStride = 7;
// constexpr: callable from device code too (nvcc --expt-relaxed-constexpr), as search_step.cu does.
constexpr int64_t size(int edges, int ops) { return kHeader + int64_t(2) * edges * ops * kLogStride; }
constexpr int64_t log_index(int cell_type, int edge, int op, int edges, int ops) {
  return kHeader + ((int64_t(cell_type) * edges + edge) * ops + op) * kLogStride;
}
}  // namespace step_state

// Constants of the annealing schedule (nas::AnnealConfig), fixed for a whole search: safe to pass
// as kernel arguments of a captured graph. Everything that changes lives in the state vector.
struct ScheduleConsts {
  bool constant_T = false;  // temperature_schedule: constant
  bool per_step_T = false;  // temperature_unit: step (else the host sets T at each epoch start)
  double T0 = 1.6, beta = 0.95, T_min = 1e-3;
  bool fraction = true;     // threshold_policy: fraction (c / alive) or exponential
  double c = 0.4, theta0 = 0.05, gamma = 0.95;
  bool theta_per_step = false;
  int edges = 0, ops = 0;
};

// Up to 8 writes state[index[i]] = value[i], passed as kernel arguments (no copy, stream ordered).
struct StatePut {
  int n = 0;
  int index[8] = {};
  double value[8] = {};
  void add(int i, double v) { index[n] = i; value[n] = v; ++n; }
};

struct SearchKernels {
  // One half-step: when loss and norm (0-d, float32 or float64; norm may be undefined) are finite,
  // adds loss, the accuracy of argmax(logits) against labels (I32 [N], first maximum wins) and one
  // step to the accumulators of `slot`; else records kFirstBad/kBadKind unless already set.
  // advance: kStep += 1 and, with a per-step temperature, kT/kInvT follow the schedule.
  void (*record_step)(const Tensor& loss, const Tensor& logits, const Tensor& labels, const Tensor& norm,
                      Tensor& state, int slot, bool advance, const ScheduleConsts& s) = nullptr;
  // ASAP's prune rule for one cell type at (kEpoch, kStep, kT): on every edge with more than one
  // alive op (mask == 0), each op whose Phi is below theta, except the best (first maximum), gets
  // mask = -1e30 (its Phi is exactly 0 from the next forward on) and its log entry.
  void (*prune_test)(const Tensor& alpha, Tensor& mask, Tensor& state, int cell_type,
                     const ScheduleConsts& s) = nullptr;
  void (*put)(Tensor& state, const StatePut& p) = nullptr;
};

SearchKernels& search_kernels_mut(DeviceType t);  // backend registration only
const SearchKernels& search_kernels(DeviceType t);

#define ASAP_REGISTER_SEARCH_KERNEL(DEV, name, fn)                                      \
  static const bool asap_search_reg_##name = [] {                                        \
    ::asap::search_kernels_mut(::asap::DeviceType::DEV).name = fn;                       \
    return true;                                                                         \
  }()

}  // namespace asap
