#include "nas/layers.h"

#include "engine/ops.h"

namespace asap::nas {

BatchNorm2d::BatchNorm2d(int64_t c, bool affine, Device dev) {
  if (affine) {
    gamma_ = register_parameter("weight", Tensor::full({c}, 1.0, DType::F32, dev));
    beta_ = register_parameter("bias", Tensor::zeros({c}, DType::F32, dev));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({c}, DType::F32, dev));
  running_var_ = register_buffer("running_var", Tensor::full({c}, 1.0, DType::F32, dev));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return ops::batch_norm(x, gamma_, beta_, running_mean_, running_var_, training());
}

Tensor make_conv_weight(int64_t out, int64_t in_per_group, int k, Generator& gen, Device dev) {
  return make_conv_weight(out, in_per_group, k, k, gen, dev);
}

Tensor make_conv_weight(int64_t out, int64_t in_per_group, int kh, int kw, Generator& gen, Device dev) {
  // Initialise on the host so that the numbers never depend on the backend.
  Tensor w = Tensor::empty({out, in_per_group, kh, kw});
  default_init_(w, gen);
  return dev == Device::cpu() ? w : w.to(dev);
}

Conv7x1_1x7::Conv7x1_1x7(int64_t c, int stride, bool affine, Generator& gen, Device dev) {
  w1_ = register_parameter("conv1.weight", make_conv_weight(c, c, 1, 7, gen, dev));
  w2_ = register_parameter("conv2.weight", make_conv_weight(c, c, 7, 1, gen, dev));
  bn_ = register_module("bn", std::make_unique<BatchNorm2d>(c, affine, dev));
  p1_.padding = 3;  // rows: 3 zero rows each side (kernel height 1 reads nothing else); cols: (0, 3)
  p2_.stride = stride;
  p2_.padding = 0;
}

Tensor Conv7x1_1x7::forward(const Tensor& x) {
  return bn_->forward(ops::conv2d(ops::conv2d(ops::relu(x), w1_, p1_), w2_, p2_));
}

ReLUConvBN::ReLUConvBN(int64_t cin, int64_t cout, int k, int stride, int padding, bool affine,
                       Generator& gen, Device dev) {
  w_ = register_parameter("conv.weight", make_conv_weight(cout, cin, k, gen, dev));
  p_.stride = stride;
  p_.padding = padding;
  bn_ = register_module("bn", std::make_unique<BatchNorm2d>(cout, affine, dev));
}

Tensor ReLUConvBN::forward(const Tensor& x) {
  // The cells' 1x1 preprocessing: the ReLU fused into the conv (no relu(x) tensor).
  if (w_.dim(2) == 1 && w_.dim(3) == 1 && p_.padding == 0) return bn_->forward(ops::relu_conv1x1(x, w_, p_.stride));
  return bn_->forward(ops::conv2d(ops::relu(x), w_, p_));
}

FactorizedReduce::FactorizedReduce(int64_t cin, int64_t cout, bool affine, Generator& gen,
                                   Device dev) {
  ASAP_CHECK(cout % 2 == 0, "FactorizedReduce needs an even number of output channels, got ", cout);
  w1_ = register_parameter("conv_1.weight", make_conv_weight(cout / 2, cin, 1, gen, dev));
  w2_ = register_parameter("conv_2.weight", make_conv_weight(cout / 2, cin, 1, gen, dev));
  bn_ = register_module("bn", std::make_unique<BatchNorm2d>(cout, affine, dev));
}

Tensor FactorizedReduce::forward(const Tensor& x) {
  // The shifted input x[:, :, 1:, 1:] is a strided view (no copy); the 1x1 kernels read it in
  // place, each half with the ReLU fused in.
  Tensor shifted = ops::narrow(ops::narrow(x, 2, 1, x.dim(2) - 1), 3, 1, x.dim(3) - 1);
  Tensor a = ops::relu_conv1x1(x, w1_, 2);
  Tensor b = ops::relu_conv1x1(shifted, w2_, 2);
  return bn_->forward(ops::concat_channels({a, b}));
}

static Conv2dParams dw_params(int64_t c, int stride, int padding, int dilation) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.groups = static_cast<int>(c);
  return p;
}

SepConv::SepConv(int64_t cin, int64_t cout, int k, int stride, int padding, bool affine,
                 Generator& gen, Device dev) {
  dw1_ = register_parameter("dw1.weight", make_conv_weight(cin, 1, k, gen, dev));
  pw1_ = register_parameter("pw1.weight", make_conv_weight(cin, cin, 1, gen, dev));
  bn1_ = register_module("bn1", std::make_unique<BatchNorm2d>(cin, affine, dev));
  dw2_ = register_parameter("dw2.weight", make_conv_weight(cin, 1, k, gen, dev));
  pw2_ = register_parameter("pw2.weight", make_conv_weight(cout, cin, 1, gen, dev));
  bn2_ = register_module("bn2", std::make_unique<BatchNorm2d>(cout, affine, dev));
  p1_ = dw_params(cin, stride, padding, 1);
  p2_ = dw_params(cin, 1, padding, 1);
}

Tensor SepConv::forward(const Tensor& x) {
  Tensor h = bn1_->forward(ops::sep_block(x, dw1_, pw1_, p1_));
  return bn2_->forward(ops::sep_block(h, dw2_, pw2_, p2_));
}

DilConv::DilConv(int64_t cin, int64_t cout, int k, int stride, int padding, int dilation,
                 bool affine, Generator& gen, Device dev) {
  dw_ = register_parameter("dw.weight", make_conv_weight(cin, 1, k, gen, dev));
  pw_ = register_parameter("pw.weight", make_conv_weight(cout, cin, 1, gen, dev));
  bn_ = register_module("bn", std::make_unique<BatchNorm2d>(cout, affine, dev));
  p_ = dw_params(cin, stride, padding, dilation);
}

Tensor DilConv::forward(const Tensor& x) {
  return bn_->forward(ops::sep_block(x, dw_, pw_, p_));
}

Pool::Pool(bool max, int64_t c, int stride, bool with_bn, Device dev) : max_(max) {
  p_.kernel = 3;
  p_.stride = stride;
  p_.padding = 1;
  if (with_bn) bn_ = register_module("bn", std::make_unique<BatchNorm2d>(c, false, dev));
}

Tensor Pool::forward(const Tensor& x) {
  Tensor y = max_ ? ops::max_pool2d(x, p_) : ops::avg_pool2d(x, p_);
  return bn_ ? bn_->forward(y) : y;
}

Tensor Zero::forward(const Tensor& x) {
  Shape s = x.shape();
  s[2] = (s[2] + stride_ - 1) / stride_;
  s[3] = (s[3] + stride_ - 1) / stride_;
  return ops::zeros(s, x.dtype(), x.device());
}

}  // namespace asap::nas
