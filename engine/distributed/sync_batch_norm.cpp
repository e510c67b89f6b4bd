#include "engine/distributed/sync_batch_norm.h"

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/op_util.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"

namespace asap::dist {
namespace {

Communicator* g_sync_bn = nullptr;

Tensor channel_tensor(const std::vector<double>& v, DType dt, Device dev) {
  Tensor t = Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())});
  if (dt != DType::F64) t = t.to(dt);
  return t.to(dev);
}

}  // namespace

void set_sync_batch_norm(Communicator* host) { g_sync_bn = host; }
Communicator* sync_batch_norm() { return g_sync_bn; }

namespace {

struct Geom {
  int64_t n, c, hw;
};
Geom geom_of(const Tensor& x) {
  Geom g{x.dim(0), x.dim(1), 1};
  for (int i = 2; i < x.ndim(); ++i) g.hw *= x.dim(i);
  return g;
}

// Global statistics in double on the CPU: exact two-pass sums (mean, then squared deviations),
// each summed over the ranks, so they match what one process's kernel computes over the whole
// batch far below float rounding, and a = float(gamma * invstd), b = float(beta - mean * gamma *
// invstd) come out as the kernel's own.
template <typename T>
void cpu_global_stats(const Tensor& x, Communicator& comm, std::vector<double>& mean, std::vector<double>& var,
                      double& M) {
  const Geom g = geom_of(x);
  const T* xp = x.data<T>();
  std::vector<double> sums(g.c + 1, 0.0);
  cpu::parallel_for(g.c, g.n * g.c * g.hw > 8192, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c)
      for (int64_t n = 0; n < g.n; ++n) {
        const T* px = xp + (n * g.c + c) * g.hw;
        double s = 0;
        for (int64_t i = 0; i < g.hw; ++i) s += double(px[i]);
        sums[c] += s;
      }
  });
  sums[g.c] = double(g.n * g.hw);
  comm.allreduce_sum(sums.data(), sums.size());
  M = sums[g.c];
  mean.assign(g.c, 0.0);
  for (int64_t c = 0; c < g.c; ++c) mean[c] = sums[c] / M;
  std::vector<double> sq(g.c, 0.0);
  cpu::parallel_for(g.c, g.n * g.c * g.hw > 8192, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c)
      for (int64_t n = 0; n < g.n; ++n) {
        const T* px = xp + (n * g.c + c) * g.hw;
        double s = 0;
        for (int64_t i = 0; i < g.hw; ++i) {
          const double d = double(px[i]) - mean[c];
          s += d * d;
        }
        sq[c] += s;
      }
  });
  comm.allreduce_sum(sq.data(), sq.size());
  var.assign(g.c, 0.0);
  for (int64_t c = 0; c < g.c; ++c) var[c] = sq[c] / M;
}

// y = x * a + b per channel, as the CPU kernel writes it: its AVX2 / AVX-512 variants contract
// the multiply-add into an FMA (kernels/cpu/isa.h), the SSE2 baseline does not, and with a large
// mean the two differ by more than float rounding of y, so this follows the active set.
template <typename T>
void affine_plain(const T* x, T* y, int64_t len, T a, T b) {
  for (int64_t i = 0; i < len; ++i) y[i] = x[i] * a + b;
}
template <typename T>
__attribute__((target("avx2,fma"))) void affine_fma(const T* x, T* y, int64_t len, T a, T b) {
  for (int64_t i = 0; i < len; ++i) y[i] = __builtin_fma(x[i], a, b);
}

template <typename T>
void cpu_normalise(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                   const std::vector<double>& mean, const std::vector<double>& inv) {
  const Geom g = geom_of(x);
  const std::vector<double> gam = gamma.defined() ? gamma.to_vector_f64() : std::vector<double>(g.c, 1.0);
  const std::vector<double> bet = beta.defined() ? beta.to_vector_f64() : std::vector<double>(g.c, 0.0);
  const bool fma = cpu::active_cpu_isa() != cpu::CpuIsa::SSE2;
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  cpu::parallel_for(g.c, g.n * g.c * g.hw > 8192, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const T a = static_cast<T>(gam[c] * inv[c]);
      const T b = static_cast<T>(bet[c] - mean[c] * gam[c] * inv[c]);
      for (int64_t n = 0; n < g.n; ++n) {
        const int64_t off = (n * g.c + c) * g.hw;
        if (fma) affine_fma<T>(xp + off, yp + off, g.hw, a, b);
        else affine_plain<T>(xp + off, yp + off, g.hw, a, b);
      }
    }
  });
}

// The backward on the CPU with the global sums, as the kernel writes it over the whole batch:
// dx = A * (dy - mdy) - B * (x - mu). This rank's dy is its loss's (1 / share of the global
// one), so its global sums are G / share; with equal shards that is an exact power of two.
template <typename T>
void dx_plain(const T* x, const T* dy, T* dx, int64_t len, T A, T mdy, T B, T mu) {
  for (int64_t i = 0; i < len; ++i) dx[i] = A * (dy[i] - mdy) - B * (x[i] - mu);
}
template <typename T>
__attribute__((target("avx2,fma"))) void dx_fma(const T* x, const T* dy, T* dx, int64_t len, T A, T mdy, T B, T mu) {
  for (int64_t i = 0; i < len; ++i) dx[i] = A * (dy[i] - mdy) - B * (x[i] - mu);
}

template <typename T>
void cpu_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean_t, const Tensor& inv_t,
                  double share, Communicator& comm, bool want_dx, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const Geom g = geom_of(x);
  const T* xp = x.data<T>();
  const T* dyp = dy.data<T>();
  const T* mp = mean_t.data<T>();
  std::vector<double> sums(2 * g.c, 0.0);  // this rank's sum(dy), sum(dy * (x - mean))
  cpu::parallel_for(g.c, g.n * g.c * g.hw > 8192, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const T mu = mp[c];
      for (int64_t n = 0; n < g.n; ++n) {
        const T* px = xp + (n * g.c + c) * g.hw;
        const T* pdy = dyp + (n * g.c + c) * g.hw;
        double a = 0, b = 0;
        for (int64_t i = 0; i < g.hw; ++i) {
          a += double(pdy[i]);
          b += double(pdy[i] * (px[i] - mu));
        }
        sums[c] += a;
        sums[g.c + c] += b;
      }
    }
  });
  const std::vector<double> inv = inv_t.to_vector_f64();
  if (dgamma.defined()) {
    std::vector<double> v(g.c);
    for (int64_t c = 0; c < g.c; ++c) v[c] = sums[g.c + c] * inv[c];
    dgamma.copy_(channel_tensor(v, x.dtype(), Device::cpu()));
  }
  if (dbeta.defined())
    dbeta.copy_(channel_tensor(std::vector<double>(sums.begin(), sums.begin() + g.c), x.dtype(), Device::cpu()));
  if (!want_dx) return;
  std::vector<double> global(sums);
  for (double& v : global) v *= share;
  comm.allreduce_sum(global.data(), global.size());
  const double M = double(g.n * g.hw) / share;
  const std::vector<double> gam = gamma.defined() ? gamma.to_vector_f64() : std::vector<double>(g.c, 1.0);
  const bool fma = cpu::active_cpu_isa() != cpu::CpuIsa::SSE2;
  T* dxp = dx.data<T>();
  cpu::parallel_for(g.c, g.n * g.c * g.hw > 8192, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const double sdy = global[c] / share, sdyx = global[g.c + c] / share;
      const T A = static_cast<T>(gam[c] * inv[c]);
      const T mdy = static_cast<T>(sdy / M);
      const T B = static_cast<T>(gam[c] * inv[c] * inv[c] * inv[c] * sdyx / M);
      const T mu = mp[c];
      for (int64_t n = 0; n < g.n; ++n) {
        const int64_t off = (n * g.c + c) * g.hw;
        if (fma) dx_fma<T>(xp + off, dyp + off, dxp + off, g.hw, A, mdy, B, mu);
        else dx_plain<T>(xp + off, dyp + off, dxp + off, g.hw, A, mdy, B, mu);
      }
    }
  });
}

// Other devices: the kernel's per-rank (mean, invstd), gathered through one sum (each rank
// fills its slot) and combined in rank order (Chan's parallel variance).
void device_global_stats(const Tensor& x, Communicator& comm, const BatchNormParams& p, std::vector<double>& gmean,
                         std::vector<double>& gvar, double& M) {
  const int64_t C = x.dim(1), m = x.numel() / C;
  const Device dev = x.device();
  const int W = comm.size(), r = comm.rank();
  Tensor lmean = Tensor::empty({C}, x.dtype(), dev), linv = Tensor::empty({C}, x.dtype(), dev);
  {
    Tensor scratch = Tensor::empty_like(x), no_rm, no_rv;
    ASAP_KERNEL(dev, bn_fwd_train)(x, Tensor(), Tensor(), scratch, lmean, linv, no_rm, no_rv, p);
  }
  const size_t slot = size_t(2 * C + 1);
  std::vector<double> all(slot * W, 0.0);
  const std::vector<double> mu = lmean.to_vector_f64(), inv = linv.to_vector_f64();
  double* s = all.data() + slot * r;
  s[0] = double(m);
  for (int64_t c = 0; c < C; ++c) {
    s[1 + c] = mu[c];
    s[1 + C + c] = std::max(0.0, 1.0 / (inv[c] * inv[c]) - p.eps);
  }
  comm.allreduce_sum(all.data(), all.size());
  M = 0;
  for (int k = 0; k < W; ++k) M += all[slot * k];
  gmean.assign(C, 0.0);
  gvar.assign(C, 0.0);
  for (int k = 0; k < W; ++k)
    for (int64_t c = 0; c < C; ++c) gmean[c] += all[slot * k] * all[slot * k + 1 + c];
  for (int64_t c = 0; c < C; ++c) gmean[c] /= M;
  for (int k = 0; k < W; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const double d = all[slot * k + 1 + c] - gmean[c];
      gvar[c] += all[slot * k] * (all[slot * k + 1 + C + c] + d * d);
    }
  for (int64_t c = 0; c < C; ++c) gvar[c] /= M;
}

}  // namespace

Tensor sync_batch_norm_train(const Tensor& x_in, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             Tensor& running_mean, Tensor& running_var, const BatchNormParams& p, Communicator& comm) {
  const int64_t C = x.dim(1);
  const int64_t m = x.numel() / C;  // this rank's values per channel
  const Device dev = x.device();
  const bool cpu = dev.type == DeviceType::CPU;

  // 1. The global batch's statistics, the same bits on every rank.
  std::vector<double> gmean, gvar;
  double M = 0;
  if (cpu && x.dtype() == DType::F32) cpu_global_stats<float>(x, comm, gmean, gvar, M);
  else if (cpu) cpu_global_stats<double>(x, comm, gmean, gvar, M);
  else device_global_stats(x, comm, p, gmean, gvar, M);

  // 2. Running statistics as the kernel updates them (momentum, unbiased variance).
  if (running_mean.defined()) {
    std::vector<double> rm = running_mean.to_vector_f64(), rv = running_var.to_vector_f64();
    const double unbias = M > 1 ? M / (M - 1) : 1.0;
    for (int64_t c = 0; c < C; ++c) {
      rm[c] = (1.0 - p.momentum) * rm[c] + p.momentum * gmean[c];
      rv[c] = (1.0 - p.momentum) * rv[c] + p.momentum * gvar[c] * unbias;
    }
    running_mean.copy_(channel_tensor(rm, running_mean.dtype(), dev));
    running_var.copy_(channel_tensor(rv, running_var.dtype(), dev));
    ++running_mean.impl()->version;
    ++running_var.impl()->version;
  }

  // 3. y with the global statistics: on the CPU as the train kernel writes it, elsewhere through
  // the eval kernel (exactly that affine map, from float statistics).
  std::vector<double> ginv_h(C);
  for (int64_t c = 0; c < C; ++c) ginv_h[c] = 1.0 / std::sqrt(gvar[c] + p.eps);
  Tensor mean_t = channel_tensor(gmean, x.dtype(), dev), var_t = channel_tensor(gvar, x.dtype(), dev);
  Tensor inv_t = channel_tensor(ginv_h, x.dtype(), dev);
  Tensor y = Tensor::empty_like(x);
  if (cpu && x.dtype() == DType::F32) cpu_normalise<float>(x, gamma, beta, y, gmean, ginv_h);
  else if (cpu) cpu_normalise<double>(x, gamma, beta, y, gmean, ginv_h);
  else ASAP_KERNEL(dev, bn_fwd_eval)(x, gamma, beta, y, mean_t, var_t, p);

  const double share = double(m) / M;  // this rank's weight in the global loss (as grad_sync)
  Communicator* cp = &comm;
  record(
      "batch_norm", y, {x_in, gamma, beta},
      [x, gamma, mean_t, var_t, inv_t, m, share, cp, C, p](const Tensor& g, const std::vector<bool>& needs,
                                                           std::vector<Tensor>& gin) {
        OpScope bscope("batch_norm_bwd");
        Tensor dy = g.contiguous();
        const Device d = x.device();
        if (d.type == DeviceType::CPU) {
          Tensor dx = needs[0] ? Tensor::empty_like(x) : Tensor();
          Tensor dgamma = needs[1] ? Tensor::empty({C}, x.dtype(), d) : Tensor();
          Tensor dbeta = needs[2] ? Tensor::empty({C}, x.dtype(), d) : Tensor();
          if (x.dtype() == DType::F32) cpu_backward<float>(x, dy, gamma, mean_t, inv_t, share, *cp, needs[0], dx, dgamma, dbeta);
          else cpu_backward<double>(x, dy, gamma, mean_t, inv_t, share, *cp, needs[0], dx, dgamma, dbeta);
          if (needs[0]) gin[0] = dx;
          if (needs[1]) gin[1] = dgamma;  // this rank's share; the gradient all-reduce weighs and sums it
          if (needs[2]) gin[2] = dbeta;
          return;
        }
        Tensor dx = Tensor::empty_like(x);
        Tensor s2 = Tensor::empty({C}, x.dtype(), d), s1 = Tensor::empty({C}, x.dtype(), d);
        // The kernel's dx uses this rank's sums; the global ones differ by a per-channel affine map of xhat.
        ASAP_KERNEL(d, bn_bwd_train)(x, dy, gamma, mean_t, inv_t, dx, s2, s1);
        const std::vector<double> l1 = s1.to_vector_f64(), l2 = s2.to_vector_f64();
        std::vector<double> sums(2 * C);
        for (int64_t c = 0; c < C; ++c) {
          sums[c] = share * l1[c];
          sums[C + c] = share * l2[c];
        }
        cp->allreduce_sum(sums.data(), sums.size());
        const std::vector<double> gam = gamma.defined() ? gamma.to_vector_f64() : std::vector<double>(C, 1.0);
        const std::vector<double> inv = inv_t.to_vector_f64();
        // dx_global - dx_rank = gamma*invstd/m * ((S1_r - G1) + xhat * (S2_r - G2)), as "eval BN"
        // of x with scale b and shift a: a + b * xhat.
        std::vector<double> a(C), b(C);
        for (int64_t c = 0; c < C; ++c) {
          const double k = gam[c] * inv[c] / double(m);
          a[c] = k * (l1[c] - sums[c]);
          b[c] = k * (l2[c] - sums[C + c]);
        }
        Tensor corr = Tensor::empty_like(x);
        ASAP_KERNEL(d, bn_fwd_eval)(x, channel_tensor(b, x.dtype(), d), channel_tensor(a, x.dtype(), d), corr,
                                    mean_t, var_t, p);
        if (needs[0]) gin[0] = ops::add(dx, corr);
        if (needs[1]) gin[1] = s2;  // this rank's share; the gradient all-reduce weighs and sums it
        if (needs[2]) gin[2] = s1;
      });
  return y;
}

}  // namespace asap::dist
