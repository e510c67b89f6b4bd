#include "engine/tensor.h"

#include <cstring>

#include "engine/autograd.h"
#include "engine/kernel_table.h"
#include "engine/pool_allocator.h"

namespace asap {
namespace {

std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dt, Device dev) {
  auto impl = make_pooled<TensorImpl>();
  impl->storage = make_pooled<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dt), dev);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dt;
  impl->device = dev;
  return impl;
}

// Copy kinds of AllocatorTable::copy.
constexpr int kH2D = 0, kD2H = 1, kD2D = 2;

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dt, Device dev) { return Tensor(make_impl(shape, dt, dev)); }

Tensor Tensor::zeros(const Shape& shape, DType dt, Device dev) {
  Tensor t = empty(shape, dt, dev);
  allocator_table(dev.type).memset_zero(t.raw_data(), t.nbytes(), dev.index);
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dt, Device dev) {
  Tensor t = empty(shape, dt, dev);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dt, Device dev) { return full(Shape{}, value, dt, dev); }

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape, Device dev) {
  ASAP_CHECK_SHAPE(static_cast<int64_t>(v.size()) == shape.numel(), "from_vector: ", v.size(),
                   " values for shape ", shape.str());
  Tensor t = empty(shape, DType::F32, dev);
  allocator_table(dev.type).copy(t.raw_data(), v.data(), t.nbytes(), dev.is_cuda() ? kH2D : kD2D, dev.index);
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& shape, Device dev) {
  ASAP_CHECK_SHAPE(static_cast<int64_t>(v.size()) == shape.numel(), "from_vector: ", v.size(),
                   " values for shape ", shape.str());
  Tensor t = empty(shape, DType::F64, dev);
  // float64 on a device: small per-step scalars only (see to()).
  if (dev.is_cuda())
    allocator_table(dev.type).copy(t.raw_data(), v.data(), t.nbytes(), kH2D, dev.index);
  else
    std::memcpy(t.raw_data(), v.data(), t.nbytes());
  return t;
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (dim(i) != 1 && strides()[i] != expect) return false;
    expect *= dim(i);
  }
  return true;
}

Tensor Tensor::view(const Shape& shape) const {
  ASAP_CHECK_SHAPE(is_contiguous(), "view of a non-contiguous tensor ", this->shape().str());
  ASAP_CHECK_SHAPE(shape.numel() == numel(), "view: cannot view ", this->shape().str(), " as ", shape.str());
  auto impl = make_pooled<TensorImpl>(*impl_);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->grad.reset();
  impl->grad_fn.reset();
  impl->requires_grad = false;
  return Tensor(impl);
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  if (d < 0) d += ndim();
  ASAP_CHECK_SHAPE(d >= 0 && d < ndim() && start >= 0 && length >= 0 && start + length <= dim(d),
                   "narrow(dim ", d, ", start ", start, ", length ", length, ") out of range for ",
                   shape().str());
  auto impl = make_pooled<TensorImpl>(*impl_);
  impl->offset += start * strides()[d];
  impl->shape[d] = length;
  impl->grad.reset();
  impl->grad_fn.reset();
  impl->requires_grad = false;
  return Tensor(impl);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  if (numel() == 0) return out;
  if (is_contiguous()) {
    allocator_table(device().type).copy(out.raw_data(), raw_data(), nbytes(), kD2D, device().index);
  } else {
    ASAP_KERNEL(device(), copy_strided)(*this, out);
  }
  return out;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), dtype(), dev);
  if (numel() == 0) return out;
  if (!dev.is_cuda()) {
    allocator_table(src.device().type).copy(out.raw_data(), src.raw_data(), nbytes(), kD2H, src.device().index);
  } else {
    ASAP_CHECK(src.device().type == DeviceType::CPU, "copies between two GPUs are not supported");
    // float64 on a device: only small per-step scalars (norms, optimizer lr/step, gates) that
    // device kernels read; the compute kernels stay float32.
    allocator_table(dev.type).copy(out.raw_data(), src.raw_data(), nbytes(), kH2D, dev.index);
  }
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  ASAP_CHECK(!device().is_cuda(), "dtype conversion runs on the CPU only");
  Tensor src = contiguous();
  Tensor out = empty(shape(), dt, device());
  const int64_t n = numel();
  auto load = [&](int64_t i) -> double {
    switch (src.dtype()) {
      case DType::F32: return src.data<float>()[i];
      case DType::F64: return src.data<double>()[i];
      default: return src.data<int32_t>()[i];
    }
  };
  for (int64_t i = 0; i < n; ++i) {
    double v = load(i);
    switch (dt) {
      case DType::F32: out.data<float>()[i] = static_cast<float>(v); break;
      case DType::F64: out.data<double>()[i] = v; break;
      default: out.data<int32_t>()[i] = static_cast<int32_t>(v); break;
    }
  }
  return out;
}

std::vector<double> Tensor::to_vector_f64() const {
  Tensor h = to(Device::cpu()).contiguous();
  std::vector<double> v(static_cast<size_t>(numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dtype()) {
      case DType::F32: v[i] = h.data<float>()[i]; break;
      case DType::F64: v[i] = h.data<double>()[i]; break;
      default: v[i] = h.data<int32_t>()[i]; break;
    }
  }
  return v;
}

std::vector<float> Tensor::to_vector() const {
  auto d = to_vector_f64();
  return std::vector<float>(d.begin(), d.end());
}

double Tensor::item() const {
  ASAP_CHECK_SHAPE(numel() == 1, "item() needs one element, tensor has shape ", shape().str());
  return to_vector_f64()[0];
}

void Tensor::fill_(double value) {
  ++impl_->version;
  if (dtype() == DType::I32) {
    ASAP_CHECK(!device().is_cuda() || value == 0.0, "fill_ of int32 device tensors supports 0 only");
    if (device().is_cuda()) {
      allocator_table(device().type).memset_zero(raw_data(), nbytes(), device().index);
      return;
    }
    ASAP_CHECK(is_contiguous(), "fill_ of a strided int32 tensor");
    for (int64_t i = 0; i < numel(); ++i) data<int32_t>()[i] = static_cast<int32_t>(value);
    return;
  }
  if (is_contiguous()) {
    ASAP_KERNEL(device(), fill)(*this, value);
  } else {
    Tensor tmp = Tensor::full(shape(), value, dtype(), device());
    ASAP_KERNEL(device(), copy_strided)(tmp, *this);
  }
}

void Tensor::zero_() { fill_(0.0); }

void Tensor::copy_(const Tensor& src) {
  ASAP_CHECK_SHAPE(src.shape() == shape(), "copy_: shape ", src.shape().str(), " into ", shape().str());
  ++impl_->version;
  Tensor s = src;
  if (s.dtype() != dtype()) s = s.to(Device::cpu()).to(dtype());
  if (s.device() != device()) s = s.to(device());
  if (numel() == 0) return;
  if (s.is_contiguous() && is_contiguous()) {
    if (s.raw_data() != raw_data())
      allocator_table(device().type).copy(raw_data(), s.raw_data(), nbytes(), kD2D, device().index);
  } else {
    ASAP_KERNEL(device(), copy_strided)(s, *this);
  }
}

Tensor Tensor::detach() const {
  auto impl = make_pooled<TensorImpl>(*impl_);
  impl->grad.reset();
  impl->grad_fn.reset();
  impl->requires_grad = false;
  return Tensor(impl);
}

}  // namespace asap
