// The compute backend table: about 30 kernel entry points per device. Ops in engine/ops/ validate
// shapes, allocate outputs (never the kernels), record autograd, and call these. Kernels know
// nothing of autograd. Every tensor argument is contiguous unless the entry says otherwise.
// Outputs are written, never accumulated, unless the entry says so.
// A backend fills the entries it has at static-initialisation time (one registration per kernel
// file, see kernels/cpu/*.cpp); a missing entry is an asap::Error naming the kernel and device.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace asap {

struct Conv2dParams {
  int stride = 1;
  int padding = 0;
  int dilation = 1;
  int groups = 1;
};

struct Pool2dParams {
  int kernel = 3;
  int stride = 1;
  int padding = 1;
};

struct BatchNormParams {
  double momentum = 0.1;  // running = (1 - momentum) * running + momentum * batch (PyTorch)
  double eps = 1e-5;
};

// One group of same-shaped parameter/gradient/state lists for fused optimizer updates.
// Optional device-resident per-step values (so a captured step can be replayed):
//  - scalars: F64 [2] on the params' device, {lr, step count} (Optimizer::use_device_scalars).
//    When defined, the kernel reads lr from scalars[0] (the lr field is ignored) and Adam's
//    bias-correction step is scalars[1] + step_offset (step is ignored).
//  - gate: 0-d F32/F64 on the params' device; when defined and its value is not finite, the
//    kernel updates nothing (params and state untouched).
struct SgdArgs {
  double lr, momentum, weight_decay;
  bool nesterov = false;
  Tensor scalars;
  Tensor gate;
};
struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based step count after increment (bias correction)
  Tensor scalars;
  int64_t step_offset = 0;  // with scalars: this group's step = scalars[1] + step_offset
  Tensor gate;
};

struct KernelTable {
  // --- elementwise (elementwise.*) ---
  void (*fill)(Tensor& y, double value) = nullptr;
  // dst <- src: same shape, same device and dtype, each with any strides (views)
  void (*copy_strided)(const Tensor& src, Tensor& dst) = nullptr;
  void (*relu_fwd)(const Tensor& x, Tensor& y) = nullptr;
  void (*relu_bwd)(const Tensor& x, const Tensor& dy, Tensor& dx) = nullptr;  // dx = dy * (x > 0)
  void (*add)(const Tensor& a, const Tensor& b, Tensor& y) = nullptr;
  void (*axpy)(double alpha, const Tensor& x, Tensor& y) = nullptr;           // y += alpha * x
  void (*scale)(const Tensor& x, const Tensor& s0d, Tensor& y) = nullptr;     // y = s * x (s: 0-d tensor)
  void (*mul_scalar)(const Tensor& x, double s, Tensor& y) = nullptr;         // y = s * x
  // y[n, ...] = x[n, ...] * s[n]  (drop-path; s has N entries)
  void (*scale_per_sample)(const Tensor& x, const Tensor& s, Tensor& y) = nullptr;

  // --- reductions (reduce.*) ---
  void (*sum_all)(const Tensor& x, Tensor& out0d) = nullptr;
  void (*dot)(const Tensor& a, const Tensor& b, Tensor& out0d) = nullptr;
  void (*sum_sq)(const Tensor& x, Tensor& out0d) = nullptr;  // squared L2 norm

  // --- convolution (conv.*, dwconv.*, pwconv.*) ---
  // x [N,C,H,W] (x may be strided when the kernel is 1x1: FactorizedReduce's shifted view),
  // w [O, C/groups, k, k]; y [N,O,Ho,Wo]. Backend chooses depthwise / 1x1 GEMM / im2col paths.
  void (*conv2d_fwd)(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) = nullptr;
  void (*conv2d_bwd_data)(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p) = nullptr;
  void (*conv2d_bwd_weight)(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p) = nullptr;

  // --- ReLU fused into a 1x1 conv: y = conv1x1(relu(x)) at p.stride (CPU conv.cpp). Optional: on a
  // backend without it, ops::relu_conv1x1 runs relu then conv2d. x may be strided; dx is contiguous
  // and x-shaped; dx or dw may be undefined (not wanted).
  void (*relu_pw_fwd)(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) = nullptr;
  void (*relu_pw_bwd)(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw,
                      const Conv2dParams& p) = nullptr;

  // --- fused separable block: y = pw(dw(relu(x))) (sepconv.*) ---
  // wd [C,1,k,k] depthwise (stride/padding/dilation in p, groups = C), wp [O,C,1,1].
  // mid (optional output, [N,C,Ho,Wo]) receives dw(relu(x)) for the backward pass.
  void (*sepblock_fwd)(const Tensor& x, const Tensor& wd, const Tensor& wp, Tensor& mid, Tensor& y,
                       const Conv2dParams& p) = nullptr;
  void (*sepblock_bwd)(const Tensor& x, const Tensor& wd, const Tensor& wp, const Tensor& mid,
                       const Tensor& dy, Tensor& dx, Tensor& dwd, Tensor& dwp,
                       const Conv2dParams& p) = nullptr;

  // --- batch norm (batchnorm.*), x [N,C,H,W] or [N,C] ---
  // Train: batch statistics; writes save_mean/save_invstd [C]; updates running stats in place
  // (unbiased variance for running_var, as PyTorch). gamma/beta may be undefined (affine off).
  void (*bn_fwd_train)(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                       Tensor& save_mean, Tensor& save_invstd, Tensor& running_mean,
                       Tensor& running_var, const BatchNormParams& p) = nullptr;
  void (*bn_fwd_eval)(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                      const Tensor& running_mean, const Tensor& running_var,
                      const BatchNormParams& p) = nullptr;
  // Backward of the train-mode forward. dgamma/dbeta undefined when affine is off.
  void (*bn_bwd_train)(const Tensor& x, const Tensor& dy, const Tensor& gamma,
                       const Tensor& save_mean, const Tensor& save_invstd, Tensor& dx,
                       Tensor& dgamma, Tensor& dbeta) = nullptr;

  // --- pooling (pool.*) ---
  // max pool records argmax: an I32 tensor shaped like y holding the flat index (h * W + w) of
  // the winner inside its input plane. Ties go to the first element in scan order.
  void (*maxpool_fwd)(const Tensor& x, Tensor& y, Tensor& argmax, const Pool2dParams& p) = nullptr;
  void (*maxpool_bwd)(const Tensor& dy, const Tensor& argmax, Tensor& dx, const Pool2dParams& p) = nullptr;
  // avg pool: padded cells are NOT counted in the divisor (count_include_pad = False).
  void (*avgpool_fwd)(const Tensor& x, Tensor& y, const Pool2dParams& p) = nullptr;
  void (*avgpool_bwd)(const Tensor& dy, Tensor& dx, const Pool2dParams& p) = nullptr;
  void (*gap_fwd)(const Tensor& x, Tensor& y) = nullptr;    // [N,C,H,W] -> [N,C]
  void (*gap_bwd)(const Tensor& dy, Tensor& dx) = nullptr;  // [N,C] -> [N,C,H,W]

  // --- GEMM (gemm.*): C = alpha * op(A) op(B) + beta * C, row-major 2-D tensors ---
  void (*gemm)(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
               double beta, Tensor& c) = nullptr;
  void (*bias_add_rows)(const Tensor& bias, Tensor& y) = nullptr;     // y[n, j] += bias[j]
  void (*sum_rows)(const Tensor& dy, Tensor& dbias) = nullptr;        // dbias[j] = sum_n dy[n, j]

  // --- softmax / loss (loss.*) ---
  // Row-wise softmax of x / temperature over the last dim of a 2-D tensor [R, K]. When inv_t (a 0-d
  // float64 tensor on x's device) is defined, 1/temperature is read from it on the device instead:
  // a captured CUDA graph then follows an annealed temperature without being re-captured.
  void (*softmax_fwd)(const Tensor& x, double temperature, const Tensor& inv_t, Tensor& y) = nullptr;
  // dx = (y * (dy - sum(dy * y))) / temperature (same inv_t rule)
  void (*softmax_bwd)(const Tensor& y, const Tensor& dy, double temperature, const Tensor& inv_t,
                      Tensor& dx) = nullptr;
  // logits [N,K], labels I32 [N] (same device); writes probs [N,K] (softmax) and loss0d = mean CE.
  void (*xent_fwd)(const Tensor& logits, const Tensor& labels, Tensor& probs, Tensor& loss0d) = nullptr;
  // dlogits = (probs - onehot) * dloss / N
  void (*xent_bwd)(const Tensor& probs, const Tensor& labels, const Tensor& dloss0d,
                   Tensor& dlogits) = nullptr;

  // --- mixed op (mixed.*): y = sum_k w[k] * x_k over the K alive inputs, one pass ---
  void (*wsum_fwd)(const std::vector<Tensor>& xs, const Tensor& w, Tensor& y) = nullptr;
  // dxs[k] = w[k] * dy (entries may be undefined: skipped), dw[k] = <x_k, dy>.
  void (*wsum_bwd)(const std::vector<Tensor>& xs, const Tensor& w, const Tensor& dy,
                   std::vector<Tensor>& dxs, Tensor& dw) = nullptr;

  // --- concat on channels (concat.*) ---
  void (*concat_fwd)(const std::vector<Tensor>& xs, Tensor& y) = nullptr;
  // dxs[i] <- channel slice i of dy
  void (*concat_bwd)(const Tensor& dy, std::vector<Tensor>& dxs) = nullptr;

  // --- optimizers (optim.*): one call updates every tensor of the group ---
  void (*sgd_step)(std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                   std::vector<Tensor>& momentum_bufs, const SgdArgs& a) = nullptr;
  void (*adam_step)(std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                    std::vector<Tensor>& m, std::vector<Tensor>& v, const AdamArgs& a) = nullptr;
  // Device-resident optimizer scalars (F64 tensor, see SgdArgs), written in-stream without copies:
  // scalars[index] = value (value passed as a kernel argument).
  void (*optim_scalar_set)(Tensor& scalars, int64_t index, double value) = nullptr;
  // scalars[1] += 1, unless gate is defined and its 0-d value is not finite.
  void (*optim_step_advance)(Tensor& scalars, const Tensor& gate) = nullptr;

  // --- multi-tensor (multi_tensor.*): any number of tensors, a fixed number of launches ---
  // out0d (F64, 0-d, same device) = sqrt(sum over every x of sum x[i]^2), accumulated in double in
  // a fixed order (deterministic). xs: contiguous, one device; CPU takes F32 and F64 mixed, CUDA
  // F32 only. Empty list: 0. CUDA: 2 launches.
  void (*multi_l2_norm)(const std::vector<Tensor>& xs, Tensor& out0d) = nullptr;
  // With c = max_norm / (norm + 1e-6), norm the 0-d F64 value of norm0d: when norm is finite and
  // c < 1, every x *= c (rounded to x's dtype); otherwise nothing is written. CUDA: 1 launch.
  void (*multi_clip_scale)(std::vector<Tensor>& xs, const Tensor& norm0d, double max_norm) = nullptr;
  // y += xs[0] + xs[1] + ..., added one at a time in list order (y = ((y + x0) + x1) + ..., the
  // rounding of successive axpy(1, x_k, y)); xs contiguous, same numel, dtype and device as y
  // (y contiguous, not aliasing any x). CUDA: one launch per 16 inputs. Autograd's gradient
  // accumulation (engine/autograd.cpp).
  void (*accumulate_n)(Tensor& y, const std::vector<Tensor>& xs) = nullptr;

  // --- random (rng.*): Philox4x32-10 counter-based, identical numbers on every backend ---
  void (*fill_normal)(Tensor& y, uint64_t seed, uint64_t offset, double mean, double stddev) = nullptr;
  void (*fill_uniform)(Tensor& y, uint64_t seed, uint64_t offset, double lo, double hi) = nullptr;
  // Drop-path keep masks whose counter and probability live in device memory, so a captured step
  // draws fresh masks on every replay. state: F64 [2] on s's device, {counter base, p}. s [N]
  // (F32/F64): s[n] = 1/(1-p) if philox_uniform_at(seed, state[0] + delta, n, 0, 1) >= p, else 0
  // (the host formula, so every backend and the host-drawn masks agree exactly).
  // s[i] uses Philox element (first + i) of counter base state[0] + delta: a data-parallel rank's
  // shard draws its samples' masks of the global batch.
  void (*drop_path_mask)(const Tensor& state, uint64_t seed, uint64_t delta, uint64_t first, Tensor& s) = nullptr;
  void (*counter_advance)(Tensor& state, uint64_t counters) = nullptr;  // state[0] += counters
};

KernelTable& kernel_table_mut(DeviceType t);  // for backend registration only
const KernelTable& kernels(DeviceType t);

// Calls a kernel table entry, or throws naming the missing kernel and device.
#define ASAP_KERNEL(dev, name)                                                            \
  (::asap::kernels((dev).type).name                                                       \
       ? ::asap::kernels((dev).type).name                                                 \
       : (throw ::asap::Error(std::string("kernel '" #name "' is not available on ") +    \
                              (dev).str()),                                               \
          ::asap::kernels((dev).type).name))

// Registers one entry from a kernel file at static-initialisation time:
//   ASAP_REGISTER_KERNEL(CPU, relu_fwd, relu_fwd_cpu);
#define ASAP_REGISTER_KERNEL(DEV, name, fn)                                               \
  static const bool asap_reg_##name = [] {                                                \
    ::asap::kernel_table_mut(::asap::DeviceType::DEV).name = fn;                          \
    return true;                                                                          \
  }()

}  // namespace asap
