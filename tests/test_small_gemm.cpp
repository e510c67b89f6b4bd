// gemm_local (kernels/cpu/conv_common.h) against a naive float64 GEMM, on the shapes around its
// switch between small_gemm.h's register-blocked kernels and OpenBLAS: every transposition the
// conv kernels use (and the one they do not), rows and columns that leave tails after the 4-row and
// 2-vector blocks, padded leading dimensions, alpha != 1, beta 0 / 1 / 0.25. With beta == 0, C starts
// as NaN: the kernels must not read it. The ISA variants run the same code through the conv cases
// of test_cpu_isa.cpp. Tolerance: per element, 4 k eps sum_p |a_ip b_pj| (the forward error bound of
// a k-term dot product, with a margin) plus the same for the beta term.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/conv_common.h"

namespace {

template <typename T>
void check_gemm(bool ta, bool tb, int m, int n, int k, double alpha, double beta, uint32_t seed) {
  // Leading dimensions with 3 unused columns, so a kernel that assumed packed rows fails.
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int lda = ac + 3, ldb = bc + 3, ldc = n + 3;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.1, 1.0);
  std::bernoulli_distribution neg(0.5);
  auto draw = [&] { return neg(gen) ? -u(gen) : u(gen); };  // never zero
  std::vector<T> a(size_t(ar) * lda), b(size_t(br) * ldb), c(size_t(m) * ldc);
  for (auto& v : a) v = T(draw());
  for (auto& v : b) v = T(draw());
  for (auto& v : c) v = beta == 0.0 ? std::numeric_limits<T>::quiet_NaN() : T(draw());
  const std::vector<T> c0 = c;

  asap::cpu::gemm_local<T>(ta, tb, m, n, k, T(alpha), a.data(), lda, b.data(), ldb, T(beta), c.data(), ldc);

  const double eps = std::numeric_limits<T>::epsilon();
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int p = 0; p < k; ++p) {
        const double av = ta ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
        const double bv = tb ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
        ref += av * bv;
        mag += std::fabs(av * bv);
      }
      ref *= alpha;
      mag *= std::fabs(alpha);
      if (beta != 0.0) {
        ref += beta * double(c0[size_t(i) * ldc + j]);
        mag += std::fabs(beta * double(c0[size_t(i) * ldc + j]));
      }
      const double got = c[size_t(i) * ldc + j];
      const double tol = 4.0 * (k + 2) * eps * mag;
      if (!(std::fabs(got - ref) <= tol) && bad++ < 3)
        FAIL_CHECK("ta " << ta << " tb " << tb << " m " << m << " n " << n << " k " << k << " alpha " << alpha
                         << " beta " << beta << ": C[" << i << "," << j << "] = " << got << ", reference " << ref
                         << " (tolerance " << tol << ")");
    }
  // The padding columns of C are never written.
  for (int i = 0; i < m; ++i)
    for (int j = n; j < ldc; ++j) {
      const T before = c0[size_t(i) * ldc + j], after = c[size_t(i) * ldc + j];
      if (!(before == after || (std::isnan(double(before)) && std::isnan(double(after)))))
        FAIL_CHECK("gemm_local wrote C[" << i << "," << j << "], past n = " << n);
    }
  CHECK(bad == 0);
}

template <typename T>
void sweep() {
  // m and k up to past kSmallGemmSide (64): both sides of the switch; n around the vector blocks
  // of every variant (4..16 floats per vector, 2 vectors per block) and the DARTS plane sizes.
  const int ms[] = {1, 3, 4, 5, 8, 13, 64, 65};
  const int ns[] = {1, 7, 17, 33, 49, 100};
  const int ks[] = {1, 2, 9, 31, 64, 70};
  const bool modes[4][2] = {{false, false}, {true, false}, {false, true}, {true, true}};
  uint32_t seed = 1;
  for (const auto& md : modes)
    for (int m : ms)
      for (int n : ns)
        for (int k : ks) {
          const double alpha = (seed % 3 == 0) ? -0.5 : 1.0;
          const double beta = seed % 4 == 0 ? 1.0 : seed % 4 == 1 ? 0.25 : 0.0;
          check_gemm<T>(md[0], md[1], m, n, k, alpha, beta, seed++);
        }
  // The quick start's shapes: 8..32 channels, 28x28 / 14x14 / 7x7 planes, and long reductions.
  check_gemm<T>(false, false, 32, 784, 16, 1.0, 0.0, 9001);
  check_gemm<T>(true, false, 16, 196, 32, 1.0, 0.0, 9002);
  check_gemm<T>(false, true, 8, 24, 784, 1.0, 0.0, 9003);
  check_gemm<T>(false, true, 64, 64, 1024, 1.0, 1.0, 9004);
}

TEST_CASE("gemm_local matches a float64 GEMM on both sides of the small-kernel switch", "[conv][gemm]") {
  SECTION("float32") { sweep<float>(); }
  SECTION("float64") { sweep<double>(); }
}

}  // namespace
