#include "nas/nas_ops.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/op_stats.h"

namespace asap::nas {

Tensor reshape(const Tensor& x, const Shape& shape) {
  OpScope scope("nas_reshape");
  ASAP_CHECK_SHAPE(x.numel() == shape.numel(), "reshape: ", x.shape().str(), " has ", x.numel(),
                   " elements, ", shape.str(), " needs ", shape.numel());
  ASAP_CHECK_SHAPE(x.is_contiguous(), "reshape: input ", x.shape().str(), " is not contiguous");
  Tensor y = x.detach().view(shape);
  if (needs_record({&x})) {
    Shape in_shape = x.shape();
    record("nas_reshape", y, {x},
           [in_shape](const Tensor& gout, const std::vector<bool>& needs, std::vector<Tensor>& gin) {
             if (needs[0]) gin[0] = gout.contiguous().view(in_shape);
           });
  }
  return y;
}

}  // namespace asap::nas
