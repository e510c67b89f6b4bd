// The no-sync multi-tensor building blocks and the 1-2 launch batch norm, CUDA vs the CPU backend
// vs naive double-precision references, on random non-zero inputs. Tolerances (stated per check):
// relative L2 1e-6 for elementwise updates (same float formula, same order), 1e-12 for the
// double-accumulated norms (only the summation order differs), 1e-5 forward / 1e-4 backward for
// batch norm (float32 inputs, different sum order; the formula itself is checked against central
// differences on the CPU in tests/test_batchnorm.cpp and against the naive reference here).
// Each case runs against Device::cuda() ("[cuda]", the emulator in the ASAP_CUDA_EMU build) and
// CPU-vs-CPU ("[harness]"), like tests/cuda/test_cuda_ops.cpp. Launch, copy and sync budgets are
// checked with the backend's exact counters where CUDA is built.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/kernel_table.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip.h"
#include "engine/optim/sgd.h"
#include "engine/storage.h"
#include "kernels/cuda/device.h"
#include "tests/cuda/test_cuda_util.h"
#include "tests/test_util.h"

#if defined(ASAP_WITH_CUDA)
#include "kernels/cuda/stats.h"
#endif

namespace {

using namespace asap;
using asap::test::rel_l2;
using asap::test::cuda_ready;
using asap::test::random_tensor;

Device g_dev = Device::cuda();
Tensor on_dev(const Tensor& t) { return g_dev.is_cuda() ? t.to(g_dev) : t.clone(); }
Tensor rnd(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return random_tensor(s, seed, DType::F32, lo, hi);
}

// Counts launches / syncs / h2d bytes on the device under test (zeros on the CPU).
struct Counts {
  uint64_t launches = 0, syncs = 0, h2d = 0;
};
#if defined(ASAP_WITH_CUDA)
struct Meter {
  cuda::stats::Snapshot s0 = cuda::stats::snapshot();
  Counts read() const {
    const cuda::stats::Snapshot d = cuda::stats::diff(cuda::stats::snapshot(), s0);
    return Counts{d.launches, d.host_syncs, d.bytes_h2d};
  }
};
#else
struct Meter {
  Counts read() const { return {}; }
};
#endif

#define ASAP_DEVICE_CASE(title, fn)                    \
  TEST_CASE("cuda: " title, "[cuda]") {                \
    ASAP_SKIP_WITHOUT_CUDA();                          \
    g_dev = Device::cuda();                            \
    fn();                                              \
  }                                                    \
  TEST_CASE("harness cpu-vs-cpu: " title, "[harness]") { \
    g_dev = Device::cpu();                             \
    fn();                                              \
  }

// ---------------------------------------------------------------- batch norm (1-2 launches)

struct BnOut {
  Tensor y, mean, invstd, rm, rv, dx, dg, db;
};

BnOut run_bn(Device dev, const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& dy, Counts* fwd,
             Counts* bwd) {
  auto mv = [&](const Tensor& t) { return !t.defined() ? t : dev.is_cuda() ? t.to(dev) : t.clone(); };
  const int64_t C = x.dim(1);
  BnOut o;
  Tensor xd = mv(x), gd = mv(gamma), bd = mv(beta), dyd = mv(dy);
  o.y = Tensor::empty(x.shape(), DType::F32, dev);
  o.mean = Tensor::empty({C}, DType::F32, dev);
  o.invstd = Tensor::empty({C}, DType::F32, dev);
  o.rm = mv(Tensor::full({C}, 0.25));
  o.rv = mv(Tensor::full({C}, 2.0));
  BatchNormParams p;
  Meter m1;
  ASAP_KERNEL(dev, bn_fwd_train)(xd, gd, bd, o.y, o.mean, o.invstd, o.rm, o.rv, p);
  if (fwd) *fwd = m1.read();
  o.dx = Tensor::empty(x.shape(), DType::F32, dev);
  if (gamma.defined()) {
    o.dg = Tensor::empty({C}, DType::F32, dev);
    o.db = Tensor::empty({C}, DType::F32, dev);
  }
  Meter m2;
  ASAP_KERNEL(dev, bn_bwd_train)(xd, dyd, gd, o.mean, o.invstd, o.dx, o.dg, o.db);
  if (bwd) *bwd = m2.read();
  return o;
}

// Naive double reference: two-pass mean/variance, then the textbook backward.
void bn_reference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& dy, std::vector<double>& y,
                  std::vector<double>& dx, std::vector<double>& dg) {
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.numel() / (N * C), M = N * HW;
  const std::vector<double> xv = x.to_vector_f64(), dyv = dy.to_vector_f64();
  const std::vector<double> gv = gamma.defined() ? gamma.to_vector_f64() : std::vector<double>(C, 1.0);
  const std::vector<double> bv = beta.defined() ? beta.to_vector_f64() : std::vector<double>(C, 0.0);
  y.assign(xv.size(), 0);
  dx.assign(xv.size(), 0);
  dg.assign(C, 0);
  for (int64_t c = 0; c < C; ++c) {
    auto at = [&](int64_t n, int64_t i) { return (n * C + c) * HW + i; };
    double mu = 0, var = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) mu += xv[at(n, i)];
    mu /= M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) var += (xv[at(n, i)] - mu) * (xv[at(n, i)] - mu);
    var /= M;
    const double is = 1.0 / std::sqrt(var + 1e-5);
    double sdy = 0, sdyxh = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double xh = (xv[at(n, i)] - mu) * is;
        y[at(n, i)] = gv[c] * xh + bv[c];
        sdy += dyv[at(n, i)];
        sdyxh += dyv[at(n, i)] * xh;
      }
    dg[c] = sdyxh;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double xh = (xv[at(n, i)] - mu) * is;
        dx[at(n, i)] = gv[c] * is * (dyv[at(n, i)] - sdy / M - xh * sdyxh / M);
      }
  }
}

double rel_l2_vec(const Tensor& got, const std::vector<double>& ref) {
  const std::vector<double> a = got.to_vector_f64();
  REQUIRE(a.size() == ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

void case_bn() {
  // {2,4,8,8}: M = 128, one block per channel (1 launch each way); {4,3,32,33}: M = 4224, the
  // (c, slice) split (2 launches each way); {3,70,1,1} and {600,2}: [N,C] inputs on both paths.
  for (Shape s : {Shape{2, 4, 8, 8}, Shape{4, 3, 32, 33}, Shape{3, 70, 1, 1}, Shape{3000, 2}}) {
    for (bool affine : {true, false}) {
      INFO("shape " << s.str() << " affine " << affine);
      const int64_t C = s[1];
      Tensor x = rnd(s, 10 + C, 2.0, 4.0);  // mean ~3: the shifted sums must not cancel
      Tensor dy = rnd(s, 20 + C);
      Tensor gamma = affine ? rnd({C}, 30, 0.5, 1.5) : Tensor(), beta = affine ? rnd({C}, 31) : Tensor();
      const BnOut ref = run_bn(Device::cpu(), x, gamma, beta, dy, nullptr, nullptr);
      Counts fc, bc;
      const BnOut got = run_bn(g_dev, x, gamma, beta, dy, &fc, &bc);
      CHECK(rel_l2(got.y, ref.y) <= 1e-5);
      CHECK(rel_l2(got.mean, ref.mean) <= 1e-6);
      CHECK(rel_l2(got.invstd, ref.invstd) <= 1e-5);
      CHECK(rel_l2(got.rm, ref.rm) <= 1e-6);
      CHECK(rel_l2(got.rv, ref.rv) <= 1e-5);
      CHECK(rel_l2(got.dx, ref.dx) <= 1e-4);
      if (affine) {
        CHECK(rel_l2(got.dg, ref.dg) <= 1e-4);
        CHECK(rel_l2(got.db, ref.db) <= 1e-5);
      }
      std::vector<double> yr, dxr, dgr;
      bn_reference(x, gamma, beta, dy, yr, dxr, dgr);
      CHECK(rel_l2_vec(got.y, yr) <= 1e-5);
      CHECK(rel_l2_vec(got.dx, dxr) <= 1e-4);
      if (affine) CHECK(rel_l2_vec(got.dg, dgr) <= 1e-4);
      if (g_dev.is_cuda()) {
        const int64_t M = s.numel() / C;
        const uint64_t want = M <= 2048 ? 1 : 2;  // kernels/cuda/batchnorm.cu slices_for
        INFO("launches: forward " << fc.launches << ", backward " << bc.launches);
#if defined(ASAP_WITH_CUDA)
        CHECK(fc.launches <= want);
        CHECK(bc.launches <= want);
        CHECK(fc.syncs == 0);
        CHECK(bc.syncs == 0);
#endif
        (void)want;
      }
    }
  }
  // Rerun: bit-identical (deterministic partition and order).
  Tensor x = rnd({4, 3, 32, 33}, 77, -1.0, 5.0), dy = rnd({4, 3, 32, 33}, 78);
  const BnOut a = run_bn(g_dev, x, Tensor(), Tensor(), dy, nullptr, nullptr);
  const BnOut b = run_bn(g_dev, x, Tensor(), Tensor(), dy, nullptr, nullptr);
  CHECK(a.y.to_vector_f64() == b.y.to_vector_f64());
  CHECK(a.dx.to_vector_f64() == b.dx.to_vector_f64());
}
ASAP_DEVICE_CASE("batch norm forward/backward in at most 2 launches each match the CPU and a naive reference", case_bn)

// ---------------------------------------------------------------- multi-tensor norm and clip

// Sizes straddle the 16,384-element chunk and include tiny tensors (most DARTS grads).
const std::vector<int64_t> kSizes{1, 3, 4, 7, 100, 4097, 16384, 16385, 40000};

std::vector<Tensor> make_params(uint64_t seed, double grad_scale) {
  std::vector<Tensor> ps;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    Tensor p = on_dev(rnd({kSizes[i]}, seed + i));
    p.set_requires_grad(true);
    accumulate_grad(p.impl(), on_dev(ops::mul_scalar(rnd({kSizes[i]}, seed + 100 + i), grad_scale)));
    ps.push_back(p);
  }
  return ps;
}

double naive_norm(const std::vector<Tensor>& ps) {
  double s = 0;
  for (const Tensor& p : ps)
    for (double v : p.grad().to_vector_f64()) s += v * v;
  return std::sqrt(s);
}

void case_norm() {
  std::vector<Tensor> ps = make_params(1000, 1.0);
  Tensor none = on_dev(rnd({5}, 3));  // no grad: ignored
  none.set_requires_grad(true);
  ps.push_back(none);
  const double ref = naive_norm({ps.begin(), ps.end() - 1});
  Tensor n0 = grad_norm_device(ps);  // first call: builds and uploads the chunk table
  Meter m;
  Tensor n = grad_norm_device(ps);
  const Counts c = m.read();
  REQUIRE(n.dtype() == DType::F64);
  REQUIRE(n.numel() == 1);
  REQUIRE(n.device() == g_dev);
  CHECK(std::fabs(n.item() - ref) <= 1e-12 * ref);  // double accumulation; order differs
  CHECK(n.item() == n0.item());                        // deterministic
  CHECK(grad_norm(ps) == n.item());
  if (g_dev.is_cuda()) {
    INFO("launches " << c.launches << ", syncs " << c.syncs << ", h2d bytes " << c.h2d);
#if defined(ASAP_WITH_CUDA)
    CHECK(c.launches <= 2);
    CHECK(c.syncs == 0);
    CHECK(c.h2d == 0);  // cached chunk table: same grad addresses
#endif
  }
  // Direct kernel entry, CUDA vs CPU on the same float data.
  std::vector<Tensor> xs_c, xs_d;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    xs_c.push_back(rnd({kSizes[i]}, 2000 + i, -3.0, 2.0));
    xs_d.push_back(on_dev(xs_c.back()));
  }
  Tensor oc = Tensor::empty(Shape{}, DType::F64), od = Tensor::empty(Shape{}, DType::F64, g_dev);
  kernels(DeviceType::CPU).multi_l2_norm(xs_c, oc);
  ASAP_KERNEL(g_dev, multi_l2_norm)(xs_d, od);
  CHECK(std::fabs(od.item() - oc.item()) <= 1e-12 * oc.item());
  // Empty list: 0.
  ASAP_KERNEL(g_dev, multi_l2_norm)(std::vector<Tensor>{}, od);
  CHECK(od.item() == 0.0);
}
ASAP_DEVICE_CASE("grad_norm_device: L2 norm of every grad in <= 2 launches, no sync, cached table", case_norm)

void case_clip() {
  for (double scale : {1.0, 1e-3}) {  // above / below the limit
    INFO("grad scale " << scale);
    std::vector<Tensor> ps = make_params(3000, scale);
    std::vector<Tensor> before;
    for (auto& p : ps) before.push_back(g_dev.is_cuda() ? p.grad().to(Device::cpu()) : p.grad().clone());
    const double ref = naive_norm(ps);
    const double max_norm = 5.0;
    clip_grad_norm_device(make_params(3000, scale), max_norm);  // warm a table (other addresses)
    Meter m;
    Tensor n = clip_grad_norm_device(ps, max_norm);
    const Counts c = m.read();
    CHECK(std::fabs(n.item() - ref) <= 1e-12 * ref);
    const double coef = max_norm / (ref + 1e-6);
    for (size_t i = 0; i < ps.size(); ++i) {
      Tensor want = coef < 1.0 ? ops::mul_scalar(before[i], coef) : before[i];
      CHECK(rel_l2(ps[i].grad(), want) <= 1e-6);
    }
    if (g_dev.is_cuda()) {
      INFO("launches " << c.launches << ", syncs " << c.syncs);
#if defined(ASAP_WITH_CUDA)
      CHECK(c.launches <= 3);
      CHECK(c.syncs == 0);
#endif
    }
    // The host version on top of it: same norm, same scaling rule.
    std::vector<Tensor> qs = make_params(3000, scale);
    CHECK(clip_grad_norm(qs, max_norm) == n.item());
    for (size_t i = 0; i < qs.size(); ++i) CHECK(rel_l2(qs[i].grad(), ps[i].grad()) <= 1e-7);
  }
  // A non-finite norm leaves every grad untouched.
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    std::vector<Tensor> ps = make_params(4000, 10.0);
    Tensor g0 = ps[3].grad().to(Device::cpu()).clone();
    std::vector<float> v(g0.numel());
    for (int64_t i = 0; i < g0.numel(); ++i) v[i] = static_cast<float>(g0.to_vector_f64()[i]);
    v[2] = static_cast<float>(bad);
    ps[3].zero_grad();
    accumulate_grad(ps[3].impl(), on_dev(Tensor::from_vector(v, {g0.numel()})));
    Tensor g5 = ps[5].grad().to(Device::cpu()).clone();
    Tensor n = clip_grad_norm_device(ps, 1.0);
    CHECK_FALSE(std::isfinite(n.item()));
    CHECK(ps[5].grad().to_vector_f64() == g5.to_vector_f64());
    CHECK_THROWS_AS(clip_grad_norm(ps, 1.0, true), NumericError);
  }
}
ASAP_DEVICE_CASE("clip_grad_norm_device scales on the device in one more launch; non-finite norms leave grads untouched", case_clip)

// ---------------------------------------------------------------- optimizers: device scalars, gate

std::vector<Tensor> clone_params(const std::vector<Tensor>& ps, Device dev) {
  std::vector<Tensor> r;
  for (const Tensor& p : ps) {
    Tensor q = dev.is_cuda() ? p.to(dev) : p.clone();
    q.set_requires_grad(true);
    r.push_back(q);
  }
  return r;
}
void set_grads(std::vector<Tensor>& ps, uint64_t seed) {
  for (size_t i = 0; i < ps.size(); ++i) {
    ps[i].zero_grad();
    Tensor g = rnd(ps[i].shape(), seed + i);
    accumulate_grad(ps[i].impl(), ps[i].device().is_cuda() ? g.to(ps[i].device()) : g);
  }
}

template <typename Make>
void optimizer_case(const char* name, Make make) {
  INFO(name);
  std::vector<Tensor> init;
  for (size_t i = 0; i < kSizes.size(); ++i) init.push_back(rnd({kSizes[i]}, 5000 + i));
  // Reference: the CPU optimizer with host scalars, skipping step 3 (a non-finite norm).
  std::vector<Tensor> pr = clone_params(init, Device::cpu()), pd = clone_params(init, g_dev);
  auto ref = make(pr);
  auto dev = make(pd);
  dev->use_device_scalars();
  REQUIRE(dev->device_scalars().device() == g_dev);
  const double lrs[] = {0.1, 0.05, 0.02, 0.01, 0.005};
  Counts last;
  for (int s = 0; s < 5; ++s) {
    set_grads(pr, 100 * s);
    set_grads(pd, 100 * s);
    const bool skip = s == 2;
    ref->set_lr(lrs[s]);
    if (!skip) ref->step();
    Tensor gate = Tensor::scalar(skip ? std::nan("") : 1.5, DType::F32);
    dev->set_gate(g_dev.is_cuda() ? gate.to(g_dev) : gate);
    Meter m;
    dev->set_lr(lrs[s]);
    dev->step();  // always called: the gate decides on the device
    last = m.read();
  }
  for (size_t i = 0; i < pr.size(); ++i) {
    INFO("param " << i);
    CHECK(rel_l2(pd[i], pr[i]) <= 1e-6);
  }
  const std::vector<double> sc = dev->device_scalars().to_vector_f64();
  CHECK(sc[0] == lrs[4]);
  CHECK(sc[1] == 4.0);               // the gated step did not advance the device count
  CHECK(dev->step_count() == 5);     // host count: calls to step(), as before
  if (g_dev.is_cuda()) {
    INFO("last step: launches " << last.launches << ", syncs " << last.syncs << ", h2d " << last.h2d);
#if defined(ASAP_WITH_CUDA)
    CHECK(last.launches <= 3);  // set_lr fill + step advance + one update launch
    CHECK(last.syncs == 0);
    CHECK(last.h2d == 0);       // chunk table cached, scalars written by kernels
#endif
  }
}

void case_optim() {
  optimizer_case("sgd", [](std::vector<Tensor>& ps) { return std::make_unique<SGD>(ps, 0.1, 0.9, 3e-4, false); });
  optimizer_case("sgd nesterov", [](std::vector<Tensor>& ps) { return std::make_unique<SGD>(ps, 0.1, 0.9, 0.0, true); });
  optimizer_case("adam", [](std::vector<Tensor>& ps) { return std::make_unique<Adam>(ps, 3e-3, 0.5, 0.999, 1e-8, 1e-3); });
  // Host-scalar path with a gate only, and the kernel entries directly: CUDA vs CPU.
  std::vector<Tensor> init;
  for (size_t i = 0; i < kSizes.size(); ++i) init.push_back(rnd({kSizes[i]}, 7000 + i));
  std::vector<Tensor> pr = clone_params(init, Device::cpu()), pd = clone_params(init, g_dev);
  Adam ref(pr, 1e-2), dev(pd, 1e-2);
  for (int s = 0; s < 3; ++s) {
    set_grads(pr, 900 + s);
    set_grads(pd, 900 + s);
    ref.step();
    dev.set_gate(s == 1 ? Tensor() : on_dev(Tensor::scalar(0.5, DType::F64)));
    dev.step();
  }
  for (size_t i = 0; i < pr.size(); ++i) CHECK(rel_l2(pd[i], pr[i]) <= 1e-6);
  dev.set_gate(on_dev(Tensor::scalar(std::numeric_limits<double>::infinity(), DType::F64)));
  Tensor before = pd[4].to(Device::cpu()).clone();
  set_grads(pd, 999);
  dev.step();
  CHECK(pd[4].to_vector_f64() == before.to_vector_f64());
}
ASAP_DEVICE_CASE("optimizers: device lr/step scalars, gate, cached chunk tables (no copies per step)", case_optim)

// ---------------------------------------------------------------- gradient accumulation

void case_accumulate() {
  // accumulate_n has the bits of successive axpy(1, x_k, y) on the same device (exact: same adds
  // in the same order); 20 terms = 2 launches of 16 + 4.
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4096}, int64_t{5003}}) {
    INFO("n " << n);
    std::vector<Tensor> xs;
    for (int k = 0; k < 20; ++k) xs.push_back(on_dev(rnd({n}, 8000 + k, -2.0, 2.0)));
    Tensor y0 = on_dev(rnd({n}, 8100)), y1 = on_dev(rnd({n}, 8100));
    for (const Tensor& x : xs) ASAP_KERNEL(g_dev, axpy)(1.0, x, y0);
    Meter m;
    ASAP_KERNEL(g_dev, accumulate_n)(y1, xs);
    const Counts c = m.read();
    CHECK(y1.to_vector_f64() == y0.to_vector_f64());
#if defined(ASAP_WITH_CUDA)
    if (g_dev.is_cuda()) CHECK(c.launches == 2);
#endif
    (void)c;
    // CUDA vs the CPU backend: float adds in the same order, exact.
    std::vector<Tensor> xc;
    for (int k = 0; k < 20; ++k) xc.push_back(rnd({n}, 8000 + k, -2.0, 2.0));
    Tensor yc = rnd({n}, 8100);
    kernels(DeviceType::CPU).accumulate_n(yc, xc);
    CHECK(rel_l2(y1, yc) == 0.0);
  }
  // Through autograd: x feeds 20 consumers; the gradient equals the CPU's, and the accumulation
  // takes at most 2 launches (16 deferred terms, then the last 3).
  Tensor xc = rnd({3, 5}, 8200), xd = on_dev(xc);
  xc.set_requires_grad(true);
  xd.set_requires_grad(true);
  auto f = [](const Tensor& x) {
    Tensor acc;
    for (int k = 0; k < 20; ++k) {
      Tensor y = ops::mul_scalar(x, 0.5 + 0.1 * k);
      acc = acc.defined() ? ops::add(acc, y) : y;
    }
    return ops::sum(acc);
  };
  backward(f(xc));
  backward(f(xd));
  CHECK(rel_l2(xd.grad(), xc.grad()) <= 1e-6);
  double want = 0;
  for (int k = 0; k < 20; ++k) want += 0.5 + 0.1 * k;
  for (double v : xd.grad().to_vector_f64()) CHECK(std::fabs(v - want) <= 1e-5 * want);
}
ASAP_DEVICE_CASE("accumulate_n: deferred gradient accumulation, the bits of successive axpys", case_accumulate)

}  // namespace

TEST_CASE("deferred gradient accumulation matches central differences", "[autograd]") {
  // float64 on the CPU: x feeds 23 consumers (more than one flush of 16), the 0-d s feeds 8.
  auto f = [](const std::vector<Tensor>& in) {
    Tensor acc;
    for (int k = 0; k < 23; ++k) {
      Tensor t = k % 3 == 0 ? ops::scale(in[0], in[1]) : ops::mul_scalar(ops::relu(in[0]), 0.3 + k);
      acc = acc.defined() ? ops::add(acc, t) : t;
    }
    return acc;
  };
  asap::test::check_gradients(f, {random_tensor({2, 3}, 1, DType::F64), random_tensor(Shape{}, 2, DType::F64)});
}
