// Batch norm over [N,C,H,W] or [N,C]. Training statistics are shifted sums sum(x - k),
// sum((x - k)^2) in double (k = the channel's first element, as on the CPU, so E[d^2] - E[d]^2
// does not cancel when |mean| >> std), deterministic (fixed partition, fixed order, no atomics).
// At most 2 launches per call:
//  - N*H*W small (slices_for == 1): ONE kernel, one block per channel: sums, running-stat update,
//    normalisation + affine folded into y = x * a[c] + b[c].
//  - otherwise: blocks (c, slice) write double partials; then blocks (c, slice) each add the
//    channel's partials in the same fixed order, block (c, 0) writes the statistics, and every
//    block applies y to its own slice.
// Backward mirrors it with sum(dy), sum(dy * (x - mean)) and dx = A*(dy - mdy) - B*(x - mean).
#include <initializer_list>

#include "kernels/cuda/common.cuh"

namespace asap::cuda {
namespace {

struct BnDims {
  int64_t N, C, HW;
};
BnDims bn_dims(const Tensor& x) {
  BnDims d{x.dim(0), x.dim(1), 1};
  for (int i = 2; i < x.ndim(); ++i) d.HW *= x.dim(i);
  return d;
}

int slices_for(const BnDims& d) {
  const int64_t M = d.N * d.HW;
  int64_t P = (M + kThreads * 8 - 1) / (kThreads * 8);
  const int64_t cap = std::max<int64_t>(1, (4LL * sm_count() + d.C - 1) / d.C);
  return static_cast<int>(std::max<int64_t>(1, std::min(P, cap)));
}

// This thread's part of slice `slice` (of P) of channel c, summed over the block (every thread
// gets the sums): mode 0 (forward) x - k and (x - k)^2; mode 1 (backward) dy and dy * (x - k).
template <int MODE>
__device__ void bn_slice_sums(const float* __restrict__ x, const float* __restrict__ dy, double k, BnDims d,
                              int64_t c, int64_t slice, int64_t P, double& s0, double& s1) {
  const int64_t M = d.N * d.HW;
  s0 = 0;
  s1 = 0;
  for (int64_t idx = slice * blockDim.x + threadIdx.x; idx < M; idx += P * blockDim.x) {
    const int64_t n = idx / d.HW, i = idx % d.HW, a = (n * d.C + c) * d.HW + i;
    const double v = static_cast<double>(x[a]) - k;
    if (MODE == 0) {
      s0 += v;
      s1 += v * v;
    } else {
      const double g = dy[a];
      s0 += g;
      s1 += g * v;
    }
  }
  s0 = block_sum(s0);
  s1 = block_sum(s1);
}

// Block (c, slice): partial[(c*P + slice)*2 + {0,1}] = sums of f0, f1 over its positions.
// mode 0 (forward): f0 = x - k, f1 = (x - k)^2 with k = x[c-th first element].
// mode 1 (backward): f0 = dy, f1 = dy * (x - mean[c]).
template <int MODE>
__global__ void bn_partial_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                  const float* __restrict__ mean, BnDims d, double* __restrict__ partial) {
  const int64_t c = blockIdx.x, slice = blockIdx.y, P = gridDim.y;
  const double k = MODE == 0 ? static_cast<double>(x[c * d.HW]) : static_cast<double>(mean[c]);
  // Forward: the shift k goes after the partials (partial[2*C*P + c]), so the second kernel
  // never re-reads x[c*HW] (y may alias x).
  if (MODE == 0 && slice == 0 && threadIdx.x == 0) partial[2 * d.C * P + c] = k;
  double s0, s1;
  bn_slice_sums<MODE>(x, dy, k, d, c, slice, P, s0, s1);
  if (threadIdx.x == 0) {
    partial[(c * P + slice) * 2] = s0;
    partial[(c * P + slice) * 2 + 1] = s1;
  }
}

// Sums of channel c: directly from x/dy when the channel is one block's work (grid (C, 1)), or
// from the P slice partials of bn_partial_kernel (two-kernel split for large N*H*W). Every block
// of the channel adds the partials in the same fixed order, so every block gets the same bits.
// With P == 1 both ways give identical sums (the partial is that block's own sum).
template <int MODE, bool FROM_PARTIALS>
__device__ void bn_channel_sums(const double* __restrict__ partial, int P, const float* __restrict__ x,
                                const float* __restrict__ dy, double k, BnDims d, int64_t c, double& s0,
                                double& s1) {
  if (!FROM_PARTIALS) {  // the whole channel is this block's one slice
    bn_slice_sums<MODE>(x, dy, k, d, c, 0, 1, s0, s1);
    return;
  }
  s0 = 0;
  s1 = 0;
  for (int i = threadIdx.x; i < P; i += blockDim.x) {
    s0 += partial[(c * P + i) * 2];
    s1 += partial[(c * P + i) * 2 + 1];
  }
  s0 = block_sum(s0);  // every thread gets the same sums
  s1 = block_sum(s1);
}

// Forward statistics + apply for channel c = blockIdx.x over slice blockIdx.y of its N*HW
// positions. Block (c, 0) writes save_mean/save_invstd and updates the running stats (no other
// block reads them); y = x * a + b with a, b rounded to float as on the CPU.
template <bool FROM_PARTIALS>
__global__ void bn_fwd_kernel(const double* __restrict__ partial, int P, const float* __restrict__ x, BnDims d,
                              const float* __restrict__ gamma, const float* __restrict__ beta,
                              float* __restrict__ save_mean, float* __restrict__ save_invstd,
                              float* __restrict__ rmean, float* __restrict__ rvar, double mom, double eps,
                              float* __restrict__ y) {
  const int64_t c = blockIdx.x, M = d.N * d.HW;
  const double k = FROM_PARTIALS ? partial[2 * d.C * P + c] : static_cast<double>(x[c * d.HW]);
  double s, ss;
  bn_channel_sums<0, FROM_PARTIALS>(partial, P, x, nullptr, k, d, c, s, ss);
  const double ms = s / static_cast<double>(M);
  double var = ss / static_cast<double>(M) - ms * ms;
  if (var < 0.0) var = 0.0;
  const double mu = k + ms, invstd = 1.0 / sqrt(var + eps);
  if (blockIdx.y == 0 && threadIdx.x == 0) {
    const double unbias = M > 1 ? static_cast<double>(M) / static_cast<double>(M - 1) : 1.0;
    save_mean[c] = static_cast<float>(mu);
    save_invstd[c] = static_cast<float>(invstd);
    if (rmean) rmean[c] = static_cast<float>((1.0 - mom) * static_cast<double>(rmean[c]) + mom * mu);
    if (rvar) rvar[c] = static_cast<float>((1.0 - mom) * static_cast<double>(rvar[c]) + mom * var * unbias);
  }
  const double gam = gamma ? static_cast<double>(gamma[c]) : 1.0, bet = beta ? static_cast<double>(beta[c]) : 0.0;
  const float a = static_cast<float>(gam * invstd), b = static_cast<float>(bet - mu * gam * invstd);
  for (int64_t idx = blockIdx.y * int64_t(blockDim.x) + threadIdx.x; idx < M; idx += int64_t(gridDim.y) * blockDim.x) {
    const int64_t n = idx / d.HW, i = idx % d.HW, o = (n * d.C + c) * d.HW + i;
    y[o] = x[o] * a + b;
  }
}

__global__ void bn_eval_coef_kernel(const float* __restrict__ rmean, const float* __restrict__ rvar,
                                    const float* __restrict__ gamma, const float* __restrict__ beta, int64_t C,
                                    double eps, float* __restrict__ coef_a, float* __restrict__ coef_b) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const double invstd = 1.0 / sqrt(static_cast<double>(rvar[c]) + eps);
  const double gam = gamma ? static_cast<double>(gamma[c]) : 1.0, bet = beta ? static_cast<double>(beta[c]) : 0.0;
  coef_a[c] = static_cast<float>(gam * invstd);
  coef_b[c] = static_cast<float>(bet - static_cast<double>(rmean[c]) * gam * invstd);
}

__global__ void bn_apply_kernel(const float* __restrict__ x, const float* __restrict__ a,
                                const float* __restrict__ b, float* __restrict__ y, int64_t n, BnDims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / d.HW) % d.C;
    y[i] = x[i] * a[c] + b[c];
  }
}

// Backward for channel c = blockIdx.x over slice blockIdx.y: block (c, 0) writes dgamma/dbeta;
// dx = A*(dy - mdy) - B*(x - mean) with A, mdy, B, mean rounded to float as on the CPU.
template <bool FROM_PARTIALS>
__global__ void bn_bwd_kernel(const double* __restrict__ partial, int P, const float* __restrict__ x,
                              const float* __restrict__ dy, BnDims d, const float* __restrict__ gamma,
                              const float* __restrict__ save_mean, const float* __restrict__ save_invstd,
                              float* __restrict__ dgamma, float* __restrict__ dbeta, float* __restrict__ dx) {
  const int64_t c = blockIdx.x, M = d.N * d.HW;
  const double mean = save_mean[c];
  double sdy, sdyx;
  bn_channel_sums<1, FROM_PARTIALS>(partial, P, x, dy, mean, d, c, sdy, sdyx);
  const double invstd = save_invstd[c];
  if (blockIdx.y == 0 && threadIdx.x == 0) {
    if (dgamma) dgamma[c] = static_cast<float>(sdyx * invstd);
    if (dbeta) dbeta[c] = static_cast<float>(sdy);
  }
  if (!dx) return;
  const double gam = gamma ? static_cast<double>(gamma[c]) : 1.0;
  const float A = static_cast<float>(gam * invstd), mdy = static_cast<float>(sdy / static_cast<double>(M));
  const float B = static_cast<float>(gam * invstd * invstd * invstd * sdyx / static_cast<double>(M));
  const float mu = static_cast<float>(mean);
  for (int64_t idx = blockIdx.y * int64_t(blockDim.x) + threadIdx.x; idx < M; idx += int64_t(gridDim.y) * blockDim.x) {
    const int64_t n = idx / d.HW, i = idx % d.HW, o = (n * d.C + c) * d.HW + i;
    dx[o] = A * (dy[o] - mdy) - B * (x[o] - mu);
  }
}

void bn_fwd_train_cuda(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y, Tensor& save_mean,
                       Tensor& save_invstd, Tensor& running_mean, Tensor& running_var, const BatchNormParams& p) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&x, &gamma, &beta, &y, &save_mean, &save_invstd, &running_mean, &running_var})
    check_f32(*t, "bn_fwd_train");
  ASAP_NVTX_RANGE("bn_fwd_train(stats+apply)");
  const BnDims d = bn_dims(x);
  if (d.C == 0) return;
  const int P = slices_for(d);
  if (P == 1) {  // one block per channel: statistics, running stats and y in ONE launch
    ASAP_LAUNCH(bn_fwd_kernel<false>, dim3((unsigned)d.C, 1), kThreads, 0, stream(), nullptr, 1, fptr(x), d, fptr(gamma),
                fptr(beta), fptr(save_mean), fptr(save_invstd), fptr(running_mean), fptr(running_var), p.momentum,
                p.eps, fptr(y));
    ASAP_CUDA_LAUNCH_CHECK("bn_fwd_train");
    return;
  }
  // Large N*H*W: (c, slice) partials, then every (c, slice) block finalizes from them and applies.
  DeviceBuffer partial(sizeof(double) * (2 * d.C * P + d.C));
  ASAP_LAUNCH(bn_partial_kernel<0>, dim3((unsigned)d.C, P), kThreads, 0, stream(), fptr(x), nullptr, nullptr, d,
              partial.as<double>());
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_train(stats)");
  ASAP_LAUNCH(bn_fwd_kernel<true>, dim3((unsigned)d.C, P), kThreads, 0, stream(), partial.as<double>(), P, fptr(x), d,
              fptr(gamma), fptr(beta), fptr(save_mean), fptr(save_invstd), fptr(running_mean), fptr(running_var),
              p.momentum, p.eps, fptr(y));
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_train(finalize+apply)");
}

void bn_fwd_eval_cuda(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                      const Tensor& running_mean, const Tensor& running_var, const BatchNormParams& p) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&x, &gamma, &beta, &y, &running_mean, &running_var}) check_f32(*t, "bn_fwd_eval");
  const BnDims d = bn_dims(x);
  if (d.C == 0) return;
  DeviceBuffer coef(sizeof(float) * 2 * d.C);
  ASAP_LAUNCH(bn_eval_coef_kernel, (unsigned)((d.C + 127) / 128), 128, 0, stream(), fptr(running_mean), fptr(running_var), fptr(gamma), fptr(beta), d.C, p.eps, coef.as<float>(),
      coef.as<float>() + d.C);
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_eval(coef)");
  const int64_t n = x.numel();
  ASAP_LAUNCH(bn_apply_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), coef.as<float>(), coef.as<float>() + d.C,
                                                          fptr(y), n, d);
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_eval(apply)");
}

void bn_bwd_train_cuda(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean,
                       const Tensor& save_invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&x, &dy, &gamma, &save_mean, &save_invstd, &dx, &dgamma, &dbeta})
    check_f32(*t, "bn_bwd_train");
  ASAP_NVTX_RANGE("bn_bwd_train(sums+dx)");
  const BnDims d = bn_dims(x);
  if (d.C == 0) return;
  const int P = slices_for(d);
  if (P == 1) {  // one block per channel: sums, dgamma/dbeta and dx in ONE launch
    ASAP_LAUNCH(bn_bwd_kernel<false>, dim3((unsigned)d.C, 1), kThreads, 0, stream(), nullptr, 1, fptr(x), fptr(dy), d,
                fptr(gamma), fptr(save_mean), fptr(save_invstd), fptr(dgamma), fptr(dbeta), fptr(dx));
    ASAP_CUDA_LAUNCH_CHECK("bn_bwd_train");
    return;
  }
  DeviceBuffer partial(sizeof(double) * 2 * d.C * P);
  ASAP_LAUNCH(bn_partial_kernel<1>, dim3((unsigned)d.C, P), kThreads, 0, stream(), fptr(x), fptr(dy), fptr(save_mean), d,
              partial.as<double>());
  ASAP_CUDA_LAUNCH_CHECK("bn_bwd_train(sums)");
  ASAP_LAUNCH(bn_bwd_kernel<true>, dim3((unsigned)d.C, P), kThreads, 0, stream(), partial.as<double>(), P, fptr(x),
              fptr(dy), d, fptr(gamma), fptr(save_mean), fptr(save_invstd), fptr(dgamma), fptr(dbeta), fptr(dx));
  ASAP_CUDA_LAUNCH_CHECK("bn_bwd_train(finalize+dx)");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, bn_fwd_train, bn_fwd_train_cuda);
ASAP_REGISTER_KERNEL(CUDA, bn_fwd_eval, bn_fwd_eval_cuda);
ASAP_REGISTER_KERNEL(CUDA, bn_bwd_train, bn_bwd_train_cuda);

}  // namespace asap::cuda
