// Non-square convolution kernels (conv_7x1_1x7's 1x7 and 7x1, and other kh != kw shapes) on the
// CUDA device against the CPU, forward and both gradients, on random inputs; and the whole
// conv_7x1_1x7 primitive. "[cuda]": a GPU or the emulator (ASAP_CUDA_EMU, where a missing device
// fails instead of skipping); without either the cases WARN and return.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "kernels/cuda/device.h"
#include "nas/primitives.h"
#include "tests/cuda/test_cuda_util.h"
#include "tests/test_util.h"

namespace {

using namespace asap;
using asap::test::rel_l2;
using asap::test::cuda_ready;

struct Run {
  Tensor y, dx, dw;
};

Run conv_on(Device d, const Tensor& x0, const Tensor& w0, const Conv2dParams& p, const Tensor& proj) {
  Tensor x = d.is_cuda() ? x0.to(d) : x0.clone(), w = d.is_cuda() ? w0.to(d) : w0.clone();
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  Tensor y = ops::conv2d(x, w, p);
  backward(y, d.is_cuda() ? proj.to(d) : proj);
  clear_tape();
  return {y, x.grad(), w.grad()};
}

}  // namespace

TEST_CASE("cuda: conv2d with non-square kernels matches the CPU", "[cuda]") {
  ASAP_SKIP_WITHOUT_CUDA();
  struct Case {
    const char* name;
    Shape x, w;
    int stride, pad, dil, groups;
  };
  const std::vector<Case> cases = {
      {"1x7 pad 3", {2, 8, 8, 8}, {8, 8, 1, 7}, 1, 3, 1, 1},
      {"7x1 pad 0 s2 (conv_7x1_1x7 reduce)", {2, 8, 14, 7}, {8, 8, 7, 1}, 2, 0, 1, 1},
      {"7x1 pad 0 s1", {3, 5, 13, 6}, {4, 5, 7, 1}, 1, 0, 1, 1},
      {"1x3 s2 grouped", {2, 6, 9, 9}, {6, 3, 1, 3}, 2, 1, 1, 2},
      {"3x1 dilation 2", {1, 4, 10, 7}, {3, 4, 3, 1}, 1, 2, 2, 1},
      {"2x5 depthwise (general path)", {2, 4, 7, 9}, {4, 1, 2, 5}, 1, 2, 1, 4},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    INFO(c.name);
    Conv2dParams p;
    p.stride = c.stride;
    p.padding = c.pad;
    p.dilation = c.dil;
    p.groups = c.groups;
    const Tensor x = test::random_tensor(c.x, seed++, DType::F32), w = test::random_tensor(c.w, seed++, DType::F32);
    Tensor proj;
    {
      NoGradGuard ng;
      proj = test::random_tensor(ops::conv2d(x, w, p).shape(), seed++, DType::F32);
    }
    const Run cpu = conv_on(Device::cpu(), x, w, p, proj);
    const Run dev = conv_on(Device::cuda(), x, w, p, proj);
    REQUIRE(dev.y.device().is_cuda());
    CHECK(rel_l2(dev.y, cpu.y) < 1e-4);
    CHECK(rel_l2(dev.dx, cpu.dx) < 1e-4);
    CHECK(rel_l2(dev.dw, cpu.dw) < 1e-4);
  }
}

TEST_CASE("cuda: the conv_7x1_1x7 primitive matches the CPU, stride 1 and 2", "[cuda]") {
  ASAP_SKIP_WITHOUT_CUDA();
  for (int stride : {1, 2}) {
    INFO("stride " << stride);
    nas::PrimitiveArgs a;
    a.C = 6;
    a.stride = stride;
    a.affine = true;
    Generator g1(9), g2(9);
    auto cpu_op = nas::make_primitive("conv_7x1_1x7", a, g1);
    a.device = Device::cuda();
    auto dev_op = nas::make_primitive("conv_7x1_1x7", a, g2);  // same seed: same initial weights
    const Tensor x = test::random_tensor({2, 6, 9, 9}, 77, DType::F32);
    Tensor yc = cpu_op->forward(x);
    Tensor yd = dev_op->forward(x.to(Device::cuda()));
    clear_tape();
    REQUIRE(yd.shape() == yc.shape());
    CHECK(rel_l2(yd, yc) < 1e-4);
  }
}
