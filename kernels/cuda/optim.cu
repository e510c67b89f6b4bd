// Multi-tensor optimizer steps: a DARTS supernet has hundreds of small parameter tensors, so one
// launch per tensor would be launch-bound. The group is cut into fixed chunks across tensors; a
// table of chunk pointers lives on the device, cached by the exact pointer list
// (kernels/cuda/multi_tensor.cuh: no copy while the caching allocator hands back the same
// addresses; on a change, one upload from pinned memory kept with the cache entry, valid under
// stream capture), and ONE launch updates every tensor (block b owns chunk b). Formulas are the
// CPU backend's, element for element (PyTorch SGD with dampening 0, and torch.optim.Adam's
// arrangement of bias correction). With device scalars (SgdArgs::scalars) lr and Adam's step come
// from device memory, so a captured step replays with the current values; with a gate, every
// block returns before writing anything when the gate's value is not finite.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/host_sync.h"
#include "kernels/cuda/multi_tensor.cuh"

namespace asap::cuda {
namespace {

constexpr int64_t kChunk = 4096;  // elements per block

struct OptChunk {
  float* p;
  const float* g;
  float* s1;  // momentum buffer / Adam m
  float* s2;  // Adam v
  int64_t n;
};

struct SgdConsts {
  float lr, mom, wd;
  bool use_buf, nesterov, use_wd;
  const double* scalars;  // optional {lr, step}
  const void* gate;       // optional 0-d
  bool gate_f64;
};
struct AdamConsts {
  float step_size, bc2_sqrt, b1, b2, one_b1, one_b2, eps, wd;
  bool use_wd;
  const double* scalars;  // optional {lr, step}: step_size and bc2_sqrt computed here from them
  double beta1, beta2;
  int64_t step_offset;
  const void* gate;
  bool gate_f64;
};

__global__ void sgd_kernel(const OptChunk* __restrict__ chunks, SgdConsts c) {
  if (!gate_open(c.gate, c.gate_f64)) return;
  if (c.scalars) c.lr = static_cast<float>(c.scalars[0]);
  const OptChunk ch = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < ch.n; i += blockDim.x) {
    float g = ch.g[i];
    const float p = ch.p[i];
    if (c.use_wd) g += c.wd * p;
    if (c.use_buf) {
      const float b = c.mom * ch.s1[i] + g;
      ch.s1[i] = b;
      g = c.nesterov ? g + c.mom * b : b;
    }
    ch.p[i] = p - c.lr * g;
  }
}

__global__ void adam_kernel(const OptChunk* __restrict__ chunks, AdamConsts c) {
  if (!gate_open(c.gate, c.gate_f64)) return;
  if (c.scalars) {  // the host formulas of adam_step_cuda below, from device values
    const double t = c.scalars[1] + static_cast<double>(c.step_offset);
    const double bc1 = 1.0 - pow(c.beta1, t), bc2 = 1.0 - pow(c.beta2, t);
    c.step_size = static_cast<float>(c.scalars[0] / bc1);
    c.bc2_sqrt = static_cast<float>(sqrt(bc2));
  }
  const OptChunk ch = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < ch.n; i += blockDim.x) {
    float g = ch.g[i];
    const float p = ch.p[i];
    if (c.use_wd) g += c.wd * p;
    const float m = c.b1 * ch.s1[i] + c.one_b1 * g;
    const float v = c.b2 * ch.s2[i] + c.one_b2 * g * g;
    ch.s1[i] = m;
    ch.s2[i] = v;
    ch.p[i] = p - c.step_size * (m / (sqrtf(v) / c.bc2_sqrt + c.eps));
  }
}

void check_list(const std::vector<Tensor>& params, const std::vector<Tensor>& xs, const char* op, const char* what) {
  ASAP_CHECK(xs.size() == params.size(), op, ": ", what, " has ", xs.size(), " tensors for ", params.size(),
             " params");
  for (size_t i = 0; i < xs.size(); ++i) {
    ASAP_CHECK(xs[i].defined(), op, ": ", what, "[", i, "] is undefined");
    check_f32(xs[i], op);
    ASAP_CHECK_SHAPE(xs[i].numel() == params[i].numel(), op, ": ", what, "[", i, "] has ", xs[i].numel(),
                     " elements, param has ", params[i].numel());
    ASAP_CHECK(xs[i].is_contiguous(), op, ": ", what, "[", i, "] must be contiguous");
  }
}

DeviceTableCache& table_cache() {
  static DeviceTableCache& c = DeviceTableCache::leaked();
  return c;
}

// The device chunk table for this exact list of tensors (cached; see the file comment).
int chunk_table(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>* s1,
                const std::vector<Tensor>* s2, const OptChunk*& table) {
  std::vector<uint64_t> key;
  key.reserve(params.size() * 5 + 1);
  key.push_back((s1 ? 1u : 0u) | (s2 ? 2u : 0u));
  int64_t nc = 0;
  for (size_t t = 0; t < params.size(); ++t) {
    const int64_t n = params[t].numel();
    key.push_back(reinterpret_cast<uintptr_t>(fptr(params[t])));
    key.push_back(reinterpret_cast<uintptr_t>(fptr(grads[t])));
    key.push_back(s1 ? reinterpret_cast<uintptr_t>(fptr((*s1)[t])) : 0);
    key.push_back(s2 ? reinterpret_cast<uintptr_t>(fptr((*s2)[t])) : 0);
    key.push_back(static_cast<uint64_t>(n));
    nc += (n + kChunk - 1) / kChunk;
  }
  if (nc == 0) return 0;
  ASAP_CHECK(nc < (int64_t{1} << 31), "optimizer step: too many chunks");
  const DeviceTableCache::View v = table_cache().get(std::move(key), 0, [&](std::vector<unsigned char>& out) {
    for (size_t t = 0; t < params.size(); ++t) {
      const int64_t n = params[t].numel();
      for (int64_t b = 0; b < n; b += kChunk)
        append_pod(out, OptChunk{fptr(params[t]) + b, fptr(grads[t]) + b, s1 ? fptr((*s1)[t]) + b : nullptr,
                                 s2 ? fptr((*s2)[t]) + b : nullptr, std::min(kChunk, n - b)});
    }
  });
  table = static_cast<const OptChunk*>(v.table);
  return static_cast<int>(nc);
}

const double* scalars_ptr(const Tensor& s, const char* op) {
  if (!s.defined()) return nullptr;
  ASAP_CHECK(s.dtype() == DType::F64 && s.numel() >= 2 && s.device().is_cuda() && s.is_contiguous(), op,
             ": device scalars must be a contiguous float64 CUDA tensor of 2 elements");
  return static_cast<const double*>(s.raw_data());
}
const void* gate_ptr(const Tensor& g, bool& f64, const char* op) {
  f64 = false;
  if (!g.defined()) return nullptr;
  ASAP_CHECK((g.dtype() == DType::F64 || g.dtype() == DType::F32) && g.numel() == 1 && g.device().is_cuda(), op,
             ": the gate must be a one-element float32/float64 CUDA tensor");
  f64 = g.dtype() == DType::F64;
  return g.raw_data();
}

void sgd_step_cuda(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& bufs,
                   const SgdArgs& a) {
  ASAP_CHECK(!params.empty(), "sgd_step: empty parameter group");
  check_list(params, params, "sgd_step", "params");
  check_list(params, grads, "sgd_step", "grads");
  const bool use_buf = a.momentum != 0.0;
  if (use_buf) check_list(params, bufs, "sgd_step", "momentum_bufs");
  ASAP_CHECK(!a.nesterov || a.momentum > 0.0, "sgd_step: Nesterov needs momentum > 0");
  const OptChunk* table = nullptr;
  const int nc = chunk_table(params, grads, use_buf ? &bufs : nullptr, nullptr, table);
  if (nc == 0) return;
  SgdConsts c{static_cast<float>(a.lr), static_cast<float>(a.momentum), static_cast<float>(a.weight_decay),
              use_buf, a.nesterov, a.weight_decay != 0.0, scalars_ptr(a.scalars, "sgd_step"), nullptr, false};
  c.gate = gate_ptr(a.gate, c.gate_f64, "sgd_step");
  ASAP_LAUNCH(sgd_kernel, nc, kThreads, 0, stream(), table, c);
  ASAP_CUDA_LAUNCH_CHECK("sgd_step");
}

void adam_step_cuda(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                    std::vector<Tensor>& v, const AdamArgs& a) {
  ASAP_CHECK(!params.empty(), "adam_step: empty parameter group");
  check_list(params, params, "adam_step", "params");
  check_list(params, grads, "adam_step", "grads");
  check_list(params, m, "adam_step", "m");
  check_list(params, v, "adam_step", "v");
  ASAP_CHECK(a.scalars.defined() || a.step >= 1, "adam_step: step must be >= 1 (bias correction), got ", a.step);
  const OptChunk* table = nullptr;
  const int nc = chunk_table(params, grads, &m, &v, table);
  if (nc == 0) return;
  const double step = a.step >= 1 ? static_cast<double>(a.step) : 1.0;  // unused with device scalars
  const double bc1 = 1.0 - std::pow(a.beta1, step);
  const double bc2 = 1.0 - std::pow(a.beta2, step);
  AdamConsts c{static_cast<float>(a.lr / bc1), static_cast<float>(std::sqrt(bc2)), static_cast<float>(a.beta1),
               static_cast<float>(a.beta2), static_cast<float>(1.0 - a.beta1), static_cast<float>(1.0 - a.beta2),
               static_cast<float>(a.eps), static_cast<float>(a.weight_decay), a.weight_decay != 0.0,
               scalars_ptr(a.scalars, "adam_step"), a.beta1, a.beta2, a.step_offset, nullptr, false};
  c.gate = gate_ptr(a.gate, c.gate_f64, "adam_step");
  ASAP_LAUNCH(adam_kernel, nc, kThreads, 0, stream(), table, c);
  ASAP_CUDA_LAUNCH_CHECK("adam_step");
}

__global__ void scalar_set_kernel(double* s, int64_t index, double value) { s[index] = value; }

__global__ void step_advance_kernel(double* s, const void* gate, bool gate_f64) {
  if (gate_open(gate, gate_f64)) s[1] += 1.0;
}

void optim_scalar_set_cuda(Tensor& scalars, int64_t index, double value) {
  ASAP_CHECK(scalars.dtype() == DType::F64 && scalars.device().is_cuda() && index >= 0 && index < scalars.numel(),
             "optim_scalar_set: needs a float64 CUDA tensor and an index inside it");
  ASAP_LAUNCH(scalar_set_kernel, 1, 1, 0, stream(), static_cast<double*>(scalars.raw_data()), index, value);
  ASAP_CUDA_LAUNCH_CHECK("optim_scalar_set");
}

void optim_step_advance_cuda(Tensor& scalars, const Tensor& gate) {
  double* s = const_cast<double*>(scalars_ptr(scalars, "optim_step_advance"));
  ASAP_CHECK(s, "optim_step_advance: undefined scalars");
  bool f64 = false;
  const void* g = gate_ptr(gate, f64, "optim_step_advance");
  ASAP_LAUNCH(step_advance_kernel, 1, 1, 0, stream(), s, g, f64);
  ASAP_CUDA_LAUNCH_CHECK("optim_step_advance");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, optim_scalar_set, optim_scalar_set_cuda);
ASAP_REGISTER_KERNEL(CUDA, optim_step_advance, optim_step_advance_cuda);
ASAP_REGISTER_KERNEL(CUDA, sgd_step, sgd_step_cuda);
ASAP_REGISTER_KERNEL(CUDA, adam_step, adam_step_cuda);

}  // namespace asap::cuda
