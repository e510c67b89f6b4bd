// weighted_sum (the mixed-op output: one node with gradients to every input and every weight)
// and concat_channels (the cell output).
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace asap::ops {
using namespace detail;

Tensor weighted_sum(const std::vector<Tensor>& xs_in, const Tensor& w_in) {
  const char* op = "weighted_sum";
  OpScope scope(op);
  ASAP_CHECK_SHAPE(!xs_in.empty(), op, ": needs at least one input");
  check_defined(op, w_in, "weights");
  const int64_t K = static_cast<int64_t>(xs_in.size());
  ASAP_CHECK_SHAPE(w_in.ndim() == 1 && w_in.dim(0) == K, op, ": weights must be [", K, "], got ",
                   w_in.shape().str());
  std::vector<Tensor> xs(xs_in.size());
  for (int64_t k = 0; k < K; ++k) {
    check_defined(op, xs_in[k], "an input");
    check_floating(op, xs_in[k]);
    check_same(op, xs_in[0], xs_in[k]);
    ASAP_CHECK_SHAPE(xs_in[k].shape() == xs_in[0].shape(), op, ": input ", k, " has shape ",
                     xs_in[k].shape().str(), ", input 0 has ", xs_in[0].shape().str());
    xs[k] = xs_in[k].contiguous();
  }
  check_same(op, xs_in[0], w_in);
  Tensor w = w_in.contiguous();
  Tensor y = Tensor::empty_like(xs[0]);
  ASAP_KERNEL(y.device(), wsum_fwd)(xs, w, y);

  std::vector<Tensor> inputs(xs_in);
  inputs.push_back(w_in);
  if (!needs_record(inputs)) return y;
  // The inputs are kept alive only when their dot products with dy (dw) are needed.
  const bool keep_xs = w_in.requires_grad();
  std::vector<Tensor> saved = keep_xs ? xs : std::vector<Tensor>(xs.size());
  record(op, y, inputs,
         [saved, w, K](const Tensor& g, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
           OpScope bscope("weighted_sum_bwd");
           Tensor dy = g.contiguous();
           std::vector<Tensor> dxs(static_cast<size_t>(K));
           for (int64_t k = 0; k < K; ++k)
             if (needs[k]) dxs[k] = Tensor::empty_like(dy);
           // Undefined dw tells the kernel to skip the dot products (and not to read the x_k).
           Tensor dw;
           if (needs[K]) dw = Tensor::empty({K}, w.dtype(), w.device());
           ASAP_KERNEL(dy.device(), wsum_bwd)(saved, w, dy, dxs, dw);
           for (int64_t k = 0; k < K; ++k)
             if (needs[k]) gin[k] = dxs[k];
           if (needs[K]) gin[K] = dw;
         });
  return y;
}

Tensor concat_channels(const std::vector<Tensor>& xs_in) {
  const char* op = "concat_channels";
  OpScope scope(op);
  ASAP_CHECK_SHAPE(!xs_in.empty(), op, ": needs at least one input");
  std::vector<Tensor> xs(xs_in.size());
  Shape ys;
  for (size_t i = 0; i < xs_in.size(); ++i) {
    const Tensor& t = xs_in[i];
    check_defined(op, t, "an input");
    check_same(op, xs_in[0], t);
    ASAP_CHECK_SHAPE(t.ndim() >= 2, op, ": inputs must be [N,C,...], input ", i, " is ", t.shape().str());
    bool match = t.ndim() == xs_in[0].ndim() && t.dim(0) == xs_in[0].dim(0);
    for (int d = 2; match && d < t.ndim(); ++d) match = t.dim(d) == xs_in[0].dim(d);
    ASAP_CHECK_SHAPE(match, op, ": input ", i, " has shape ", t.shape().str(), ", input 0 has ",
                     xs_in[0].shape().str(), " (only dim 1 may differ)");
    xs[i] = t.contiguous();
    if (i == 0) ys = t.shape();
    else ys[1] += t.dim(1);
  }
  Tensor y = Tensor::empty(ys, xs[0].dtype(), xs[0].device());
  ASAP_KERNEL(y.device(), concat_fwd)(xs, y);
  std::vector<Shape> shapes;
  shapes.reserve(xs.size());
  for (const Tensor& t : xs) shapes.push_back(t.shape());
  record(op, y, xs_in, [shapes](const Tensor& g, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
    OpScope bscope("concat_channels_bwd");
    Tensor dy = g.contiguous();
    // The kernel needs every slice's size, so every slice is materialised.
    std::vector<Tensor> dxs(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) dxs[i] = Tensor::empty(shapes[i], dy.dtype(), dy.device());
    ASAP_KERNEL(dy.device(), concat_bwd)(dy, dxs);
    for (size_t i = 0; i < shapes.size(); ++i)
      if (needs[i]) gin[i] = dxs[i];
  });
  return y;
}

}  // namespace asap::ops
