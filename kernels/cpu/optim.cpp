// CPU optimizer kernels: fused SGD (momentum, weight decay, Nesterov) and Adam (L2 weight decay,
// bias correction) over every tensor of a group in one call.
// A DARTS network has hundreds of small parameter tensors, so one OpenMP region per tensor would
// spend more time forking than computing: the group is cut into fixed-size chunks across tensors
// and a single parallel loop walks the chunks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

constexpr int64_t kChunk = int64_t{1} << 14;         // elements per work item
constexpr int64_t kParallelMin = int64_t{1} << 15;   // below this, threads cost more than they save

struct Chunk {
  size_t t;
  int64_t begin, end;
};

// Validates that the state lists match the params (count, dtype, numel, device, contiguity);
// `what` names the list in the error.
void check_list(const std::vector<Tensor>& params, const std::vector<Tensor>& xs, const char* kernel,
                const char* what) {
  ASAP_CHECK(xs.size() == params.size(), kernel, ": ", what, " has ", xs.size(), " tensors for ",
             params.size(), " params");
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& p = params[i];
    const Tensor& x = xs[i];
    ASAP_CHECK(x.defined(), kernel, ": ", what, "[", i, "] is undefined");
    ASAP_CHECK(x.dtype() == p.dtype(), kernel, ": ", what, "[", i, "] is ", dtype_name(x.dtype()),
               ", param is ", dtype_name(p.dtype()));
    ASAP_CHECK_SHAPE(x.numel() == p.numel(), kernel, ": ", what, "[", i, "] has ", x.numel(),
                     " elements, param has ", p.numel());
    ASAP_CHECK(x.device() == p.device(), kernel, ": ", what, "[", i, "] is on ", x.device().str());
    ASAP_CHECK(x.is_contiguous(), kernel, ": ", what, "[", i, "] must be contiguous");
  }
}

DType check_params(const std::vector<Tensor>& params, const char* kernel) {
  ASAP_CHECK(!params.empty(), kernel, ": empty parameter group");
  const DType dt = params[0].dtype();
  ASAP_CHECK(dt == DType::F32 || dt == DType::F64, kernel, ": parameters must be float32 or float64, got ",
             dtype_name(dt));
  check_list(params, params, kernel, "params");
  return dt;
}

// Device-resident scalars and gate (engine/kernel_table.h SgdArgs) on the CPU backend: the same
// semantics, read from the CPU tensors.
bool gate_open(const Tensor& gate, const char* kernel) {
  if (!gate.defined()) return true;
  ASAP_CHECK(gate.numel() == 1 && gate.device() == Device::cpu() && (gate.dtype() == DType::F32 || gate.dtype() == DType::F64),
             kernel, ": the gate must be a one-element float32/float64 CPU tensor");
  const double g = gate.dtype() == DType::F64 ? gate.data<double>()[0] : static_cast<double>(gate.data<float>()[0]);
  return std::isfinite(g);
}
const double* scalars_of(const Tensor& s, const char* kernel) {
  if (!s.defined()) return nullptr;
  ASAP_CHECK(s.dtype() == DType::F64 && s.numel() >= 2 && s.device() == Device::cpu() && s.is_contiguous(), kernel,
             ": device scalars must be a contiguous float64 CPU tensor of 2 elements");
  return s.data<double>();
}

std::vector<Chunk> make_chunks(const std::vector<Tensor>& params, int64_t& total) {
  std::vector<Chunk> chunks;
  total = 0;
  for (size_t t = 0; t < params.size(); ++t) {
    const int64_t n = params[t].numel();
    total += n;
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({t, b, std::min(n, b + kChunk)});
  }
  return chunks;
}

// PyTorch SGD (dampening 0): g = grad + wd * p; buf = momentum * buf + g; g = nesterov ? g +
// momentum * buf : buf; p -= lr * g. Step 1 of PyTorch sets buf = g; the optimizer passes a
// freshly zeroed buffer on a param's first step, and momentum * 0 + g == g exactly, so no flag
// is needed. With momentum == 0 no buffers are used (bufs may be empty).
template <typename T>
void sgd_impl(std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              std::vector<Tensor>& bufs, const SgdArgs& a) {
  int64_t total = 0;
  const std::vector<Chunk> chunks = make_chunks(params, total);
  const T lr = static_cast<T>(a.lr), mom = static_cast<T>(a.momentum), wd = static_cast<T>(a.weight_decay);
  const bool use_buf = a.momentum != 0.0, nesterov = a.nesterov, use_wd = a.weight_decay != 0.0;
  const int64_t nc = static_cast<int64_t>(chunks.size());
  cpu::parallel_for_each(nc, total >= kParallelMin, [&](int64_t c) {
    const Chunk& ch = chunks[c];
    T* p = params[ch.t].data<T>();
    const T* gr = grads[ch.t].data<T>();
    T* buf = use_buf ? bufs[ch.t].data<T>() : nullptr;
    for (int64_t i = ch.begin; i < ch.end; ++i) {
      T g = gr[i];
      if (use_wd) g += wd * p[i];
      if (use_buf) {
        const T b = mom * buf[i] + g;
        buf[i] = b;
        g = nesterov ? g + mom * b : b;
      }
      p[i] -= lr * g;
    }
  });
}

void sgd_step_cpu(std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                  std::vector<Tensor>& bufs, const SgdArgs& a) {
  const DType dt = check_params(params, "sgd_step");
  check_list(params, grads, "sgd_step", "grads");
  if (a.momentum != 0.0) check_list(params, bufs, "sgd_step", "momentum_bufs");
  ASAP_CHECK(!a.nesterov || a.momentum > 0.0, "sgd_step: Nesterov needs momentum > 0");
  if (!gate_open(a.gate, "sgd_step")) return;
  SgdArgs b = a;
  if (const double* s = scalars_of(a.scalars, "sgd_step")) b.lr = s[0];
  if (dt == DType::F32)
    sgd_impl<float>(params, grads, bufs, b);
  else
    sgd_impl<double>(params, grads, bufs, b);
}

// Adam as torch.optim.Adam (the DARTS alpha optimizer): L2 weight decay added to the gradient,
// m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). This is PyTorch's arrangement of
// p -= lr * mhat / (sqrt(vhat) + eps); keeping it makes float32 results track PyTorch's closely.
template <typename T>
void adam_impl(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& ms,
               std::vector<Tensor>& vs, const AdamArgs& a) {
  int64_t total = 0;
  const std::vector<Chunk> chunks = make_chunks(params, total);
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.step));
  const T step_size = static_cast<T>(a.lr / bc1);
  const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T b1 = static_cast<T>(a.beta1), b2 = static_cast<T>(a.beta2);
  const T one_b1 = static_cast<T>(1.0 - a.beta1), one_b2 = static_cast<T>(1.0 - a.beta2);
  const T eps = static_cast<T>(a.eps), wd = static_cast<T>(a.weight_decay);
  const bool use_wd = a.weight_decay != 0.0;
  const int64_t nc = static_cast<int64_t>(chunks.size());
  cpu::parallel_for_each(nc, total >= kParallelMin, [&](int64_t c) {
    const Chunk& ch = chunks[c];
    T* p = params[ch.t].data<T>();
    const T* gr = grads[ch.t].data<T>();
    T* m = ms[ch.t].data<T>();
    T* v = vs[ch.t].data<T>();
    for (int64_t i = ch.begin; i < ch.end; ++i) {
      T g = gr[i];
      if (use_wd) g += wd * p[i];
      const T mi = b1 * m[i] + one_b1 * g;
      const T vi = b2 * v[i] + one_b2 * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] -= step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
    }
  });
}

void adam_step_cpu(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                   std::vector<Tensor>& v, const AdamArgs& a) {
  const DType dt = check_params(params, "adam_step");
  check_list(params, grads, "adam_step", "grads");
  check_list(params, m, "adam_step", "m");
  check_list(params, v, "adam_step", "v");
  if (!gate_open(a.gate, "adam_step")) return;
  AdamArgs b = a;
  if (const double* s = scalars_of(a.scalars, "adam_step")) {
    b.lr = s[0];
    b.step = static_cast<int64_t>(s[1]) + a.step_offset;
  }
  ASAP_CHECK(b.step >= 1, "adam_step: step must be >= 1 (bias correction), got ", b.step);
  if (dt == DType::F32)
    adam_impl<float>(params, grads, m, v, b);
  else
    adam_impl<double>(params, grads, m, v, b);
}

void optim_scalar_set_cpu(Tensor& scalars, int64_t index, double value) {
  ASAP_CHECK(scalars.dtype() == DType::F64 && scalars.device() == Device::cpu() && index >= 0 && index < scalars.numel(),
             "optim_scalar_set: needs a float64 CPU tensor and an index inside it");
  scalars.data<double>()[index] = value;
}

void optim_step_advance_cpu(Tensor& scalars, const Tensor& gate) {
  double* s = const_cast<double*>(scalars_of(scalars, "optim_step_advance"));
  ASAP_CHECK(s, "optim_step_advance: undefined scalars");
  if (gate_open(gate, "optim_step_advance")) s[1] += 1.0;
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, optim_scalar_set, optim_scalar_set_cpu);
ASAP_REGISTER_KERNEL(CPU, optim_step_advance, optim_step_advance_cpu);
ASAP_REGISTER_KERNEL(CPU, sgd_step, sgd_step_cpu);
ASAP_REGISTER_KERNEL(CPU, adam_step, adam_step_cpu);

}  // namespace asap
