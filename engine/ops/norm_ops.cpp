// batch_norm: train mode (batch statistics, running-stat update) and eval mode (running stats),
// each one autograd node.
#include "engine/ops.h"
#include "engine/ops/op_util.h"
#include "engine/distributed/sync_batch_norm.h"

#include <algorithm>
#include <cmath>

namespace asap::ops {
using namespace detail;

namespace {

void check_channel_vec(const char* op, const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  check_same(op, x, t);
  ASAP_CHECK_SHAPE(t.ndim() == 1 && t.dim(0) == x.dim(1), op, ": ", what, " must be [", x.dim(1),
                   "] for input ", x.shape().str(), ", got ", t.shape().str());
  ASAP_CHECK_SHAPE(t.is_contiguous(), op, ": ", what, " must be contiguous");
}

// 1 / sqrt(var + eps) computed on the host: eval-mode backward only, [C] values.
Tensor invstd_of(const Tensor& var, double eps) {
  std::vector<double> v = var.to_vector_f64();
  for (double& e : v) e = 1.0 / std::sqrt(e + eps);
  Tensor t = Tensor::from_vector(v, var.shape());
  if (var.dtype() != DType::F64) t = t.to(var.dtype());
  return t.to(var.device());
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, const BatchNormParams& p) {
  const char* op = "batch_norm";
  OpScope scope(op);
  check_defined(op, x_in, "input");
  check_floating(op, x_in);
  ASAP_CHECK_SHAPE(x_in.ndim() == 2 || x_in.ndim() == 4, op, ": input must be [N,C] or [N,C,H,W], got ",
                   x_in.shape().str());
  check_channel_vec(op, x_in, gamma, "gamma");
  check_channel_vec(op, x_in, beta, "beta");
  check_channel_vec(op, x_in, running_mean, "running_mean");
  check_channel_vec(op, x_in, running_var, "running_var");
  ASAP_CHECK_SHAPE(running_mean.defined() == running_var.defined(), op,
                   ": running_mean and running_var must be both given or both undefined");
  const int64_t C = x_in.dim(1);
  const int64_t per_channel = x_in.numel() / std::max<int64_t>(C, 1);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty_like(x);
  const Device dev = x.device();

  if (training) {
    // PyTorch refuses this too: the unbiased running variance would divide by zero.
    ASAP_CHECK_SHAPE(per_channel > 1, op, ": training needs more than one value per channel, input ",
                     x_in.shape().str());
    // distributed.sync_bn: statistics over every rank's samples (engine/distributed); unset in a
    // single process, which keeps the kernel path below.
    if (dist::Communicator* sync = dist::sync_batch_norm())
      return dist::sync_batch_norm_train(x_in, x, gamma, beta, running_mean, running_var, p, *sync);
    Tensor mean = Tensor::empty({C}, x.dtype(), dev);
    Tensor invstd = Tensor::empty({C}, x.dtype(), dev);
    ASAP_KERNEL(dev, bn_fwd_train)(x, gamma, beta, y, mean, invstd, running_mean, running_var, p);
    if (running_mean.defined()) {
      ++running_mean.impl()->version;
      ++running_var.impl()->version;
    }
    record(op, y, {x_in, gamma, beta},
           [x, gamma, mean, invstd](const Tensor& g, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             OpScope bscope("batch_norm_bwd");
             Tensor dy = g.contiguous();
             const int64_t c = x.dim(1);
             // dx is always written: the kernel contract does not allow an undefined dx.
             Tensor dx = Tensor::empty_like(x);
             Tensor dgamma, dbeta;
             if (needs[1]) dgamma = Tensor::empty({c}, x.dtype(), x.device());
             if (needs[2]) dbeta = Tensor::empty({c}, x.dtype(), x.device());
             ASAP_KERNEL(x.device(), bn_bwd_train)(x, dy, gamma, mean, invstd, dx, dgamma, dbeta);
             if (needs[0]) gin[0] = dx;
             if (needs[1]) gin[1] = dgamma;
             if (needs[2]) gin[2] = dbeta;
           });
    return y;
  }

  ASAP_CHECK_SHAPE(running_mean.defined(), op, ": eval mode needs running statistics");
  ASAP_KERNEL(dev, bn_fwd_eval)(x, gamma, beta, y, running_mean, running_var, p);
  if (!needs_record({&x_in, &gamma, &beta})) return y;
  // Snapshot the statistics: a later train-mode call may update them before backward runs.
  Tensor rm = running_mean.clone(), rv = running_var.clone();
  const double eps = p.eps;
  record(op, y, {x_in, gamma, beta},
         [x, gamma, rm, rv, eps](const Tensor& g, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
           OpScope bscope("batch_norm_bwd");
           Tensor dy = g.contiguous();
           const int64_t c = x.dim(1);
           // The eval transform is affine per channel: dx = dy * gamma * invstd, which is the eval
           // forward applied to dy with a zero mean and no beta.
           if (needs[0]) {
             Tensor dx = Tensor::empty_like(dy);
             Tensor zero_mean = Tensor::zeros({c}, x.dtype(), x.device());
             BatchNormParams bp;
             bp.eps = eps;
             ASAP_KERNEL(x.device(), bn_fwd_eval)(dy, gamma, Tensor(), dx, zero_mean, rv, bp);
             gin[0] = dx;
           }
           // dgamma = sum(dy * xhat), dbeta = sum(dy): the train backward's parameter sums with the
           // running statistics in place of the batch ones (its dx is discarded).
           if (needs[1] || needs[2]) {
             Tensor invstd = invstd_of(rv, eps);
             Tensor scratch = Tensor::empty_like(x);
             Tensor dgamma, dbeta;
             if (needs[1]) dgamma = Tensor::empty({c}, x.dtype(), x.device());
             if (needs[2]) dbeta = Tensor::empty({c}, x.dtype(), x.device());
             ASAP_KERNEL(x.device(), bn_bwd_train)(x, dy, gamma, rm, invstd, scratch, dgamma, dbeta);
             if (needs[1]) gin[1] = dgamma;
             if (needs[2]) gin[2] = dbeta;
           }
         });
  return y;
}

}  // namespace asap::ops
