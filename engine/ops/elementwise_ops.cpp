// relu, add, scale, mul_scalar, sum, zeros, narrow.
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace asap::ops {
using namespace detail;

Tensor relu(const Tensor& x_in) {
  OpScope scope("relu");
  check_defined("relu", x_in, "input");
  check_floating("relu", x_in);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty_like(x);
  ASAP_KERNEL(x.device(), relu_fwd)(x, y);
  record("relu", y, {x_in}, [x](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty_like(x);
    ASAP_KERNEL(x.device(), relu_bwd)(x, gc, dx);
    gin[0] = dx;
  });
  return y;
}

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  OpScope scope("add");
  check_defined("add", a_in, "first input");
  check_defined("add", b_in, "second input");
  check_same("add", a_in, b_in);
  check_same_shape("add", a_in, b_in);
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor y = Tensor::empty_like(a);
  ASAP_KERNEL(a.device(), add)(a, b, y);
  record("add", y, {a_in, b_in}, [](const Tensor& g, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
    if (needs[0]) gin[0] = g;
    if (needs[1]) gin[1] = g;
  });
  return y;
}

Tensor scale(const Tensor& x_in, const Tensor& s) {
  OpScope scope("scale");
  check_defined("scale", x_in, "input");
  check_defined("scale", s, "scale");
  check_same("scale", x_in, s);
  ASAP_CHECK_SHAPE(s.numel() == 1, "scale: the scale must hold one element, got ", s.shape().str());
  Tensor x = x_in.contiguous();
  Tensor sc = s.contiguous();
  Tensor y = Tensor::empty_like(x);
  ASAP_KERNEL(x.device(), scale)(x, sc, y);
  record("scale", y, {x_in, s},
         [x, sc](const Tensor& g, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
           Tensor gc = g.contiguous();
           if (needs[0]) {
             Tensor dx = Tensor::empty_like(gc);
             ASAP_KERNEL(gc.device(), scale)(gc, sc, dx);
             gin[0] = dx;
           }
           if (needs[1]) {
             Tensor ds = Tensor::empty(sc.shape(), sc.dtype(), sc.device());
             ASAP_KERNEL(gc.device(), dot)(x, gc, ds);
             gin[1] = ds;
           }
         });
  return y;
}

Tensor mul_scalar(const Tensor& x_in, double s) {
  OpScope scope("mul_scalar");
  check_defined("mul_scalar", x_in, "input");
  check_floating("mul_scalar", x_in);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty_like(x);
  ASAP_KERNEL(x.device(), mul_scalar)(x, s, y);
  record("mul_scalar", y, {x_in}, [s](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty_like(gc);
    ASAP_KERNEL(gc.device(), mul_scalar)(gc, s, dx);
    gin[0] = dx;
  });
  return y;
}

Tensor sum(const Tensor& x_in) {
  OpScope scope("sum");
  check_defined("sum", x_in, "input");
  check_floating("sum", x_in);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(Shape{}, x.dtype(), x.device());
  ASAP_KERNEL(x.device(), sum_all)(x, y);
  Shape xs = x.shape();
  record("sum", y, {x_in}, [xs](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
    Tensor dx = Tensor::empty(xs, g.dtype(), g.device());
    Tensor ones = Tensor::full(xs, 1.0, g.dtype(), g.device());
    ASAP_KERNEL(g.device(), scale)(ones, g.contiguous(), dx);
    gin[0] = dx;
  });
  return y;
}

Tensor zeros(const Shape& shape, DType dt, Device dev) {
  OpScope scope("zeros");
  return Tensor::zeros(shape, dt, dev);
}

Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length) {
  OpScope scope("narrow");
  check_defined("narrow", x, "input");
  Tensor y = x.narrow(dim, start, length);
  Shape full = x.shape();
  record("narrow", y, {x},
         [full, dim, start, length](const Tensor& g, const std::vector<bool>&, std::vector<Tensor>& gin) {
           Tensor dx = Tensor::zeros(full, g.dtype(), g.device());
           Tensor slot = dx.narrow(dim, start, length);
           ASAP_KERNEL(g.device(), copy_strided)(g, slot);
           gin[0] = dx;
         });
  return y;
}

}  // namespace asap::ops
