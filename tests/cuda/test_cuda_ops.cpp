// CUDA backend vs the CPU reference, op by op, through the public ops API. Every case draws
// random non-zero float32 inputs, runs the op and its backward on the CPU first, then on the
// device under test, and compares the forward output and every input gradient (backward from a
// fixed random projection, so every output element matters) by relative L2 error
// ||dev - cpu|| / ||cpu|| against a per-op limit. Limits: 1e-6 for exact-order elementwise ops,
// 1e-5 for reductions and pooling, 1e-4 for convolutions/GEMMs/BN whose sums run in a different
// order on the device (float32 round-off grows with the reduction length; 1e-4 still catches any
// indexing or formula error, which shows up as O(1)).
// Each case runs twice: "[cuda]" against Device::cuda() (a GPU, or the CPU emulator in the
// ASAP_CUDA_EMU build; without either it WARNs "SKIPPED: no CUDA device"), and "[harness]"
// CPU against CPU in every build, so a bug in the harness itself can never hide behind a
// missing device (the harness once recorded both graphs before one backward consumed the tape).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/kernel_table.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/storage.h"
#include "kernels/cuda/stats.h"
#include "kernels/cuda/device.h"
#include "tests/cuda/test_cuda_util.h"
#include "tests/test_util.h"

namespace {

using namespace asap;
using asap::test::rel_l2;
using asap::test::cuda_ready;
using asap::test::random_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor rnd(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return random_tensor(s, seed, DType::F32, lo, hi);
}

// The device a case body runs against: set by ASAP_DEVICE_CASE before the body runs.
Device g_dev = Device::cuda();
Device dev_under_test() { return g_dev; }
// A copy on the device under test (a clone on the CPU: Tensor::to(own device) would alias).
Tensor on_dev(const Tensor& t) { return g_dev.is_cuda() ? t.to(g_dev) : t.clone(); }

struct Comparison {
  double forward = 0;
  std::vector<double> grads;  // one per input that requires grad, in input order
};

// Runs f and its backward on CPU copies of `inputs`, then on copies on `dev` (inputs flagged in
// `grad` require grad). The tape is thread-local and backward() consumes all of it, so the two
// graphs are recorded and differentiated one after the other, never interleaved.
// `perturb` (harness self-test only) scales the device run's gradients after backward.
Comparison run_both(const Fn& f, const std::vector<Tensor>& inputs, const std::vector<bool>& grad, Device dev,
                    double perturb = 1.0) {
  Comparison r;
  auto wants = [&](size_t i) { return i < grad.size() && grad[i]; };
  bool any_grad = false;
  for (size_t i = 0; i < inputs.size(); ++i) any_grad |= wants(i);
  auto make = [&](Device d) {
    std::vector<Tensor> v;
    for (size_t i = 0; i < inputs.size(); ++i) {
      v.push_back(d.is_cuda() ? inputs[i].to(d) : inputs[i].clone());
      if (wants(i)) v.back().set_requires_grad(true);
    }
    return v;
  };
  std::vector<Tensor> a = make(Device::cpu());
  Tensor ya = f(a);
  const Tensor proj = rnd(ya.shape(), 4242);
  if (any_grad) backward(ya, proj);
  clear_tape();
  std::vector<Tensor> b = make(dev);
  Tensor yb = f(b);
  REQUIRE(yb.device() == dev);
  REQUIRE(yb.shape() == ya.shape());
  if (any_grad) backward(yb, dev.is_cuda() ? proj.to(dev) : proj);
  clear_tape();
  r.forward = rel_l2(yb, ya);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!wants(i)) continue;
    REQUIRE(a[i].grad().defined());
    REQUIRE(b[i].grad().defined());
    REQUIRE(b[i].grad().device() == dev);
    Tensor gb = b[i].grad();
    if (perturb != 1.0) gb = ops::mul_scalar(gb, perturb);
    r.grads.push_back(rel_l2(gb, a[i].grad()));
  }
  return r;
}

void compare(const std::string& name, const Fn& f, const std::vector<Tensor>& inputs, const std::vector<bool>& grad,
             double tol_fwd, double tol_grad, Device dev = dev_under_test()) {
  INFO("op: " << name << " on " << dev.str());
  const Comparison r = run_both(f, inputs, grad, dev);
  INFO("forward relative L2 error " << r.forward << " (limit " << tol_fwd << ")");
  CHECK(r.forward <= tol_fwd);
  size_t g = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!(i < grad.size() && grad[i])) continue;
    INFO("gradient of input " << i << " shape " << inputs[i].shape().str() << ": relative L2 error " << r.grads[g]
                              << " (limit " << tol_grad << ")");
    CHECK(r.grads[g] <= tol_grad);
    ++g;
  }
}

// A case body, run against CUDA ([cuda]) and against the CPU itself ([harness]).
#define ASAP_DEVICE_CASE(title, fn)                                  \
  TEST_CASE("cuda: " title, "[cuda]") {                              \
    ASAP_SKIP_WITHOUT_CUDA();                                        \
    g_dev = Device::cuda();                                          \
    fn();                                                            \
  }                                                                  \
  TEST_CASE("harness cpu-vs-cpu: " title, "[harness]") {             \
    g_dev = Device::cpu();                                           \
    fn();                                                            \
  }

Conv2dParams conv_p(int stride, int padding, int dilation = 1, int groups = 1) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.groups = groups;
  return p;
}

}  // namespace

TEST_CASE("cuda: device query, allocator counters and out-of-memory message", "[cuda]") {
  ASAP_SKIP_WITHOUT_CUDA();
  INFO("device: " << cuda::device_name(0));
  const size_t before = allocator_table(DeviceType::CUDA).bytes_in_use(0);
  {
    Tensor t = Tensor::empty({1024, 1024}, DType::F32, Device::cuda());
    CHECK(allocator_table(DeviceType::CUDA).bytes_in_use(0) >= before + (4u << 20));
    CHECK(allocator_table(DeviceType::CUDA).peak_bytes(0) >= before + (4u << 20));
  }
  CHECK(allocator_table(DeviceType::CUDA).bytes_in_use(0) == before);
  // A freed block is reused: the next same-sized allocation does not grow the cache.
  const size_t cached = cuda::device_bytes_cached(0);
  { Tensor t = Tensor::empty({1024, 1024}, DType::F32, Device::cuda()); }
  CHECK(cuda::device_bytes_cached(0) == cached);
  // Far beyond any card: a DeviceError with the size and the batch-size hint.
  try {
    Tensor huge = Tensor::empty({int64_t(1) << 48}, DType::F32, Device::cuda());
    FAIL("allocating 1 PiB did not throw");
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("data.batch_size") != std::string::npos);
    CHECK(msg.find("bytes") != std::string::npos);
  }
  // Copies round-trip exactly.
  Tensor h = rnd({3, 5, 7}, 11);
  CHECK(rel_l2(h.to(Device::cuda()).to(Device::cpu()), h) == 0.0);
}

TEST_CASE("cuda: uploads from pageable memory go through pinned staging without a host wait", "[cuda]") {
  ASAP_SKIP_WITHOUT_CUDA();
  // More uploads than the ring has slots, the source rewritten right after each copy returns: every
  // device tensor must still hold what its source held at the call.
  Tensor src = Tensor::empty({3001});
  std::vector<Tensor> dev;
  const cuda::stats::Snapshot before = cuda::stats::snapshot();
  for (int k = 0; k < 9; ++k) {
    float* p = src.data<float>();
    for (int64_t i = 0; i < src.numel(); ++i) p[i] = 0.25f * float(i % 97) + float(k) + 0.5f;
    dev.push_back(src.to(Device::cuda()));
  }
  const cuda::stats::Snapshot d = cuda::stats::diff(cuda::stats::snapshot(), before);
  for (int k = 0; k < 9; ++k) {
    CAPTURE(k);
    const std::vector<float> v = dev[k].to(Device::cpu()).to_vector();
    bool same = true;
    for (int64_t i = 0; i < src.numel(); ++i) same = same && v[i] == 0.25f * float(i % 97) + float(k) + 0.5f;
    CHECK(same);
  }
  CHECK(d.bytes_h2d_staged == 9u * 3001u * 4u);
  CHECK(d.bytes_h2d == d.bytes_h2d_staged);
  CHECK(d.syncs_by_reason.count("copy from pinned host memory") == 0);
  CHECK(d.host_syncs == 0);
}

TEST_CASE("cuda: non-float32 tensors are rejected by name", "[cuda]") {
  ASAP_SKIP_WITHOUT_CUDA();
  Tensor t = Tensor::zeros({4}, DType::F64, Device::cuda());
  CHECK_THROWS_AS(ops::relu(t), Error);
}

void case_1() {
  const Shape s{3, 4, 5, 7};
  compare("relu", [](auto& in) { return ops::relu(in[0]); }, {rnd(s, 1)}, {true}, 1e-6, 1e-6);
  compare("add", [](auto& in) { return ops::add(in[0], in[1]); }, {rnd(s, 2), rnd(s, 3)}, {true, true}, 1e-6, 1e-6);
  compare("scale", [](auto& in) { return ops::scale(in[0], in[1]); }, {rnd(s, 4), Tensor::scalar(0.37)},
          {true, true}, 1e-6, 1e-5);
  compare("mul_scalar", [](auto& in) { return ops::mul_scalar(in[0], -1.7); }, {rnd(s, 5)}, {true}, 1e-6, 1e-6);
  compare("sum", [](auto& in) { return ops::sum(in[0]); }, {rnd({1000, 37}, 6)}, {true}, 1e-5, 1e-6);
  compare("narrow", [](auto& in) { return ops::relu(ops::narrow(in[0], 2, 1, 3)); }, {rnd(s, 7)}, {true}, 1e-6,
          1e-6);
  compare("drop_path", [](auto& in) { return ops::drop_path(in[0], 0.3, 99, 5); }, {rnd({16, 3, 4, 4}, 8)}, {true},
          1e-6, 1e-6);
  // Odd length and a misaligned view exercise the scalar (non-float4) path.
  compare("relu_odd", [](auto& in) { return ops::relu(in[0]); }, {rnd({1, 1, 1, 1001}, 9)}, {true}, 1e-6, 1e-6);
  Tensor z = ops::zeros({2, 3}, DType::F32, dev_under_test());
  for (double v : z.to_vector_f64()) CHECK(v == 0.0);
}
ASAP_DEVICE_CASE("elementwise ops and reductions", case_1)

void case_2() {
  // Stem-like general conv (cuDNN or im2col, by ASAP_CONV_ALGO).
  compare("conv3x3_stem", [](auto& in) { return ops::conv2d(in[0], in[1], conv_p(1, 1)); },
          {rnd({2, 3, 11, 9}, 20), rnd({8, 3, 3, 3}, 21)}, {true, true}, 1e-5, 1e-4);
  compare("conv3x3_s2", [](auto& in) { return ops::conv2d(in[0], in[1], conv_p(2, 1)); },
          {rnd({2, 4, 10, 10}, 22), rnd({5, 4, 3, 3}, 23)}, {true, true}, 1e-5, 1e-4);
  compare("conv_grouped", [](auto& in) { return ops::conv2d(in[0], in[1], conv_p(1, 1, 1, 2)); },
          {rnd({2, 4, 8, 8}, 24), rnd({6, 2, 3, 3}, 25)}, {true, true}, 1e-5, 1e-4);
  // Depthwise: every k / dilation / stride the search space uses; 37x37 crosses tile edges.
  for (int k : {3, 5})
    for (int d : {1, 2})
      for (int st : {1, 2}) {
        const int pad = d * (k - 1) / 2;
        compare("depthwise k" + std::to_string(k) + " d" + std::to_string(d) + " s" + std::to_string(st),
                [=](auto& in) { return ops::conv2d(in[0], in[1], conv_p(st, pad, d, 5)); },
                {rnd({2, 5, 37, 19}, 30 + k + d + st), rnd({5, 1, k, k}, 40 + k + d + st)}, {true, true}, 1e-5,
                1e-4);
      }
  compare("conv1x1", [](auto& in) { return ops::conv2d(in[0], in[1], conv_p(1, 0)); },
          {rnd({3, 6, 7, 5}, 50), rnd({4, 6, 1, 1}, 51)}, {true, true}, 1e-5, 1e-4);
  // FactorizedReduce: 1x1 stride 2 on the shifted view x[:, :, 1:, 1:].
  compare("conv1x1_s2_shifted_view",
          [](auto& in) {
            Tensor v = ops::narrow(ops::narrow(in[0], 2, 1, 8), 3, 1, 8);
            return ops::conv2d(v, in[1], conv_p(2, 0));
          },
          {rnd({2, 4, 9, 9}, 52), rnd({3, 4, 1, 1}, 53)}, {true, true}, 1e-5, 1e-4);
}
ASAP_DEVICE_CASE("conv2d paths (general, depthwise, 1x1, strided view, grouped)", case_2)

void case_3() {
  struct Cfg { int k, d, s; };
  for (Cfg c : {Cfg{3, 1, 1}, Cfg{5, 1, 1}, Cfg{3, 2, 1}, Cfg{5, 2, 1}, Cfg{3, 1, 2}, Cfg{5, 2, 2}}) {
    const int pad = c.d * (c.k - 1) / 2;
    compare("sep_block k" + std::to_string(c.k) + " d" + std::to_string(c.d) + " s" + std::to_string(c.s),
            [=](auto& in) { return ops::sep_block(in[0], in[1], in[2], conv_p(c.s, pad, c.d)); },
            {rnd({2, 6, 17, 16}, 60 + c.k), rnd({6, 1, c.k, c.k}, 70 + c.d), rnd({7, 6, 1, 1}, 80 + c.s)},
            {true, true, true}, 1e-5, 1e-4);
  }
  // wp frozen: the op keeps no mid; only dx and dwd are computed.
  compare("sep_block_frozen_pw", [](auto& in) { return ops::sep_block(in[0], in[1], in[2], conv_p(1, 1)); },
          {rnd({2, 4, 8, 8}, 90), rnd({4, 1, 3, 3}, 91), rnd({4, 4, 1, 1}, 92)}, {true, true, false}, 1e-5, 1e-4);
}
ASAP_DEVICE_CASE("fused separable block matches the CPU", case_3)

void case_4() {
  for (bool affine : {true, false}) {
    for (Shape s : {Shape{4, 3, 9, 7}, Shape{16, 5}}) {
      const int64_t C = s[1];
      Tensor rm_c = Tensor::zeros({C}), rv_c = Tensor::full({C}, 1.0);
      Tensor rm_g = on_dev(rm_c), rv_g = on_dev(rv_c);
      int calls = 0;
      // Mean offset 3: the shifted sums must not cancel.
      std::vector<Tensor> in{rnd(s, 100 + C, 2.0, 4.0)};
      std::vector<bool> g{true};
      if (affine) {
        in.push_back(rnd({C}, 101, 0.5, 1.5));
        in.push_back(rnd({C}, 102));
        g.push_back(true);
        g.push_back(true);
      }
      compare(std::string("batch_norm train affine=") + (affine ? "1 " : "0 ") + s.str(),
              [&](auto& t) {
                const bool second = calls++ % 2 == 1;  // run_both runs the CPU reference first
                Tensor& rm = second ? rm_g : rm_c;
                Tensor& rv = second ? rv_g : rv_c;
                return ops::batch_norm(t[0], affine ? t[1] : Tensor(), affine ? t[2] : Tensor(), rm, rv, true);
              },
              in, g, 1e-5, 1e-4);
      CHECK(rel_l2(rm_g, rm_c) <= 1e-6);
      CHECK(rel_l2(rv_g, rv_c) <= 1e-6);
      compare("batch_norm eval",
              [&](auto& t) {
                const bool second = calls++ % 2 == 1;  // run_both runs the CPU reference first
                Tensor& rm = second ? rm_g : rm_c;
                Tensor& rv = second ? rv_g : rv_c;
                return ops::batch_norm(t[0], affine ? t[1] : Tensor(), affine ? t[2] : Tensor(), rm, rv, false);
              },
              in, g, 1e-6, 1e-5);
    }
  }
}
ASAP_DEVICE_CASE("batch norm train / eval and running statistics", case_4)

void case_5() {
  for (int st : {1, 2}) {
    Pool2dParams p;
    p.kernel = 3;
    p.stride = st;
    p.padding = 1;
    compare("max_pool s" + std::to_string(st), [=](auto& in) { return ops::max_pool2d(in[0], p); },
            {rnd({2, 3, 13, 10}, 110 + st)}, {true}, 1e-6, 1e-6);
    compare("avg_pool s" + std::to_string(st), [=](auto& in) { return ops::avg_pool2d(in[0], p); },
            {rnd({2, 3, 13, 10}, 120 + st)}, {true}, 1e-6, 1e-6);
  }
  compare("global_avg_pool", [](auto& in) { return ops::global_avg_pool(in[0]); }, {rnd({3, 5, 9, 11}, 130)},
          {true}, 1e-6, 1e-6);
}
ASAP_DEVICE_CASE("pooling", case_5)

void case_6() {
  compare("linear", [](auto& in) { return ops::linear(in[0], in[1], in[2]); },
          {rnd({7, 33}, 140), rnd({10, 33}, 141), rnd({10}, 142)}, {true, true, true}, 1e-5, 1e-5);
  compare("linear_nobias", [](auto& in) { return ops::linear(in[0], in[1], Tensor()); },
          {rnd({5, 8}, 143), rnd({3, 8}, 144)}, {true, true}, 1e-5, 1e-5);
  compare("matmul", [](auto& in) { return ops::matmul(in[0], in[1]); }, {rnd({9, 17}, 145), rnd({17, 6}, 146)},
          {true, true}, 1e-5, 1e-5);
  for (double t : {1.0, 0.37})
    compare("softmax T=" + std::to_string(t), [=](auto& in) { return ops::softmax(in[0], t); },
            {rnd({14, 8}, 150, -3, 3)}, {true}, 1e-6, 1e-5);
  compare("softmax 1-D", [](auto& in) { return ops::softmax(in[0], 0.5); }, {rnd({8}, 151)}, {true}, 1e-6, 1e-5);
  std::vector<int32_t> lab{3, 0, 9, 9, 1, 4, 7, 2, 5, 6, 8};
  Tensor labels = Tensor::empty({int64_t(lab.size())}, DType::I32);
  std::copy(lab.begin(), lab.end(), labels.data<int32_t>());
  compare("cross_entropy", [](auto& in) { return ops::cross_entropy(in[0], in[1]); },
          {rnd({int64_t(lab.size()), 10}, 152, -4, 4), labels}, {true, false}, 1e-6, 1e-5);
}
ASAP_DEVICE_CASE("linear, matmul, softmax and cross entropy", case_6)

void case_7() {
  for (int K : {1, 2, 5, 8, 11}) {  // 11 > 8 takes the multi-launch path
    std::vector<Tensor> in;
    std::vector<bool> g;
    for (int k = 0; k < K; ++k) {
      in.push_back(rnd({2, 3, 6, 6}, 200 + k));
      g.push_back(true);
    }
    in.push_back(rnd({K}, 300 + K, 0.05, 1.0));
    g.push_back(true);
    compare("weighted_sum K=" + std::to_string(K),
            [K](auto& t) {
              std::vector<Tensor> xs(t.begin(), t.begin() + K);
              return ops::weighted_sum(xs, t[K]);
            },
            in, g, 1e-6, 1e-5);
  }
  // A large one, so the dot products span many blocks of the two-pass reduction.
  compare("weighted_sum large",
          [](auto& t) { return ops::weighted_sum({t[0], t[1], t[2]}, t[3]); },
          {rnd({64, 16, 32, 32}, 400), rnd({64, 16, 32, 32}, 401), rnd({64, 16, 32, 32}, 402), rnd({3}, 403, 0.1, 1)},
          {true, true, true, true}, 1e-6, 1e-5);
  compare("concat_channels", [](auto& t) { return ops::concat_channels({t[0], t[1], t[2]}); },
          {rnd({2, 3, 4, 5}, 410), rnd({2, 1, 4, 5}, 411), rnd({2, 4, 4, 5}, 412)}, {true, true, true}, 0.0, 0.0);
}
ASAP_DEVICE_CASE("mixed-op weighted sum and channel concat", case_7)

void case_8() {
  const std::vector<int64_t> sizes{5, 4097, 10001};  // crosses the 4096-element chunk boundary
  auto make = [&](uint64_t seed) {
    std::vector<Tensor> v;
    for (size_t i = 0; i < sizes.size(); ++i) v.push_back(rnd({sizes[i]}, seed + i));
    return v;
  };
  auto to_gpu = [](const std::vector<Tensor>& v) {
    std::vector<Tensor> r;
    for (auto& t : v) r.push_back(on_dev(t));
    return r;
  };
  auto clone = [](const std::vector<Tensor>& v) {
    std::vector<Tensor> r;
    for (auto& t : v) r.push_back(t.clone());
    return r;
  };
  for (bool nesterov : {false, true}) {
    std::vector<Tensor> pc = make(500), gc = make(510), bc = make(520);
    std::vector<Tensor> pg = to_gpu(pc), gg = to_gpu(gc), bg = to_gpu(bc);
    SgdArgs a{0.05, 0.9, 3e-4, nesterov};
    for (int step = 0; step < 3; ++step) {
      kernels(DeviceType::CPU).sgd_step(pc, gc, bc, a);
      kernels(dev_under_test().type).sgd_step(pg, gg, bg, a);
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      INFO("sgd nesterov=" << nesterov << " tensor " << i);
      CHECK(rel_l2(pg[i], pc[i]) <= 1e-6);
      CHECK(rel_l2(bg[i], bc[i]) <= 1e-6);
    }
  }
  {
    std::vector<Tensor> pc = make(600), gc = make(610), mc = make(620), vc = make(630);
    for (auto& t : vc) t = ops::mul_scalar(ops::relu(t), 0.1);  // v >= 0
    std::vector<Tensor> pg = to_gpu(pc), gg = to_gpu(gc), mg = to_gpu(mc), vg = to_gpu(clone(vc));
    for (int64_t step = 1; step <= 3; ++step) {
      AdamArgs a{3e-4, 0.5, 0.999, 1e-8, 1e-3, step};
      kernels(DeviceType::CPU).adam_step(pc, gc, mc, vc, a);
      kernels(dev_under_test().type).adam_step(pg, gg, mg, vg, a);
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      INFO("adam tensor " << i);
      CHECK(rel_l2(pg[i], pc[i]) <= 1e-6);
      CHECK(rel_l2(mg[i], mc[i]) <= 1e-6);
      CHECK(rel_l2(vg[i], vc[i]) <= 1e-6);
    }
  }
}
ASAP_DEVICE_CASE("fused optimizer steps (SGD momentum/Nesterov, Adam)", case_8)

void case_9() {
  for (uint64_t offset : {0ull, 7ull}) {
    Tensor c = Tensor::empty({1001}), g = Tensor::empty({1001}, DType::F32, dev_under_test());
    kernels(DeviceType::CPU).fill_normal(c, 1234, offset, 0.5, 2.0);
    kernels(dev_under_test().type).fill_normal(g, 1234, offset, 0.5, 2.0);
    CHECK(rel_l2(g, c) <= 1e-7);
    kernels(DeviceType::CPU).fill_uniform(c, 99, offset, -3.0, 1.0);
    kernels(dev_under_test().type).fill_uniform(g, 99, offset, -3.0, 1.0);
    CHECK(rel_l2(g, c) <= 1e-7);
  }
  Generator gc(5), gg(5);
  Tensor c = Tensor::empty({3, 77}), g = Tensor::empty({3, 77}, DType::F32, dev_under_test());
  gc.normal_(c);
  gg.normal_(g);
  CHECK(rel_l2(g, c) <= 1e-7);
  // Drop-path masks from a device-held counter base: the same bits as the CPU's, before and after
  // the device advances the base (what a replayed train step does).
  Tensor st_c = Tensor::from_vector(std::vector<double>{4093.0, 0.37}, Shape{2});
  Tensor st_g = st_c.clone().to(dev_under_test());  // its own storage on the CPU too
  for (int round = 0; round < 2; ++round) {
    Tensor mc = Tensor::empty({257}), mg = Tensor::empty({257}, DType::F32, dev_under_test());
    // Round 1 draws a shard's masks (from sample 5 of the batch: not a Philox block boundary).
    const uint64_t first = round == 0 ? 0 : 5;
    kernels(DeviceType::CPU).drop_path_mask(st_c, 77, 19, first, mc);
    kernels(dev_under_test().type).drop_path_mask(st_g, 77, 19, first, mg);
    auto vc = mc.to_vector(), vg = mg.to(Device::cpu()).to_vector();
    int kept = 0;
    for (size_t i = 0; i < vc.size(); ++i) {
      REQUIRE(vg[i] == vc[i]);
      kept += vc[i] != 0.0f;
    }
    CHECK(kept > 100);
    CHECK(kept < 230);
    kernels(DeviceType::CPU).counter_advance(st_c, 65);
    kernels(dev_under_test().type).counter_advance(st_g, 65);
  }
  CHECK(st_g.to(Device::cpu()).to_vector_f64()[0] == 4093.0 + 130.0);
}
ASAP_DEVICE_CASE("Philox fills equal the CPU backend's", case_9)

void case_10() {
  Tensor x = on_dev(rnd({64, 16, 32, 32}, 700));
  const double s1 = ops::sum(x).item(), s2 = ops::sum(x).item();
  CHECK(s1 == s2);
  Tensor w = on_dev(rnd({16, 1, 5, 5}, 701)).set_requires_grad(true);
  Tensor g1, g2;
  for (Tensor* g : {&g1, &g2}) {
    w.zero_grad();
    backward(ops::sum(ops::conv2d(x, w, conv_p(1, 4, 2, 16))));
    *g = w.grad().clone();
  }
  CHECK(rel_l2(g1, g2) == 0.0);
}
ASAP_DEVICE_CASE("deterministic reductions (same bits on rerun)", case_10)

TEST_CASE("harness: a wrong device gradient or forward fails the comparison", "[harness]") {
  // The harness must see a 1% gradient error and a forward error; if it cannot, no [cuda] pass means anything.
  const Fn f = [](const std::vector<Tensor>& in) { return ops::relu(in[0]); };
  const std::vector<Tensor> x{rnd({3, 4, 5}, 1)};
  const Comparison ok = run_both(f, x, {true}, Device::cpu());
  CHECK(ok.forward == 0.0);
  REQUIRE(ok.grads.size() == 1);
  CHECK(ok.grads[0] == 0.0);
  const Comparison bad = run_both(f, x, {true}, Device::cpu(), 1.01);
  CHECK(bad.grads[0] > 1e-3);
  int calls = 0;
  const Fn g = [&](const std::vector<Tensor>& in) { return calls++ ? ops::mul_scalar(in[0], 1.001) : in[0].clone(); };
  CHECK(run_both(g, x, {false}, Device::cpu()).forward > 1e-4);
  // Both graphs are differentiated: the tape is empty afterwards and every gradient exists.
  CHECK(tape_size() == 0);
}

namespace {
void case_maxpool_nan() {
  // Two NaNs in one window: value NaN on both devices, and the gradient goes to the same NaN.
  Tensor x = rnd({1, 1, 5, 5}, 7);
  x.data<float>()[6] = std::nanf("");
  x.data<float>()[12] = std::nanf("");
  Pool2dParams p;
  p.kernel = 3;
  p.stride = 2;
  p.padding = 1;
  std::vector<std::vector<double>> out, grad;
  for (Device d : {Device::cpu(), dev_under_test()}) {
    Tensor xd = on_dev(x).set_requires_grad(true);
    Tensor y = ops::max_pool2d(xd, p);
    backward(ops::sum(y));  // NaN loss, but each window's gradient is 1 at its argmax
    out.push_back(y.to_vector_f64());
    grad.push_back(xd.grad().to_vector_f64());
  }
  REQUIRE(out[0].size() == out[1].size());
  for (size_t i = 0; i < out[0].size(); ++i) CHECK(std::isnan(out[0][i]) == std::isnan(out[1][i]));
  CHECK(grad[0] == grad[1]);
}
}  // namespace
ASAP_DEVICE_CASE("max pool with several NaNs in a window picks the same one as the CPU", case_maxpool_nan)
