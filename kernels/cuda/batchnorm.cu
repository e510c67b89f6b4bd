// Batch norm over [N,C,H,W] or [N,C]. Training statistics take ONE read of x: blocks (c, slice)
// accumulate shifted sums sum(x - k), sum((x - k)^2) in double (k = the channel's first element,
// as on the CPU, so E[d^2] - E[d]^2 does not cancel when |mean| >> std); a per-channel finalize
// pass adds the slices in a fixed order (deterministic, no atomics), updates running stats and
// folds normalisation + affine into y = x * a[c] + b[c], applied by an elementwise pass.
// Backward mirrors it: partial sum(dy), sum(dy * (x - mean)) -> finalize -> dx pass.
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

// Block (c, slice): partial[(c*P + slice)*2 + {0,1}] = sums of f0, f1 over its positions.
// mode 0 (forward): f0 = x - k, f1 = (x - k)^2 with k = x[c-th first element].
// mode 1 (backward): f0 = dy, f1 = dy * (x - mean[c]).
template <int MODE>
__global__ void bn_partial_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                  const float* __restrict__ mean, BnDims d, double* __restrict__ partial) {
  const int64_t c = blockIdx.x, slice = blockIdx.y, P = gridDim.y, M = d.N * d.HW;
  const double k = MODE == 0 ? static_cast<double>(x[c * d.HW]) : static_cast<double>(mean[c]);
  double s0 = 0, s1 = 0;
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
  if (threadIdx.x == 0) {
    partial[(c * P + slice) * 2] = s0;
    partial[(c * P + slice) * 2 + 1] = s1;
  }
}

__global__ void bn_fwd_finalize_kernel(const double* __restrict__ partial, int P, const float* __restrict__ x,
                                       BnDims d, const float* __restrict__ gamma, const float* __restrict__ beta,
                                       float* __restrict__ save_mean, float* __restrict__ save_invstd,
                                       float* __restrict__ rmean, float* __restrict__ rvar, double mom, double eps,
                                       float* __restrict__ coef_a, float* __restrict__ coef_b) {
  const int64_t c = blockIdx.x, M = d.N * d.HW;
  double s = 0, ss = 0;
  for (int i = threadIdx.x; i < P; i += blockDim.x) {
    s += partial[(c * P + i) * 2];
    ss += partial[(c * P + i) * 2 + 1];
  }
  s = block_sum(s);
  ss = block_sum(ss);
  if (threadIdx.x != 0) return;
  const double k = x[c * d.HW];
  const double ms = s / static_cast<double>(M);
  double var = ss / static_cast<double>(M) - ms * ms;
  if (var < 0.0) var = 0.0;
  const double mu = k + ms, invstd = 1.0 / sqrt(var + eps);
  const double unbias = M > 1 ? static_cast<double>(M) / static_cast<double>(M - 1) : 1.0;
  save_mean[c] = static_cast<float>(mu);
  save_invstd[c] = static_cast<float>(invstd);
  if (rmean) rmean[c] = static_cast<float>((1.0 - mom) * static_cast<double>(rmean[c]) + mom * mu);
  if (rvar) rvar[c] = static_cast<float>((1.0 - mom) * static_cast<double>(rvar[c]) + mom * var * unbias);
  const double gam = gamma ? static_cast<double>(gamma[c]) : 1.0, bet = beta ? static_cast<double>(beta[c]) : 0.0;
  coef_a[c] = static_cast<float>(gam * invstd);
  coef_b[c] = static_cast<float>(bet - mu * gam * invstd);
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

// coef[c*4 + 0..3] = A, mdy, B, mean (as on the CPU: dx = A*(dy - mdy) - B*(x - mean)).
__global__ void bn_bwd_finalize_kernel(const double* __restrict__ partial, int P, BnDims d,
                                       const float* __restrict__ gamma, const float* __restrict__ save_mean,
                                       const float* __restrict__ save_invstd, float* __restrict__ dgamma,
                                       float* __restrict__ dbeta, float* __restrict__ coef) {
  const int64_t c = blockIdx.x, M = d.N * d.HW;
  double sdy = 0, sdyx = 0;
  for (int i = threadIdx.x; i < P; i += blockDim.x) {
    sdy += partial[(c * P + i) * 2];
    sdyx += partial[(c * P + i) * 2 + 1];
  }
  sdy = block_sum(sdy);
  sdyx = block_sum(sdyx);
  if (threadIdx.x != 0) return;
  const double invstd = save_invstd[c];
  if (dgamma) dgamma[c] = static_cast<float>(sdyx * invstd);
  if (dbeta) dbeta[c] = static_cast<float>(sdy);
  const double gam = gamma ? static_cast<double>(gamma[c]) : 1.0;
  coef[c * 4 + 0] = static_cast<float>(gam * invstd);
  coef[c * 4 + 1] = static_cast<float>(sdy / static_cast<double>(M));
  coef[c * 4 + 2] = static_cast<float>(gam * invstd * invstd * invstd * sdyx / static_cast<double>(M));
  coef[c * 4 + 3] = save_mean[c];
}

__global__ void bn_bwd_dx_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                 const float* __restrict__ coef, float* __restrict__ dx, int64_t n, BnDims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float* k = coef + ((i / d.HW) % d.C) * 4;
    dx[i] = k[0] * (dy[i] - k[1]) - k[2] * (x[i] - k[3]);
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
  DeviceBuffer partial(sizeof(double) * 2 * d.C * P), coef(sizeof(float) * 2 * d.C);
  ASAP_LAUNCH(bn_partial_kernel<0>, dim3((unsigned)d.C, P), kThreads, 0, stream(), fptr(x), nullptr, nullptr, d,
                                                                          partial.as<double>());
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_train(stats)");
  ASAP_LAUNCH(bn_fwd_finalize_kernel, (unsigned)d.C, 128, 0, stream(), partial.as<double>(), P, fptr(x), d, fptr(gamma), fptr(beta), fptr(save_mean), fptr(save_invstd),
      fptr(running_mean), fptr(running_var), p.momentum, p.eps, coef.as<float>(), coef.as<float>() + d.C);
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_train(finalize)");
  const int64_t n = x.numel();
  ASAP_LAUNCH(bn_apply_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), coef.as<float>(), coef.as<float>() + d.C,
                                                          fptr(y), n, d);
  ASAP_CUDA_LAUNCH_CHECK("bn_fwd_train(apply)");
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
  DeviceBuffer partial(sizeof(double) * 2 * d.C * P), coef(sizeof(float) * 4 * d.C);
  ASAP_LAUNCH(bn_partial_kernel<1>, dim3((unsigned)d.C, P), kThreads, 0, stream(), fptr(x), fptr(dy), fptr(save_mean), d,
                                                                          partial.as<double>());
  ASAP_CUDA_LAUNCH_CHECK("bn_bwd_train(sums)");
  ASAP_LAUNCH(bn_bwd_finalize_kernel, (unsigned)d.C, 128, 0, stream(), partial.as<double>(), P, d, fptr(gamma),
                                                              fptr(save_mean), fptr(save_invstd), fptr(dgamma),
                                                              fptr(dbeta), coef.as<float>());
  ASAP_CUDA_LAUNCH_CHECK("bn_bwd_train(finalize)");
  if (!dx.defined()) return;
  const int64_t n = x.numel();
  ASAP_LAUNCH(bn_bwd_dx_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), fptr(dy), coef.as<float>(), fptr(dx), n, d);
  ASAP_CUDA_LAUNCH_CHECK("bn_bwd_train(dx)");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, bn_fwd_train, bn_fwd_train_cuda);
ASAP_REGISTER_KERNEL(CUDA, bn_fwd_eval, bn_fwd_eval_cuda);
ASAP_REGISTER_KERNEL(CUDA, bn_bwd_train, bn_bwd_train_cuda);

}  // namespace asap::cuda
