// Runtime ISA dispatch of the CPU kernels (kernels/cpu/isa.h): every instruction set this CPU
// and build can run (sse2, avx2, avx512) computes each hot op, forward and backward, in float32
// and float64, and is compared with the float64 result of the baseline (SSE2) kernels: the double
// reference. Random, never-zero inputs; tolerances stated per comparison. Also: the dispatch
// really switches the table, and ASAP_CPU_ISA is validated with a message naming the value.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/kernel_table.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/sgd.h"
#include "kernels/cpu/isa.h"
#include "tests/test_util.h"

namespace {

using namespace asap;
using asap::cpu::CpuIsa;
using asap::test::random_tensor;

// Restores the instruction set the process chose when a test case ends.
struct IsaRestore {
  CpuIsa saved = cpu::active_cpu_isa();
  ~IsaRestore() { cpu::set_cpu_isa(saved); }
};

Tensor input(const Shape& s, uint64_t seed, DType dt, bool grad = true) {
  Tensor t = random_tensor(s, seed, DType::F64, -1.0, 1.0).to(dt);
  t.set_requires_grad(grad);
  return t;
}

// y = f(inputs); backward with a fixed random projection; returns y and every input's gradient.
std::vector<Tensor> fwd_bwd(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> in) {
  Tensor y = f(in);
  backward(y, random_tensor(y.shape(), 4242, DType::F64, -1.0, 1.0).to(y.dtype()));
  std::vector<Tensor> out{y.detach()};
  for (const Tensor& t : in)
    if (t.requires_grad()) out.push_back(t.grad());
  return out;
}

struct Case {
  const char* name;
  std::function<std::vector<Tensor>(DType)> run;
};

std::vector<Case> cases() {
  std::vector<Case> cs;
  cs.push_back({"sep_block 3x3", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::sep_block(v[0], v[1], v[2], {1, 1, 1, 1}); },
                                 {input({4, 6, 9, 9}, 1, dt), input({6, 1, 3, 3}, 2, dt), input({8, 6, 1, 1}, 3, dt)});
                }});
  cs.push_back({"sep_block 5x5 stride 2", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::sep_block(v[0], v[1], v[2], {2, 2, 1, 1}); },
                                 {input({3, 5, 11, 11}, 4, dt), input({5, 1, 5, 5}, 5, dt), input({7, 5, 1, 1}, 6, dt)});
                }});
  cs.push_back({"depthwise conv 3x3 dilation 2", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], {1, 2, 2, 6}); },
                                 {input({3, 6, 10, 10}, 7, dt), input({6, 1, 3, 3}, 8, dt)});
                }});
  cs.push_back({"conv 3x3 stride 2 (im2col)", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], {2, 1, 1, 1}); },
                                 {input({2, 4, 9, 9}, 9, dt), input({5, 4, 3, 3}, 10, dt)});
                }});
  cs.push_back({"conv 1x7 then 7x1", [](DType dt) {
                  return fwd_bwd(
                      [](const std::vector<Tensor>& v) {
                        Conv2dParams p;
                        Tensor a = ops::conv2d(v[0], v[1], p);
                        return ops::conv2d(a, v[2], p);
                      },
                      {input({2, 3, 12, 12}, 11, dt), input({4, 3, 1, 7}, 12, dt), input({3, 4, 7, 1}, 13, dt)});
                }});
  // 1x1 convolutions on both sides of gemm_local's switch (kernels/cpu/conv_common.h): 13 x 20
  // weights run small_gemm.h (row and column tails in every variant), 70 input channels OpenBLAS.
  cs.push_back({"conv 1x1 small weight (register-blocked GEMM)", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], {}); },
                                 {input({3, 20, 10, 9}, 14, dt), input({13, 20, 1, 1}, 15, dt)});
                }});
  cs.push_back({"conv 1x1 stride 2, 70 channels (OpenBLAS)", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], {2, 0, 1, 1}); },
                                 {input({2, 70, 8, 8}, 16, dt), input({66, 70, 1, 1}, 17, dt)});
                }});
  cs.push_back({"relu_conv1x1 stride 2 on a shifted view (FactorizedReduce)", [](DType dt) {
                  return fwd_bwd(
                      [](const std::vector<Tensor>& v) {
                        Tensor s = ops::narrow(ops::narrow(v[0], 2, 1, 9), 3, 1, 9);
                        return ops::add(ops::relu_conv1x1(v[0], v[1], 2), ops::relu_conv1x1(s, v[2], 2));
                      },
                      {input({3, 7, 10, 10}, 18, dt), input({6, 7, 1, 1}, 19, dt), input({6, 7, 1, 1}, 20, dt)});
                }});
  cs.push_back({"max pool 3x3 / avg pool 3x3 stride 2", [](DType dt) {
                  return fwd_bwd(
                      [](const std::vector<Tensor>& v) {
                        return ops::add(ops::max_pool2d(v[0], {3, 2, 1}), ops::avg_pool2d(v[1], {3, 2, 1}));
                      },
                      {input({3, 5, 9, 9}, 14, dt), input({3, 5, 9, 9}, 15, dt)});
                }});
  cs.push_back({"batch norm (training, affine)", [](DType dt) {
                  return fwd_bwd(
                      [dt](const std::vector<Tensor>& v) {
                        Tensor rm = ops::zeros({6}, dt, Device::cpu());
                        Tensor rv = random_tensor({6}, 99, DType::F64, 0.5, 1.5).to(dt);
                        return ops::batch_norm(v[0], v[1], v[2], rm, rv, true);
                      },
                      {input({5, 6, 7, 7}, 16, dt), input({6}, 17, dt), input({6}, 18, dt)});
                }});
  cs.push_back({"relu, add, scale", [](DType dt) {
                  return fwd_bwd(
                      [](const std::vector<Tensor>& v) {
                        return ops::mul_scalar(ops::add(ops::relu(v[0]), ops::scale(v[1], v[2])), 0.7);
                      },
                      {input({4, 8, 6, 6}, 19, dt), input({4, 8, 6, 6}, 20, dt), input({}, 21, dt)});
                }});
  cs.push_back({"weighted sum of 3", [](DType dt) {
                  return fwd_bwd([](const std::vector<Tensor>& v) { return ops::weighted_sum({v[0], v[1], v[2]}, v[3]); },
                                 {input({3, 4, 5, 5}, 22, dt), input({3, 4, 5, 5}, 23, dt), input({3, 4, 5, 5}, 24, dt),
                                  input({3}, 25, dt)});
                }});
  cs.push_back({"SGD (momentum, weight decay) and Adam, 3 steps", [](DType dt) {
                  Tensor a = input({257}, 26, dt), b = input({3, 31}, 27, dt);
                  SGD sgd({a}, 0.1, 0.9, 3e-4);
                  Adam adam({b}, 0.01, 0.5, 0.999, 1e-8, 1e-3);
                  for (int s = 0; s < 3; ++s) {
                    sgd.zero_grad();
                    adam.zero_grad();
                    backward(ops::add(ops::sum(ops::mul_scalar(ops::relu(a), 1.0 + s)), ops::sum(ops::relu(b))));
                    sgd.step();
                    adam.step();
                  }
                  return std::vector<Tensor>{a.detach(), b.detach()};
                }});
  return cs;
}

}  // namespace

TEST_CASE("cpu isa: every usable instruction set matches the float64 baseline on every hot op", "[isa]") {
  IsaRestore restore;
  const std::vector<CpuIsa> isas = cpu::usable_cpu_isas();
  REQUIRE(isas.front() == CpuIsa::SSE2);
  for (const Case& c : cases()) {
    CAPTURE(c.name);
    cpu::set_cpu_isa(CpuIsa::SSE2);
    const std::vector<Tensor> ref = c.run(DType::F64);
    for (CpuIsa isa : isas) {
      CAPTURE(cpu::cpu_isa_name(isa));
      cpu::set_cpu_isa(isa);
      REQUIRE(cpu::active_cpu_isa() == isa);
      const std::vector<Tensor> f32 = c.run(DType::F32), f64 = c.run(DType::F64);
      REQUIRE(f32.size() == ref.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        CAPTURE(i);
        // float32: rounding of sums over at most a few hundred terms (FMA or not).
        CHECK(test::max_rel_error(f32[i], ref[i]) <= 2e-5);
        // float64 kernels of the variant: the same math, only the rounding order may differ.
        CHECK(test::max_rel_error(f64[i], ref[i]) <= 1e-12);
      }
    }
  }
}

TEST_CASE("cpu isa: a variant really replaces the hot entries, and only those", "[isa]") {
  IsaRestore restore;
  cpu::set_cpu_isa(CpuIsa::SSE2);
  const KernelTable base = kernels(DeviceType::CPU);
  for (CpuIsa isa : cpu::usable_cpu_isas()) {
    if (isa == CpuIsa::SSE2) continue;
    CAPTURE(cpu::cpu_isa_name(isa));
    cpu::set_cpu_isa(isa);
    const KernelTable& t = kernels(DeviceType::CPU);
    CHECK(t.sepblock_fwd != base.sepblock_fwd);
    CHECK(t.bn_bwd_train != base.bn_bwd_train);
    CHECK(t.wsum_bwd != base.wsum_bwd);
    CHECK(t.sgd_step != base.sgd_step);
    CHECK(t.gemm == base.gemm);  // OpenBLAS dispatches by itself: no variant
    CHECK(t.fill_normal == base.fill_normal);
  }
  if (cpu::cpu_supports(CpuIsa::AVX2)) CHECK(cpu::cpu_isa_compiled(CpuIsa::AVX2) == cpu::cpu_isa_compiled(CpuIsa::AVX512));
}

TEST_CASE("cpu isa: ASAP_CPU_ISA is validated and names the bad value", "[isa]") {
  const char* old = std::getenv("ASAP_CPU_ISA");
  const std::string saved = old ? old : "";
  auto restore = [&] { old ? setenv("ASAP_CPU_ISA", saved.c_str(), 1) : unsetenv("ASAP_CPU_ISA"); };
  setenv("ASAP_CPU_ISA", "avx9", 1);
  CHECK_THROWS_WITH(cpu::requested_cpu_isa(), Catch::Contains("ASAP_CPU_ISA=avx9") && Catch::Contains("unknown"));
  setenv("ASAP_CPU_ISA", "sse2", 1);
  CHECK(cpu::requested_cpu_isa() == CpuIsa::SSE2);
  setenv("ASAP_CPU_ISA", "auto", 1);
  CHECK(cpu::requested_cpu_isa() == cpu::auto_cpu_isa());
  CHECK(cpu::auto_cpu_isa() == (cpu::cpu_isa_compiled(CpuIsa::AVX2) && cpu::cpu_supports(CpuIsa::AVX2) ? CpuIsa::AVX2 : CpuIsa::SSE2));
  if (!cpu::cpu_supports(CpuIsa::AVX512)) {
    setenv("ASAP_CPU_ISA", "avx512", 1);
    CHECK_THROWS_WITH(cpu::requested_cpu_isa(), Catch::Contains("does not support") || Catch::Contains("no avx512"));
  }
  restore();
}
