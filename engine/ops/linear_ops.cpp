// Dense ops on the gemm / bias_add_rows / sum_rows kernel entries.
//   linear: y = x w^T + b   (x [N,in], w [out,in], b [out] or undefined)
//   matmul: y = a b         (a [M,K], b [K,N])
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/op_stats.h"
#include "engine/ops.h"

namespace asap::ops {
namespace {

void check_pair(const char* op, const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  ASAP_CHECK_SHAPE(a.defined() && b.defined(), op, ": ", an, " and ", bn, " must be defined");
  ASAP_CHECK_SHAPE(a.dtype() == b.dtype() && a.device() == b.device(), op, ": ", an, " (",
                   dtype_name(a.dtype()), ", ", a.device().str(), ") and ", bn, " (", dtype_name(b.dtype()),
                   ", ", b.device().str(), ") differ in dtype or device");
}

Tensor packed(const Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }

}  // namespace

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
  check_pair("linear", x_in, w_in, "x", "w");
  ASAP_CHECK_SHAPE(x_in.ndim() == 2 && w_in.ndim() == 2 && x_in.dim(1) == w_in.dim(1),
                   "linear: expected x [N,in] and w [out,in], got x ", x_in.shape().str(), " and w ",
                   w_in.shape().str());
  const bool has_b = b_in.defined();
  if (has_b) {
    check_pair("linear", x_in, b_in, "x", "b");
    ASAP_CHECK_SHAPE(b_in.ndim() == 1 && b_in.dim(0) == w_in.dim(0), "linear: bias ", b_in.shape().str(),
                     " does not match w ", w_in.shape().str());
  }
  const Tensor x = packed(x_in), w = packed(w_in), b = has_b ? packed(b_in) : Tensor();
  OpScope scope("linear");
  const Device dev = x.device();
  Tensor y = Tensor::empty({x.dim(0), w.dim(0)}, x.dtype(), dev);
  ASAP_KERNEL(dev, gemm)(false, true, 1.0, x, w, 0.0, y);
  if (has_b) ASAP_KERNEL(dev, bias_add_rows)(b, y);

  std::vector<Tensor> inputs{x_in, w_in};
  if (has_b) inputs.push_back(b_in);
  if (needs_record(inputs)) {
    Tensor saved_w = x_in.requires_grad() ? w : Tensor();  // dx = dy w
    Tensor saved_x = w_in.requires_grad() ? x : Tensor();  // dw = dy^T x
    record("linear", y, inputs,
           [saved_x, saved_w, xshape = x.shape(), wshape = w.shape(), has_b](
               const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             Tensor dy = packed(gout);
             const Device d = dy.device();
             if (needs[0] && saved_w.defined()) {
               gin[0] = Tensor::empty(xshape, dy.dtype(), d);
               ASAP_KERNEL(d, gemm)(false, false, 1.0, dy, saved_w, 0.0, gin[0]);
             }
             if (needs[1] && saved_x.defined()) {
               gin[1] = Tensor::empty(wshape, dy.dtype(), d);
               ASAP_KERNEL(d, gemm)(true, false, 1.0, dy, saved_x, 0.0, gin[1]);
             }
             if (has_b && needs[2]) {
               gin[2] = Tensor::empty({wshape[0]}, dy.dtype(), d);
               ASAP_KERNEL(d, sum_rows)(dy, gin[2]);
             }
           });
  }
  return y;
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_pair("matmul", a_in, b_in, "a", "b");
  ASAP_CHECK_SHAPE(a_in.ndim() == 2 && b_in.ndim() == 2 && a_in.dim(1) == b_in.dim(0),
                   "matmul: expected a [M,K] and b [K,N], got a ", a_in.shape().str(), " and b ",
                   b_in.shape().str());
  const Tensor a = packed(a_in), b = packed(b_in);
  OpScope scope("matmul");
  const Device dev = a.device();
  Tensor y = Tensor::empty({a.dim(0), b.dim(1)}, a.dtype(), dev);
  ASAP_KERNEL(dev, gemm)(false, false, 1.0, a, b, 0.0, y);
  if (needs_record({&a_in, &b_in})) {
    Tensor saved_b = a_in.requires_grad() ? b : Tensor();  // da = dy b^T
    Tensor saved_a = b_in.requires_grad() ? a : Tensor();  // db = a^T dy
    record("matmul", y, {a_in, b_in},
           [saved_a, saved_b, ashape = a.shape(), bshape = b.shape()](
               const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             Tensor dy = packed(gout);
             const Device d = dy.device();
             if (needs[0] && saved_b.defined()) {
               gin[0] = Tensor::empty(ashape, dy.dtype(), d);
               ASAP_KERNEL(d, gemm)(false, true, 1.0, dy, saved_b, 0.0, gin[0]);
             }
             if (needs[1] && saved_a.defined()) {
               gin[1] = Tensor::empty(bshape, dy.dtype(), d);
               ASAP_KERNEL(d, gemm)(true, false, 1.0, saved_a, dy, 0.0, gin[1]);
             }
           });
  }
  return y;
}

}  // namespace asap::ops
