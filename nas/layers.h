// The building blocks of the DARTS operations, as Modules: BN, ReLU-conv-BN, FactorizedReduce,
// separable and dilated convolutions, pooling (+ optional BN), identity, zero. Shapes follow the
// DARTS reference code (operations.py); the separable/dilated parts use the fused ops::sep_block.
#pragma once
#include <memory>

#include "engine/kernel_table.h"
#include "engine/rng.h"
#include "nas/module.h"

namespace asap::nas {

class BatchNorm2d : public Module {
 public:
  BatchNorm2d(int64_t c, bool affine, Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  Tensor gamma_, beta_, running_mean_, running_var_;
};

// A no-bias convolution weight [O, C/groups, k, k] with PyTorch's default init.
Tensor make_conv_weight(int64_t out, int64_t in_per_group, int k, Generator& gen, Device dev);

class ReLUConvBN : public Module {
 public:
  ReLUConvBN(int64_t cin, int64_t cout, int k, int stride, int padding, bool affine, Generator& gen,
             Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  Tensor w_;
  Conv2dParams p_;
  BatchNorm2d* bn_;
};

// ReLU, then two 1x1 stride-2 convs (on x and on the view x[:, :, 1:, 1:]) concatenated, BN.
class FactorizedReduce : public Module {
 public:
  FactorizedReduce(int64_t cin, int64_t cout, bool affine, Generator& gen, Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  Tensor w1_, w2_;
  BatchNorm2d* bn_;
};

// A no-bias convolution weight [O, C/groups, kh, kw] (non-square), PyTorch's default init.
Tensor make_conv_weight(int64_t out, int64_t in_per_group, int kh, int kw, Generator& gen, Device dev);

// DARTS conv_7x1_1x7: ReLU, 1x7 conv (stride (1, s), padding (0, 3)), 7x1 conv (stride (s, 1),
// padding (3, 0)), BN. Built from two uniform-padding convs: the 1x7 conv with padding 3 on both
// dims leaves exactly the 3 zero rows above and below that the 7x1 conv needs, so the second conv
// runs with padding 0 and stride s on both dims. The result equals PyTorch's value for value.
class Conv7x1_1x7 : public Module {
 public:
  Conv7x1_1x7(int64_t c, int stride, bool affine, Generator& gen, Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  Tensor w1_, w2_;  // [C, C, 1, 7], [C, C, 7, 1]
  Conv2dParams p1_, p2_;
  BatchNorm2d* bn_;
};

// Two blocks of [ReLU, depthwise kxk (stride s in block 1), 1x1, BN].
class SepConv : public Module {
 public:
  SepConv(int64_t cin, int64_t cout, int k, int stride, int padding, bool affine, Generator& gen,
          Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  Tensor dw1_, pw1_, dw2_, pw2_;
  Conv2dParams p1_, p2_;
  BatchNorm2d *bn1_, *bn2_;
};

// ReLU, depthwise kxk dilated (stride s), 1x1, BN.
class DilConv : public Module {
 public:
  DilConv(int64_t cin, int64_t cout, int k, int stride, int padding, int dilation, bool affine,
          Generator& gen, Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  Tensor dw_, pw_;
  Conv2dParams p_;
  BatchNorm2d* bn_;
};

class Pool : public Module {
 public:
  Pool(bool max, int64_t c, int stride, bool with_bn, Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;

 private:
  bool max_;
  Pool2dParams p_;
  BatchNorm2d* bn_ = nullptr;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

class Zero : public Module {
 public:
  explicit Zero(int stride) : stride_(stride) {}
  Tensor forward(const Tensor& x) override;

 private:
  int stride_;
};

}  // namespace asap::nas
