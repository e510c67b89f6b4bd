// conv2d and the fused separable block: validation, output allocation, kernel calls and one
// autograd node each. Backward closures capture only the tensors their gradients need.
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/op_stats.h"
#include "engine/ops.h"

namespace asap::ops {
namespace {

std::string pstr(const Conv2dParams& p) {
  return ::asap::detail::concat("stride ", p.stride, ", padding ", p.padding, ", dilation ", p.dilation,
                        ", groups ", p.groups);
}

void check_same(const char* op, const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  ASAP_CHECK_SHAPE(a.defined() && b.defined(), op, ": ", an, " and ", bn, " must be defined");
  ASAP_CHECK_SHAPE(a.dtype() == b.dtype(), op, ": ", an, " is ", dtype_name(a.dtype()), " but ", bn,
                   " is ", dtype_name(b.dtype()));
  ASAP_CHECK_SHAPE(a.device() == b.device(), op, ": ", an, " is on ", a.device().str(), " but ", bn,
                   " is on ", b.device().str());
}

// Output size along one spatial dim; throws when the window does not fit.
int64_t out_size(const char* op, int64_t in, int64_t k, const Conv2dParams& p, const Tensor& x,
                 const Tensor& w) {
  int64_t span = p.dilation * (k - 1) + 1;
  ASAP_CHECK_SHAPE(in + 2 * p.padding >= span, op, ": input ", x.shape().str(), " too small for kernel ",
                   w.shape().str(), " with ", pstr(p));
  return (in + 2 * p.padding - span) / p.stride + 1;
}

void check_params(const char* op, const Conv2dParams& p) {
  ASAP_CHECK_SHAPE(p.stride >= 1 && p.dilation >= 1 && p.padding >= 0 && p.groups >= 1, op,
                   ": invalid parameters (", pstr(p), ")");
}

// Contiguous copy unless already contiguous. Only the 1x1 kernels accept a strided x.
Tensor packed(const Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }

// conv2d's argument checks; returns the output shape [N, O, Ho, Wo].
Shape conv_output_shape(const char* op, const Tensor& x_in, const Tensor& w_in, const Conv2dParams& p) {
  check_same(op, x_in, w_in, "x", "w");
  check_params(op, p);
  ASAP_CHECK_SHAPE(x_in.ndim() == 4 && w_in.ndim() == 4, op, ": expected x [N,C,H,W] and w [O,C/g,k,k], got x ",
                   x_in.shape().str(), " and w ", w_in.shape().str());
  const int64_t C = x_in.dim(1), O = w_in.dim(0);
  ASAP_CHECK_SHAPE(C % p.groups == 0 && O % p.groups == 0 && w_in.dim(1) == C / p.groups, op, ": x ",
                   x_in.shape().str(), " and w ", w_in.shape().str(), " do not match groups ", p.groups);
  return Shape{x_in.dim(0), O, out_size(op, x_in.dim(2), w_in.dim(2), p, x_in, w_in),
               out_size(op, x_in.dim(3), w_in.dim(3), p, x_in, w_in)};
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Conv2dParams& p) {
  const Shape ys = conv_output_shape("conv2d", x_in, w_in, p);
  const bool one_by_one = w_in.dim(2) == 1 && w_in.dim(3) == 1;
  const Tensor x = one_by_one ? x_in : packed(x_in);  // FactorizedReduce's view stays a view
  const Tensor w = packed(w_in);

  OpScope scope("conv2d");
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  ASAP_KERNEL(x.device(), conv2d_fwd)(x, w, y, p);

  if (needs_record({&x_in, &w_in})) {
    // dx needs w only; dw needs x only.
    Tensor saved_w = x_in.requires_grad() ? w : Tensor();
    Tensor saved_x = w_in.requires_grad() ? x : Tensor();
    record("conv2d", y, {x_in, w_in},
           [saved_x, saved_w, xshape = x_in.shape(), wshape = w.shape(), p](
               const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             Tensor dy = packed(gout);
             if (needs[0] && saved_w.defined()) {
               gin[0] = Tensor::empty(xshape, dy.dtype(), dy.device());
               ASAP_KERNEL(dy.device(), conv2d_bwd_data)(dy, saved_w, gin[0], p);
             }
             if (needs[1] && saved_x.defined()) {
               gin[1] = Tensor::empty(wshape, dy.dtype(), dy.device());
               ASAP_KERNEL(dy.device(), conv2d_bwd_weight)(saved_x, dy, gin[1], p);
             }
           });
  }
  return y;
}

Tensor relu_conv1x1(const Tensor& x_in, const Tensor& w_in, int stride) {
  Conv2dParams p;
  p.stride = stride;
  if (!x_in.defined() || !kernels(x_in.device().type).relu_pw_fwd) return conv2d(relu(x_in), w_in, p);
  const Shape ys = conv_output_shape("relu_conv1x1", x_in, w_in, p);
  ASAP_CHECK_SHAPE(w_in.dim(1) == x_in.dim(1) && w_in.dim(2) == 1 && w_in.dim(3) == 1,
                   "relu_conv1x1: expected w [O,", x_in.dim(1), ",1,1], got ", w_in.shape().str());
  const Tensor w = packed(w_in);  // x is read through its strides (FactorizedReduce's shifted view)

  OpScope scope("relu_conv1x1");
  Tensor y = Tensor::empty(ys, x_in.dtype(), x_in.device());
  ASAP_KERNEL(x_in.device(), relu_pw_fwd)(x_in, w, y, p);
  if (needs_record({&x_in, &w_in})) {
    // Both gradients need x (the mask, relu(x) recomputed for dw); dx needs w.
    record("relu_conv1x1", y, {x_in, w_in},
           [x = x_in, w, p](const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             Tensor dy = packed(gout);
             Tensor dx, dw;
             if (needs[0]) dx = Tensor::empty(x.shape(), dy.dtype(), dy.device());
             if (needs[1]) dw = Tensor::empty(w.shape(), dy.dtype(), dy.device());
             ASAP_KERNEL(dy.device(), relu_pw_bwd)(x, w, dy, dx, dw, p);
             gin[0] = dx;
             gin[1] = dw;
           });
  }
  return y;
}

Tensor sep_block(const Tensor& x_in, const Tensor& wd_in, const Tensor& wp_in, const Conv2dParams& p_in) {
  check_same("sep_block", x_in, wd_in, "x", "wd");
  check_same("sep_block", x_in, wp_in, "x", "wp");
  check_params("sep_block", p_in);
  ASAP_CHECK_SHAPE(x_in.ndim() == 4 && wd_in.ndim() == 4 && wp_in.ndim() == 4,
                   "sep_block: expected x [N,C,H,W], wd [C,1,k,k], wp [O,C,1,1], got x ", x_in.shape().str(),
                   ", wd ", wd_in.shape().str(), ", wp ", wp_in.shape().str());
  const int64_t N = x_in.dim(0), C = x_in.dim(1), O = wp_in.dim(0);
  ASAP_CHECK_SHAPE(wd_in.dim(0) == C && wd_in.dim(1) == 1 && wp_in.dim(1) == C && wp_in.dim(2) == 1 &&
                       wp_in.dim(3) == 1,
                   "sep_block: x ", x_in.shape().str(), " needs wd [", C, ",1,k,k] and wp [O,", C,
                   ",1,1], got wd ", wd_in.shape().str(), ", wp ", wp_in.shape().str());
  Conv2dParams p = p_in;
  p.groups = int(C);  // the depthwise part; p's groups is not meaningful for the block
  const int64_t Ho = out_size("sep_block", x_in.dim(2), wd_in.dim(2), p, x_in, wd_in);
  const int64_t Wo = out_size("sep_block", x_in.dim(3), wd_in.dim(3), p, x_in, wd_in);
  const Tensor x = packed(x_in), wd = packed(wd_in), wp = packed(wp_in);

  OpScope scope("sep_block");
  const bool rec = needs_record({&x_in, &wd_in, &wp_in});
  Tensor y = Tensor::empty({N, O, Ho, Wo}, x.dtype(), x.device());
  // mid = dw(relu(x)) is kept only when the 1x1 weight needs a gradient.
  Tensor mid = rec && wp_in.requires_grad() ? Tensor::empty({N, C, Ho, Wo}, x.dtype(), x.device()) : Tensor();
  ASAP_KERNEL(x.device(), sepblock_fwd)(x, wd, wp, mid, y, p);

  if (rec) {
    record("sep_block", y, {x_in, wd_in, wp_in},
           [x, wd, wp, mid, p](const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             Tensor dy = packed(gout);
             Tensor dx, dwd, dwp;
             if (needs[0]) dx = Tensor::empty(x.shape(), dy.dtype(), dy.device());
             if (needs[1]) dwd = Tensor::empty(wd.shape(), dy.dtype(), dy.device());
             if (needs[2] && mid.defined()) dwp = Tensor::empty(wp.shape(), dy.dtype(), dy.device());
             if (!dx.defined() && !dwd.defined() && !dwp.defined()) return;
             ASAP_KERNEL(dy.device(), sepblock_bwd)(x, wd, wp, mid, dy, dx, dwd, dwp, p);
             gin[0] = dx;
             gin[1] = dwd;
             gin[2] = dwp;
           });
  }
  return y;
}

}  // namespace asap::ops
