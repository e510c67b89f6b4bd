// max_pool2d (records argmax), avg_pool2d (padding not counted), global_avg_pool.
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace asap::ops {
using namespace detail;

namespace {

// Output shape of a k/s/p window over [N,C,H,W] (floor mode, as PyTorch's default).
Shape pool_out_shape(const char* op, const Tensor& x, const Pool2dParams& p) {
  check_defined(op, x, "input");
  check_floating(op, x);
  ASAP_CHECK_SHAPE(x.ndim() == 4, op, ": input must be [N,C,H,W], got ", x.shape().str());
  ASAP_CHECK_SHAPE(p.kernel >= 1 && p.stride >= 1 && p.padding >= 0, op, ": bad kernel/stride/padding ",
                   p.kernel, "/", p.stride, "/", p.padding);
  // Every window then holds at least one real cell (PyTorch enforces the same bound).
  ASAP_CHECK_SHAPE(2 * p.padding <= p.kernel, op, ": padding ", p.padding, " exceeds half the kernel ",
                   p.kernel);
  const int64_t H = x.dim(2), W = x.dim(3);
  const int64_t hn = H + 2 * p.padding - p.kernel, wn = W + 2 * p.padding - p.kernel;
  ASAP_CHECK_SHAPE(hn >= 0 && wn >= 0, op, ": kernel ", p.kernel, " with padding ", p.padding,
                   " does not fit input ", x.shape().str());
  return Shape{x.dim(0), x.dim(1), hn / p.stride + 1, wn / p.stride + 1};
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  OpScope scope("max_pool2d");
  const Shape ys = pool_out_shape("max_pool2d", x_in, p);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  Tensor argmax = Tensor::empty(ys, DType::I32, x.device());
  ASAP_KERNEL(x.device(), maxpool_fwd)(x, y, argmax, p);
  const Shape xs = x.shape();
  record("max_pool2d", y, {x_in},
         [argmax, xs, p](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
           OpScope bscope("max_pool2d_bwd");
           Tensor dy = g.contiguous();
           Tensor dx = Tensor::empty(xs, dy.dtype(), dy.device());
           ASAP_KERNEL(dy.device(), maxpool_bwd)(dy, argmax, dx, p);
           gin[0] = dx;
         });
  return y;
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  OpScope scope("avg_pool2d");
  const Shape ys = pool_out_shape("avg_pool2d", x_in, p);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  ASAP_KERNEL(x.device(), avgpool_fwd)(x, y, p);
  const Shape xs = x.shape();
  record("avg_pool2d", y, {x_in}, [xs, p](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    OpScope bscope("avg_pool2d_bwd");
    Tensor dy = g.contiguous();
    Tensor dx = Tensor::empty(xs, dy.dtype(), dy.device());
    ASAP_KERNEL(dy.device(), avgpool_bwd)(dy, dx, p);
    gin[0] = dx;
  });
  return y;
}

Tensor global_avg_pool(const Tensor& x_in) {
  OpScope scope("global_avg_pool");
  check_defined("global_avg_pool", x_in, "input");
  check_floating("global_avg_pool", x_in);
  ASAP_CHECK_SHAPE(x_in.ndim() == 4 && x_in.dim(2) * x_in.dim(3) > 0, "global_avg_pool: input must be "
                   "[N,C,H,W] with H*W > 0, got ", x_in.shape().str());
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.dim(0), x.dim(1)}, x.dtype(), x.device());
  ASAP_KERNEL(x.device(), gap_fwd)(x, y);
  const Shape xs = x.shape();
  record("global_avg_pool", y, {x_in}, [xs](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    OpScope bscope("global_avg_pool_bwd");
    Tensor dy = g.contiguous();
    Tensor dx = Tensor::empty(xs, dy.dtype(), dy.device());
    ASAP_KERNEL(dy.device(), gap_bwd)(dy, dx);
    gin[0] = dx;
  });
  return y;
}

}  // namespace asap::ops
