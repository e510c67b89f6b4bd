// CPU batch norm over [N,C,H,W] or [N,C]: statistics per channel across N and the H*W plane.
// Train forward and backward parallelise over channels (each channel is reduced by one thread, so
// results do not depend on the thread count); the inner loops run over contiguous HW planes.
#include <cmath>
#include <cstdint>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

using cpu::parallel_for;

struct BnGeom {
  int64_t n, c, hw;
};

BnGeom bn_geom(const Tensor& x) {
  BnGeom g{x.dim(0), x.dim(1), 1};
  for (int i = 2; i < x.ndim(); ++i) g.hw *= x.dim(i);
  return g;
}

template <typename T>
const T* opt_ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
template <typename T>
T* opt_mut(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Per-plane sums in T with 16 independent lanes (a single double accumulator was bound by the
// add latency at half the vector width), added into double once per plane: a plane is at most a
// few thousand values, so the float partial's rounding stays near 1e-6 relative while the sums
// across the N planes of a channel keep double precision. f(i) returns the pair (a, b) to sum.
template <typename T, typename F>
inline void plane_sums(int64_t HW, F f, double& sa, double& sb) {
  constexpr int L = 16;
  T la[L] = {}, lb[L] = {};
  int64_t i = 0;
  for (; i + L <= HW; i += L)
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      T a, b;
      f(i + l, a, b);
      la[l] += a;
      lb[l] += b;
    }
  T ta = T(0), tb = T(0);
  for (; i < HW; ++i) {
    T a, b;
    f(i, a, b);
    ta += a;
    tb += b;
  }
  for (int w = L / 2; w >= 1; w /= 2)
#pragma omp simd
    for (int l = 0; l < w; ++l) {
      la[l] += la[l + w];
      lb[l] += lb[l + w];
    }
  sa += static_cast<double>(la[0] + ta);
  sb += static_cast<double>(lb[0] + tb);
}

template <typename T>
void bn_fwd_train_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                       Tensor& save_mean, Tensor& save_invstd, Tensor& running_mean,
                       Tensor& running_var, const BatchNormParams& p) {
  const BnGeom g = bn_geom(x);
  const int64_t N = g.n, C = g.c, HW = g.hw, M = N * HW;
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  const T* gp = opt_ptr<T>(gamma);
  const T* bp = opt_ptr<T>(beta);
  T* smp = save_mean.data<T>();
  T* sip = save_invstd.data<T>();
  T* rmp = opt_mut<T>(running_mean);
  T* rvp = opt_mut<T>(running_var);
  const double mom = p.momentum, eps = p.eps;
  const double unbias = M > 1 ? static_cast<double>(M) / static_cast<double>(M - 1) : 1.0;

  parallel_for(C, M * C > 8192, [&](int64_t lo_, int64_t hi_) {
    for (int64_t c = lo_; c < hi_; ++c) {
      // One pass of shifted sums: shifting by a sample of the channel keeps E[d^2] - E[d]^2 from
      // cancelling catastrophically when |mean| >> std, at the cost of reading x once, not twice.
      const T kt = xp[c * HW];
      const double k = static_cast<double>(kt);
      double s = 0.0, ss = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const T* px = xp + (n * C + c) * HW;
        plane_sums<T>(HW, [&](int64_t i, T& a, T& b) {
          const T d = px[i] - kt;
          a = d;
          b = d * d;
        }, s, ss);
      }
      const double ms = s / static_cast<double>(M);
      double var = ss / static_cast<double>(M) - ms * ms;
      if (var < 0.0) var = 0.0;
      const double mean = k + ms;
      const double invstd = 1.0 / std::sqrt(var + eps);
      smp[c] = static_cast<T>(mean);
      sip[c] = static_cast<T>(invstd);
      if (rmp) rmp[c] = static_cast<T>((1.0 - mom) * static_cast<double>(rmp[c]) + mom * mean);
      if (rvp) rvp[c] = static_cast<T>((1.0 - mom) * static_cast<double>(rvp[c]) + mom * var * unbias);
      // y = x * a + b folds normalisation and the affine transform into one multiply-add.
      const double gam = gp ? static_cast<double>(gp[c]) : 1.0;
      const double bet = bp ? static_cast<double>(bp[c]) : 0.0;
      const T a = static_cast<T>(gam * invstd);
      const T b = static_cast<T>(bet - mean * gam * invstd);
      for (int64_t n = 0; n < N; ++n) {
        const T* px = xp + (n * C + c) * HW;
        T* py = yp + (n * C + c) * HW;
  #pragma omp simd
        for (int64_t i = 0; i < HW; ++i) py[i] = px[i] * a + b;
      }
    }
  });
}

template <typename T>
void bn_fwd_eval_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                      const Tensor& running_mean, const Tensor& running_var,
                      const BatchNormParams& p) {
  const BnGeom g = bn_geom(x);
  const int64_t C = g.c, HW = g.hw, planes = g.n * g.c;
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  const T* gp = opt_ptr<T>(gamma);
  const T* bp = opt_ptr<T>(beta);
  const T* rmp = running_mean.data<T>();
  const T* rvp = running_var.data<T>();
  const double eps = p.eps;
  // Parallel over N*C planes: eval has no reduction, and N*C gives more parallel work than C.
  parallel_for(planes, planes * HW > 8192, [&](int64_t lo_, int64_t hi_) {
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      const int64_t c = pl % C;
      const double invstd = 1.0 / std::sqrt(static_cast<double>(rvp[c]) + eps);
      const double gam = gp ? static_cast<double>(gp[c]) : 1.0;
      const double bet = bp ? static_cast<double>(bp[c]) : 0.0;
      const T a = static_cast<T>(gam * invstd);
      const T b = static_cast<T>(bet - static_cast<double>(rmp[c]) * gam * invstd);
      const T* px = xp + pl * HW;
      T* py = yp + pl * HW;
  #pragma omp simd
      for (int64_t i = 0; i < HW; ++i) py[i] = px[i] * a + b;
    }
  });
}

template <typename T>
void bn_bwd_train_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma,
                       const Tensor& save_mean, const Tensor& save_invstd, Tensor& dx,
                       Tensor& dgamma, Tensor& dbeta) {
  const BnGeom g = bn_geom(x);
  const int64_t N = g.n, C = g.c, HW = g.hw, M = N * HW;
  const T* xp = x.data<T>();
  const T* dyp = dy.data<T>();
  const T* gp = opt_ptr<T>(gamma);
  const T* smp = save_mean.data<T>();
  const T* sip = save_invstd.data<T>();
  T* dxp = opt_mut<T>(dx);
  T* dgp = opt_mut<T>(dgamma);
  T* dbp = opt_mut<T>(dbeta);

  parallel_for(C, M * C > 8192, [&](int64_t lo_, int64_t hi_) {
    for (int64_t c = lo_; c < hi_; ++c) {
      const double mean = static_cast<double>(smp[c]);
      const double invstd = static_cast<double>(sip[c]);
      const T mean_t = smp[c];
      double sdy = 0.0, sdyx = 0.0;  // sum(dy), sum(dy * (x - mean))
      for (int64_t n = 0; n < N; ++n) {
        const T* px = xp + (n * C + c) * HW;
        const T* pdy = dyp + (n * C + c) * HW;
        plane_sums<T>(HW, [&](int64_t i, T& a, T& b) {
          a = pdy[i];
          b = pdy[i] * (px[i] - mean_t);
        }, sdy, sdyx);
      }
      if (dgp) dgp[c] = static_cast<T>(sdyx * invstd);  // sum(dy * xhat)
      if (dbp) dbp[c] = static_cast<T>(sdy);
      if (!dxp) continue;
      // dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
      //    = A * (dy - mdy) - B * (x - mean)
      const double gam = gp ? static_cast<double>(gp[c]) : 1.0;
      const T A = static_cast<T>(gam * invstd);
      const T mdy = static_cast<T>(sdy / static_cast<double>(M));
      const T B = static_cast<T>(gam * invstd * invstd * invstd * sdyx / static_cast<double>(M));
      const T mu = static_cast<T>(mean);
      for (int64_t n = 0; n < N; ++n) {
        const T* px = xp + (n * C + c) * HW;
        const T* pdy = dyp + (n * C + c) * HW;
        T* pdx = dxp + (n * C + c) * HW;
  #pragma omp simd
        for (int64_t i = 0; i < HW; ++i) pdx[i] = A * (pdy[i] - mdy) - B * (px[i] - mu);
      }
    }
  });
}

void check_float(DType dt, const char* kernel) {
  ASAP_CHECK(dt == DType::F32 || dt == DType::F64, kernel, ": unsupported dtype ", dtype_name(dt));
}

void bn_fwd_train_cpu(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                      Tensor& save_mean, Tensor& save_invstd, Tensor& running_mean,
                      Tensor& running_var, const BatchNormParams& p) {
  check_float(x.dtype(), "bn_fwd_train");
  if (x.dtype() == DType::F32)
    bn_fwd_train_impl<float>(x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var, p);
  else
    bn_fwd_train_impl<double>(x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var, p);
}

void bn_fwd_eval_cpu(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                     const Tensor& running_mean, const Tensor& running_var, const BatchNormParams& p) {
  check_float(x.dtype(), "bn_fwd_eval");
  if (x.dtype() == DType::F32)
    bn_fwd_eval_impl<float>(x, gamma, beta, y, running_mean, running_var, p);
  else
    bn_fwd_eval_impl<double>(x, gamma, beta, y, running_mean, running_var, p);
}

void bn_bwd_train_cpu(const Tensor& x, const Tensor& dy, const Tensor& gamma,
                      const Tensor& save_mean, const Tensor& save_invstd, Tensor& dx,
                      Tensor& dgamma, Tensor& dbeta) {
  check_float(x.dtype(), "bn_bwd_train");
  if (x.dtype() == DType::F32)
    bn_bwd_train_impl<float>(x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  else
    bn_bwd_train_impl<double>(x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, bn_fwd_train, bn_fwd_train_cpu);
ASAP_REGISTER_KERNEL(CPU, bn_fwd_eval, bn_fwd_eval_cpu);
ASAP_REGISTER_KERNEL(CPU, bn_bwd_train, bn_bwd_train_cpu);

}  // namespace asap
