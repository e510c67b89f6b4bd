// Tensor: a (possibly strided) view of a Storage, plus the autograd fields.
// Kernels see contiguous NCHW tensors unless a kernel documents that it accepts strides
// (the 1x1 stride-2 conv reads the shifted view x[:, :, 1:, 1:] in place).
#pragma once
#include <memory>
#include <vector>

#include "engine/dtype.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace asap {

struct Node;  // autograd node (engine/autograd.h)

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;
  DType dtype = DType::F32;
  Device device;
  // Autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;     // accumulated gradient (leaves keep it; non-leaves drop it)
  std::shared_ptr<Node> grad_fn;        // producer node; null for leaves
  int64_t version = 0;                  // bumped by in-place writes
  // Scratch of the running backward() (engine/autograd.cpp): the tensor's slots in its tables of
  // deferred gradient sums and of tensors kept alive; -1 outside a backward. A copied impl (a
  // view made inside a backward closure) starts with none.
  struct BackwardSlots {
    int32_t deferred = -1;
    int32_t held = -1;
    BackwardSlots() = default;
    BackwardSlots(const BackwardSlots&) {}
    BackwardSlots& operator=(const BackwardSlots&) { return *this; }
  } slots;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories (contiguous). empty() leaves memory uninitialised.
  static Tensor empty(const Shape& shape, DType dt = DType::F32, Device dev = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dt = DType::F32, Device dev = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dt = DType::F32, Device dev = Device::cpu());
  static Tensor scalar(double value, DType dt = DType::F32, Device dev = Device::cpu());  // 0-d
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape, Device dev = Device::cpu());
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape, Device dev = Device::cpu());
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int ndim() const { return impl_->shape.ndim(); }
  int64_t dim(int i) const { return impl_->shape[i]; }
  int64_t numel() const { return impl_->shape.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->device; }
  int64_t offset() const { return impl_->offset; }
  bool is_contiguous() const;

  template <typename T>
  T* data() const {
    return static_cast<T*>(impl_->storage->data()) + impl_->offset;
  }
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(dtype());
  }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }

  // Views (share storage)
  Tensor view(const Shape& shape) const;  // contiguous only; -1 is not supported: give sizes
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor contiguous() const;  // self when already contiguous, else a packed copy (no autograd)
  Tensor clone() const;       // always a packed copy (no autograd)
  Tensor to(Device dev) const;
  Tensor to(DType dt) const;  // CPU only (float32 <-> float64)

  // Host access, any device (copies). For tests, logging and I/O, not hot paths.
  std::vector<float> to_vector() const;
  std::vector<double> to_vector_f64() const;
  double item() const;  // numel() must be 1

  // In-place, no autograd (used by optimizers, init, BN running stats).
  void fill_(double value);
  void zero_();
  void copy_(const Tensor& src);  // same shape; any devices

  // Autograd
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool r) {
    impl_->requires_grad = r;
    return *this;
  }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl_->grad); }
  void zero_grad() { impl_->grad.reset(); }
  Tensor detach() const;  // same storage, no grad history

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace asap
