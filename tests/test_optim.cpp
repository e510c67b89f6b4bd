// Optimizers, LR schedules and gradient clipping against independent double-precision formulas.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/io/safetensors.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/sgd.h"
#include "engine/tensor.h"
#include "temp_dir.h"

using namespace asap;

namespace {

Tensor make_param(const std::vector<double>& v, DType dt) {
  Tensor t = Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())});
  if (dt != DType::F64) t = t.to(dt);
  t.set_requires_grad(true);
  return t;
}

void set_grad(Tensor& p, const std::vector<double>& g) {
  p.zero_grad();
  Tensor gt = Tensor::from_vector(g, p.shape());
  if (p.dtype() != DType::F64) gt = gt.to(p.dtype());
  accumulate_grad(p.impl(), gt);
}

// Gradients for step s (0-based) of element i: varied so momentum/Adam state matters.
double grad_at(int s, size_t i) { return 0.5 - 0.3 * s + 0.25 * static_cast<double>(i) * (s % 2 ? -1 : 1); }

const std::vector<double> kInit = {1.0, -2.0, 0.5};

// Independent scalar reference for torch.optim.SGD (dampening 0).
std::vector<double> sgd_reference(int steps, double lr, double mom, double wd, bool nesterov) {
  std::vector<double> p = kInit, buf(p.size(), 0.0);
  for (int s = 0; s < steps; ++s)
    for (size_t i = 0; i < p.size(); ++i) {
      double d = grad_at(s, i) + wd * p[i];
      buf[i] = s == 0 ? d : mom * buf[i] + d;
      p[i] -= lr * (nesterov ? d + mom * buf[i] : buf[i]);
    }
  return p;
}

// Independent scalar reference for torch.optim.Adam with L2 weight decay (textbook form).
std::vector<double> adam_reference(int steps, double lr, double b1, double b2, double eps, double wd) {
  std::vector<double> p = kInit, m(p.size(), 0.0), v(p.size(), 0.0);
  for (int s = 0; s < steps; ++s)
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad_at(s, i) + wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double mhat = m[i] / (1 - std::pow(b1, s + 1)), vhat = v[i] / (1 - std::pow(b2, s + 1));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  return p;
}

std::vector<double> grads_for(int s) { return {grad_at(s, 0), grad_at(s, 1), grad_at(s, 2)}; }

}  // namespace

TEST_CASE("SGD with momentum and weight decay matches PyTorch over 3 steps", "[optim]") {
  // Hand-computed, element 0 (p = 1, grad 0.5, 0.2, -0.1; lr 0.1, momentum 0.9, wd 0.01):
  // step 1: d = 0.51, buf = 0.51, p = 0.949
  // step 2: d = 0.2 + 0.00949 = 0.20949, buf = 0.459 + 0.20949 = 0.66849, p = 0.882151
  // step 3: d = -0.1 + 0.00882151 = -0.09117849, buf = 0.601641 - 0.09117849 = 0.51046251,
  //         p = 0.882151 - 0.051046251 = 0.831104749
  const double hand[] = {0.949, 0.882151, 0.831104749};
  for (DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-12 : 1e-6;
    Tensor p = make_param(kInit, dt);
    Tensor idle = make_param({3.0, 4.0}, dt);  // never gets a grad: must stay untouched
    SGD opt({p, idle}, 0.1, 0.9, 0.01, false, {"w", "idle"});
    for (int s = 0; s < 3; ++s) {
      set_grad(p, grads_for(s));
      opt.step();
      CHECK(std::fabs(p.to_vector_f64()[0] - hand[s]) < tol);
      auto ref = sgd_reference(s + 1, 0.1, 0.9, 0.01, false);
      auto got = p.to_vector_f64();
      for (size_t i = 0; i < ref.size(); ++i) CHECK(std::fabs(got[i] - ref[i]) < tol);
    }
    CHECK(idle.to_vector_f64() == std::vector<double>{3.0, 4.0});
    CHECK(opt.num_params_with_state() == 1);
    CHECK(opt.step_count() == 3);
  }
}

TEST_CASE("SGD Nesterov and plain SGD match the reference", "[optim]") {
  Tensor p = make_param(kInit, DType::F64);
  SGD nes({p}, 0.05, 0.8, 0.001, true);
  Tensor q = make_param(kInit, DType::F64);
  SGD plain({q}, 0.05);
  for (int s = 0; s < 3; ++s) {
    set_grad(p, grads_for(s));
    set_grad(q, grads_for(s));
    nes.step();
    plain.step();
  }
  auto rn = sgd_reference(3, 0.05, 0.8, 0.001, true), rp = sgd_reference(3, 0.05, 0.0, 0.0, false);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(std::fabs(p.to_vector_f64()[i] - rn[i]) < 1e-12);
    CHECK(std::fabs(q.to_vector_f64()[i] - rp[i]) < 1e-12);
  }
  CHECK(plain.state_bytes() == 0);  // no momentum, no buffers
}

TEST_CASE("Adam with L2 weight decay matches PyTorch over 3 steps", "[optim]") {
  // Hand-computed step 1, element 0 (p = 1, grad 0.5, lr 0.1, wd 0.01, eps 1e-8): d = 0.51,
  // mhat = 0.51, sqrt(vhat) = 0.51, p = 1 - 0.1 * 0.51 / (0.51 + 1e-8) = 0.9 + 1.96078427e-9.
  for (DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-12 : 1e-6;
    Tensor p = make_param(kInit, dt);
    Tensor idle = make_param({7.0}, dt);
    Adam opt({p, idle}, 0.1, 0.5, 0.999, 1e-8, 0.01, {"alpha", "idle"});
    for (int s = 0; s < 3; ++s) {
      set_grad(p, grads_for(s));
      opt.step();
      if (s == 0) CHECK(std::fabs(p.to_vector_f64()[0] - (0.9 + 1.96078427e-9)) < (dt == DType::F64 ? 1e-15 : 1e-7));
      auto ref = adam_reference(s + 1, 0.1, 0.5, 0.999, 1e-8, 0.01);
      auto got = p.to_vector_f64();
      for (size_t i = 0; i < ref.size(); ++i) CHECK(std::fabs(got[i] - ref[i]) < tol);
    }
    CHECK(idle.to_vector_f64() == std::vector<double>{7.0});
    auto st = opt.export_state();
    CHECK(st.count("adam.m.alpha") == 1);
    CHECK(st.count("adam.v.alpha") == 1);
    CHECK(st.count("adam.m.idle") == 0);
    CHECK(st.at("adam.step.alpha").item() == 3.0);
    CHECK(st.at("adam.step").item() == 3.0);
  }
}

TEST_CASE("Adam bias correction uses each param's own step count", "[optim]") {
  // b joins at step 2: its first update must be a step-1 update (|delta| = lr when wd = 0).
  Tensor a = make_param({1.0}, DType::F64), b = make_param({1.0}, DType::F64);
  Adam opt({a, b}, 0.01, 0.9, 0.999, 0.0, 0.0);
  set_grad(a, {1.0});
  opt.step();
  set_grad(a, {1.0});
  set_grad(b, {3.0});
  opt.step();
  CHECK(std::fabs(b.item() - 0.99) < 1e-14);
  CHECK(std::fabs(a.item() - 0.98) < 1e-14);  // constant grad: each step moves by lr
}

TEST_CASE("cosine and constant LR schedules", "[optim]") {
  CosineAnnealingLR cos(0.025, 50, 0.001);
  CHECK(cos.lr_at(0) == Approx(0.025).epsilon(1e-15));
  CHECK(cos.lr_at(25) == Approx(0.013).epsilon(1e-12));
  CHECK(cos.lr_at(50) == Approx(0.001).epsilon(1e-12));
  // 0.001 + 0.024 * (1 + cos(pi / 5)) / 2, cos(36 deg) = 0.80901699437494742
  CHECK(cos.lr_at(10) == Approx(0.001 + 0.024 * (1 + 0.80901699437494742) / 2).epsilon(1e-12));
  CHECK(cos.lr_at(10) == Approx(0.022708203932499370).epsilon(1e-12));
  CHECK(ConstantLR(0.3).lr_at(17) == 0.3);
  Tensor p = make_param({1.0}, DType::F64);
  SGD opt({p}, 1.0);
  cos.apply(opt, 25);
  CHECK(opt.lr() == Approx(0.013));
  CHECK_THROWS_AS(CosineAnnealingLR(0.1, 0), Error);
}

TEST_CASE("clip_grad_norm scales by max_norm / (total + 1e-6) above the limit", "[optim]") {
  Tensor a = make_param({0.0, 0.0}, DType::F64), b = make_param({0.0}, DType::F32);
  Tensor none = make_param({1.0}, DType::F64);  // no grad: ignored
  std::vector<Tensor> ps{a, b, none};
  set_grad(a, {3.0, 4.0});
  set_grad(b, {12.0});  // mixed dtypes: total = sqrt(9 + 16 + 144) = 13
  CHECK(grad_norm(ps) == Approx(13.0).epsilon(1e-12));
  CHECK(clip_grad_norm(ps, 20.0) == Approx(13.0).epsilon(1e-12));
  CHECK(a.grad().to_vector_f64() == std::vector<double>{3.0, 4.0});  // under the limit: unchanged
  const double total = clip_grad_norm(ps, 5.0);
  CHECK(total == Approx(13.0).epsilon(1e-12));
  const double coef = 5.0 / (13.0 + 1e-6);
  auto ga = a.grad().to_vector_f64();
  CHECK(ga[0] == Approx(3.0 * coef).epsilon(1e-14));
  CHECK(ga[1] == Approx(4.0 * coef).epsilon(1e-14));
  CHECK(b.grad().to_vector_f64()[0] == Approx(12.0 * coef).epsilon(1e-6));
  CHECK(grad_norm(ps) == Approx(5.0).epsilon(1e-6));
  CHECK_FALSE(none.grad().defined());
  CHECK(clip_grad_norm({none}, 1.0) == 0.0);
  set_grad(a, {std::nan(""), 1.0});
  CHECK_THROWS_AS(clip_grad_norm(ps, 5.0, true), NumericError);
}

TEST_CASE("optimizer state export/import through safetensors resumes identically", "[optim]") {
  const test::TempDir tmp("asap_optim");  // removed even when a check fails
  const std::string dir = tmp.path();
  for (int kind = 0; kind < 2; ++kind) {
    auto make = [&](Tensor p, Tensor q) -> std::unique_ptr<Optimizer> {
      if (kind == 0) return std::make_unique<SGD>(std::vector<Tensor>{p, q}, 0.1, 0.9, 3e-4, false,
                                                  std::vector<std::string>{"w1", "w2"});
      return std::make_unique<Adam>(std::vector<Tensor>{p, q}, 0.01, 0.5, 0.999, 1e-8, 1e-3,
                                    std::vector<std::string>{"w1", "w2"});
    };
    Tensor p1 = make_param(kInit, DType::F32), q1 = make_param({0.1, 0.2}, DType::F32);
    auto a = make(p1, q1);
    for (int s = 0; s < 2; ++s) {
      set_grad(p1, grads_for(s));
      set_grad(q1, {0.3 * s - 0.1, 0.05});
      a->step();
    }
    const std::string file = dir + "/state" + std::to_string(kind) + ".safetensors";
    save_safetensors(file, a->export_state(), {{"kind", a->prefix()}});
    // A fresh optimizer over copies of the trained params resumes from the file.
    Tensor p2 = p1.clone().set_requires_grad(true), q2 = q1.clone().set_requires_grad(true);
    auto b = make(p2, q2);
    b->import_state(load_safetensors(file).as_map());
    CHECK(b->step_count() == 2);
    CHECK(b->state_bytes() == a->state_bytes());
    for (int s = 2; s < 4; ++s) {
      set_grad(p1, grads_for(s));
      set_grad(p2, grads_for(s));
      set_grad(q1, {-0.2, 0.4});
      set_grad(q2, {-0.2, 0.4});
      a->step();
      b->step();
      CHECK(p1.to_vector() == p2.to_vector());  // bit-identical continued steps
      CHECK(q1.to_vector() == q2.to_vector());
    }
    // Unknown parameter names in our prefix are an error; other prefixes are ignored.
    std::map<std::string, Tensor> bad{{a->prefix() + ".step.ghost", Tensor::scalar(1.0, DType::F64)}};
    CHECK_THROWS_AS(b->import_state(bad), Error);
    b->import_state({{"other.m.w1", Tensor::zeros({3})}});
    CHECK(b->state_bytes() == 0);
  }
}

TEST_CASE("release_state frees a pruned parameter and its state", "[optim]") {
  Tensor keep = make_param({1.0, 2.0}, DType::F32), pruned = make_param({1.0, 2.0, 3.0, 4.0}, DType::F32);
  std::weak_ptr<TensorImpl> pruned_w = pruned.impl_ptr();
  Adam opt({keep, pruned}, 0.01, 0.9, 0.999, 1e-8, 0.0, {"keep", "pruned"});
  set_grad(keep, {1.0, 1.0});
  set_grad(pruned, {1.0, 1.0, 1.0, 1.0});
  opt.step();
  CHECK(opt.state_bytes() == 2 * (2 + 4) * sizeof(float));
  std::weak_ptr<TensorImpl> m_w = opt.export_state().at("adam.m.pruned").impl_ptr();
  CHECK_FALSE(m_w.expired());
  CHECK(opt.release_state(pruned));
  CHECK_FALSE(opt.release_state(pruned));  // already gone
  CHECK(opt.params().size() == 1);
  CHECK(opt.names() == std::vector<std::string>{"keep"});
  CHECK(opt.state_bytes() == 2 * 2 * sizeof(float));
  CHECK(m_w.expired());  // the optimizer held the only reference to the moment buffer
  pruned = Tensor();
  CHECK(pruned_w.expired());  // and keeps no reference to the param itself
  CHECK(opt.export_state().count("adam.m.pruned") == 0);
  set_grad(keep, {1.0, 1.0});
  opt.step();  // still works on the remaining params
  CHECK(opt.export_state().at("adam.step.keep").item() == 2.0);
}

TEST_CASE("optimizer rejects bad parameter lists", "[optim]") {
  Tensor p = make_param({1.0}, DType::F64);
  CHECK_THROWS_AS(SGD({p, p}, 0.1), Error);
  CHECK_THROWS_AS(SGD({p}, 0.1, 0.9, 0.0, false, {"a", "b"}), Error);
  Tensor q = make_param({1.0}, DType::F64);
  CHECK_THROWS_AS(Adam({p, q}, 0.1, 0.9, 0.999, 1e-8, 0.0, {"x", "x"}), Error);
  CHECK_THROWS_AS(Adam({p}, 0.1, 1.0), Error);
  // A grad whose shape disagrees with its param (set directly: accumulate_grad may check too).
  p.impl()->grad = Tensor::from_vector(std::vector<double>{1.0, 2.0}, Shape{2}).impl_ptr();
  SGD opt({p}, 0.1);
  CHECK_THROWS_AS(opt.step(), ShapeError);
}

TEST_CASE("fused optimizer kernels cover multi-chunk groups on the parallel path", "[optim]") {
  // 70001 + 5 + 40000 elements: several 16K chunks, a tail chunk, and the OpenMP branch.
  const std::vector<int64_t> sizes{70001, 5, 40000};
  auto init = [](size_t t, int64_t i) { return std::sin(0.001 * i + t) * 0.5; };
  auto grad = [](size_t t, int64_t i, int s) { return std::cos(0.003 * i - t + s) * 0.2; };
  for (int kind = 0; kind < 2; ++kind) {
    std::vector<Tensor> ps;
    std::vector<std::vector<double>> ref, m, v;
    for (size_t t = 0; t < sizes.size(); ++t) {
      std::vector<double> x(static_cast<size_t>(sizes[t]));
      for (int64_t i = 0; i < sizes[t]; ++i) x[i] = init(t, i);
      ps.push_back(make_param(x, DType::F32));
      ref.push_back(x);
      m.emplace_back(x.size(), 0.0);
      v.emplace_back(x.size(), 0.0);
    }
    std::unique_ptr<Optimizer> opt;
    if (kind == 0) opt = std::make_unique<SGD>(ps, 0.05, 0.9, 3e-4);
    else opt = std::make_unique<Adam>(ps, 3e-3, 0.5, 0.999, 1e-8, 1e-3);
    for (int s = 0; s < 2; ++s) {
      for (size_t t = 0; t < sizes.size(); ++t) {
        std::vector<double> g(static_cast<size_t>(sizes[t]));
        for (int64_t i = 0; i < sizes[t]; ++i) g[i] = grad(t, i, s);
        set_grad(ps[t], g);
        for (size_t i = 0; i < g.size(); ++i) {
          double& p = ref[t][i];
          if (kind == 0) {
            const double d = g[i] + 3e-4 * p;
            m[t][i] = 0.9 * m[t][i] + d;
            p -= 0.05 * m[t][i];
          } else {
            const double d = g[i] + 1e-3 * p;
            m[t][i] = 0.5 * m[t][i] + 0.5 * d;
            v[t][i] = 0.999 * v[t][i] + 0.001 * d * d;
            p -= 3e-3 * (m[t][i] / (1 - std::pow(0.5, s + 1))) /
                 (std::sqrt(v[t][i] / (1 - std::pow(0.999, s + 1))) + 1e-8);
          }
        }
      }
      opt->step();
    }
    for (size_t t = 0; t < sizes.size(); ++t) {
      INFO("kind " << kind << " tensor " << t);
      auto got = ps[t].to_vector_f64();
      double err = 0;
      for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(got[i] - ref[t][i]));
      CHECK(err < 2e-6);
    }
  }
}
