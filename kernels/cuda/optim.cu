// Multi-tensor optimizer steps: a DARTS supernet has hundreds of small parameter tensors, so one
// launch per tensor would be launch-bound. The group is cut into fixed chunks across tensors; a
// table of chunk pointers goes to the device in one copy and ONE launch updates every tensor
// (block b owns chunk b). Formulas are the CPU backend's, element for element (PyTorch SGD with
// dampening 0, and torch.optim.Adam's arrangement of bias correction).
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/host_sync.h"

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
};
struct AdamConsts {
  float step_size, bc2_sqrt, b1, b2, one_b1, one_b2, eps, wd;
  bool use_wd;
};

__global__ void sgd_kernel(const OptChunk* __restrict__ chunks, SgdConsts c) {
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

// Builds the chunk table on the host and uploads it (kept alive by `buf` until the launch is ordered).
int upload_chunks(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>* s1,
                  const std::vector<Tensor>* s2, DeviceBuffer& buf) {
  std::vector<OptChunk> chunks;
  for (size_t t = 0; t < params.size(); ++t) {
    const int64_t n = params[t].numel();
    for (int64_t b = 0; b < n; b += kChunk)
      chunks.push_back(OptChunk{fptr(params[t]) + b, fptr(grads[t]) + b, s1 ? fptr((*s1)[t]) + b : nullptr,
                                s2 ? fptr((*s2)[t]) + b : nullptr, std::min(kChunk, n - b)});
  }
  if (chunks.empty()) return 0;
  buf = DeviceBuffer(sizeof(OptChunk) * chunks.size());
  // Pageable source: the call returns once the table is staged, so `chunks` may die after it.
  copy_async(buf.get(), chunks.data(), sizeof(OptChunk) * chunks.size(), cudaMemcpyHostToDevice, stream());
  return static_cast<int>(chunks.size());
}

void sgd_step_cuda(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& bufs,
                   const SgdArgs& a) {
  ASAP_CHECK(!params.empty(), "sgd_step: empty parameter group");
  check_list(params, params, "sgd_step", "params");
  check_list(params, grads, "sgd_step", "grads");
  const bool use_buf = a.momentum != 0.0;
  if (use_buf) check_list(params, bufs, "sgd_step", "momentum_bufs");
  ASAP_CHECK(!a.nesterov || a.momentum > 0.0, "sgd_step: Nesterov needs momentum > 0");
  DeviceBuffer table;
  const int nc = upload_chunks(params, grads, use_buf ? &bufs : nullptr, nullptr, table);
  if (nc == 0) return;
  SgdConsts c{static_cast<float>(a.lr), static_cast<float>(a.momentum), static_cast<float>(a.weight_decay),
              use_buf, a.nesterov, a.weight_decay != 0.0};
  ASAP_LAUNCH(sgd_kernel, nc, kThreads, 0, stream(), table.as<OptChunk>(), c);
  ASAP_CUDA_LAUNCH_CHECK("sgd_step");
}

void adam_step_cuda(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& m,
                    std::vector<Tensor>& v, const AdamArgs& a) {
  ASAP_CHECK(!params.empty(), "adam_step: empty parameter group");
  check_list(params, params, "adam_step", "params");
  check_list(params, grads, "adam_step", "grads");
  check_list(params, m, "adam_step", "m");
  check_list(params, v, "adam_step", "v");
  ASAP_CHECK(a.step >= 1, "adam_step: step must be >= 1 (bias correction), got ", a.step);
  DeviceBuffer table;
  const int nc = upload_chunks(params, grads, &m, &v, table);
  if (nc == 0) return;
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.step));
  AdamConsts c{static_cast<float>(a.lr / bc1), static_cast<float>(std::sqrt(bc2)), static_cast<float>(a.beta1),
               static_cast<float>(a.beta2), static_cast<float>(1.0 - a.beta1), static_cast<float>(1.0 - a.beta2),
               static_cast<float>(a.eps), static_cast<float>(a.weight_decay), a.weight_decay != 0.0};
  ASAP_LAUNCH(adam_kernel, nc, kThreads, 0, stream(), table.as<OptChunk>(), c);
  ASAP_CUDA_LAUNCH_CHECK("adam_step");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, sgd_step, sgd_step_cuda);
ASAP_REGISTER_KERNEL(CUDA, adam_step, adam_step_cuda);

}  // namespace asap::cuda
