// softmax with temperature (1-D or 2-D, over the last dim) and mean softmax cross-entropy.
#include "engine/ops.h"
#include "engine/ops/op_util.h"

#include <cmath>

namespace asap::ops {
using namespace detail;

namespace {

// inv_t undefined: 1/temperature from the host value; defined: read on the device (see kernel_table.h).
Tensor softmax_impl(const Tensor& x_in, double temperature, const Tensor& inv_t) {
  const char* op = "softmax";
  OpScope scope(op);
  check_defined(op, x_in, "input");
  check_floating(op, x_in);
  ASAP_CHECK_SHAPE(x_in.ndim() == 1 || x_in.ndim() == 2, op, ": input must be 1-D or 2-D, got ",
                   x_in.shape().str());
  ASAP_CHECK_SHAPE(x_in.numel() > 0, op, ": empty input ", x_in.shape().str());
  ASAP_CHECK_SHAPE(std::isfinite(temperature) && temperature > 0, op, ": temperature must be > 0, got ",
                   temperature);
  if (inv_t.defined())
    ASAP_CHECK_SHAPE(inv_t.numel() == 1 && inv_t.dtype() == DType::F64 && inv_t.device() == x_in.device(), op,
                     ": the inverse temperature must be a 0-d float64 tensor on ", x_in.device().str());
  Tensor x = x_in.contiguous();
  // The kernel sees [R, K]; a 1-D input is one row.
  const Shape s2 = x.ndim() == 1 ? Shape{1, x.dim(0)} : x.shape();
  Tensor y = Tensor::empty_like(x);
  Tensor yv = y.view(s2);
  ASAP_KERNEL(x.device(), softmax_fwd)(x.view(s2), temperature, inv_t, yv);
  // Keep y's data, not y itself: capturing the output would tie it to its own node.
  Tensor ysave = yv.detach();
  record(op, y, {x_in}, [ysave, temperature, inv_t](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    OpScope bscope("softmax_bwd");
    Tensor dy = g.contiguous();
    Tensor dx = Tensor::empty_like(dy);
    Tensor dxv = dx.view(ysave.shape());
    ASAP_KERNEL(dy.device(), softmax_bwd)(ysave, dy.view(ysave.shape()), temperature, inv_t, dxv);
    gin[0] = dx;
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, double temperature) { return softmax_impl(x, temperature, Tensor()); }
Tensor softmax(const Tensor& x, const Tensor& inv_temperature) {
  check_defined("softmax", inv_temperature, "inverse temperature");
  return softmax_impl(x, 1.0, inv_temperature);
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& labels_in) {
  const char* op = "cross_entropy";
  OpScope scope(op);
  check_defined(op, logits_in, "logits");
  check_defined(op, labels_in, "labels");
  check_floating(op, logits_in);
  ASAP_CHECK_SHAPE(logits_in.ndim() == 2 && logits_in.dim(0) > 0 && logits_in.dim(1) > 0, op,
                   ": logits must be non-empty [N,K], got ", logits_in.shape().str());
  ASAP_CHECK_SHAPE(labels_in.dtype() == DType::I32, op, ": labels must be int32, got ",
                   dtype_name(labels_in.dtype()));
  ASAP_CHECK_SHAPE(labels_in.ndim() == 1 && labels_in.dim(0) == logits_in.dim(0), op, ": labels ",
                   labels_in.shape().str(), " do not match logits ", logits_in.shape().str());
  ASAP_CHECK_SHAPE(labels_in.device() == logits_in.device(), op, ": logits on ", logits_in.device().str(),
                   ", labels on ", labels_in.device().str());
  Tensor logits = logits_in.contiguous();
  Tensor labels = labels_in.contiguous();
  Tensor probs = Tensor::empty_like(logits);
  Tensor loss = Tensor::empty(Shape{}, logits.dtype(), logits.device());
  ASAP_KERNEL(logits.device(), xent_fwd)(logits, labels, probs, loss);
  record(op, loss, {logits_in}, [probs, labels](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    OpScope bscope("cross_entropy_bwd");
    Tensor dl = g.contiguous();
    Tensor dx = Tensor::empty_like(probs);
    ASAP_KERNEL(probs.device(), xent_bwd)(probs, labels, dl, dx);
    gin[0] = dx;
  });
  return loss;
}

}  // namespace asap::ops
