#include "engine/distributed/sync_batch_norm.h"

#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

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

Tensor sync_batch_norm_train(const Tensor& x_in, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             Tensor& running_mean, Tensor& running_var, const BatchNormParams& p, Communicator& comm) {
  const int64_t C = x.dim(1);
  const int64_t m = x.numel() / C;  // this rank's values per channel
  const Device dev = x.device();
  const int W = comm.size(), r = comm.rank();

  // 1. This rank's statistics, from the kernel (its y is scratch).
  Tensor lmean = Tensor::empty({C}, x.dtype(), dev), linv = Tensor::empty({C}, x.dtype(), dev);
  {
    Tensor scratch = Tensor::empty_like(x), no_rm, no_rv;
    ASAP_KERNEL(dev, bn_fwd_train)(x, Tensor(), Tensor(), scratch, lmean, linv, no_rm, no_rv, p);
  }
  // 2. Gathered through one sum (each rank fills its own slot), combined in rank order.
  const size_t slot = size_t(2 * C + 1);
  std::vector<double> all(slot * W, 0.0);
  {
    const std::vector<double> mu = lmean.to_vector_f64(), inv = linv.to_vector_f64();
    double* s = all.data() + slot * r;
    s[0] = double(m);
    for (int64_t c = 0; c < C; ++c) {
      s[1 + c] = mu[c];
      s[1 + C + c] = std::max(0.0, 1.0 / (inv[c] * inv[c]) - p.eps);
    }
  }
  comm.allreduce_sum(all.data(), all.size());
  double M = 0;
  for (int k = 0; k < W; ++k) M += all[slot * k];
  std::vector<double> gmean(C, 0.0), gvar(C, 0.0);
  for (int k = 0; k < W; ++k)
    for (int64_t c = 0; c < C; ++c) gmean[c] += all[slot * k] * all[slot * k + 1 + c];
  for (int64_t c = 0; c < C; ++c) gmean[c] /= M;
  for (int k = 0; k < W; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const double d = all[slot * k + 1 + c] - gmean[c];
      gvar[c] += all[slot * k] * (all[slot * k + 1 + C + c] + d * d);
    }
  for (int64_t c = 0; c < C; ++c) gvar[c] /= M;

  // 3. Running statistics as the kernel updates them (momentum, unbiased variance).
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

  // 4. y with the global statistics: the eval kernel is exactly that affine map.
  std::vector<double> ginv_h(C);
  for (int64_t c = 0; c < C; ++c) ginv_h[c] = 1.0 / std::sqrt(gvar[c] + p.eps);
  Tensor mean_t = channel_tensor(gmean, x.dtype(), dev), var_t = channel_tensor(gvar, x.dtype(), dev);
  Tensor inv_t = channel_tensor(ginv_h, x.dtype(), dev);
  Tensor y = Tensor::empty_like(x);
  ASAP_KERNEL(dev, bn_fwd_eval)(x, gamma, beta, y, mean_t, var_t, p);

  const double share = double(m) / M;  // this rank's weight in the global loss (as grad_sync)
  Communicator* cp = &comm;
  record(
      "batch_norm", y, {x_in, gamma, beta},
      [x, gamma, mean_t, var_t, inv_t, m, share, cp, C, p](const Tensor& g, const std::vector<bool>& needs,
                                                           std::vector<Tensor>& gin) {
        OpScope bscope("batch_norm_bwd");
        Tensor dy = g.contiguous();
        const Device d = x.device();
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
