// Register-blocked GEMM for the small matrices of DARTS-sized convolutions (kernels/cpu/conv_common.h,
// gemm_local). The 1x1 convolutions of a cell multiply a C x C weight (C = 8..64) by a C x P plane
// block per sample (P = H*W, 49..1024): far below the sizes OpenBLAS is tuned for, where its
// packing, beta pass and per-call dispatch cost as much as the arithmetic. It also depends on
// OpenBLAS recognising the CPU: on an Intel Xeon (family 6, model 207) guest, OpenBLAS 0.3.21 falls
// back to its SSE3 "Prescott" kernels, and those GEMMs were a quarter of a training step
// (docs/results.md). These kernels are compiled for the caller's instruction set like the other
// hot kernels (kernels/cpu/isa_target.h).
//
// Two forms, both row-major, C = alpha op(A) op(B) + beta C (beta == 0: C is never read):
//  - small_gemm_nn: op(B) = B. A 4-row x 2-vector block of C stays in registers over the whole
//    reduction; each step loads two vectors of one B row and broadcasts four A values. Each
//    element of C is summed over p in order 0..k-1.
//  - small_gemm_nt: op(B) = B^T, op(A) = A (the weight gradients dW = dY X^T, long reductions
//    over P). A 2 x 4 block of dot products, each a vector of partial sums over p, reduced across
//    lanes at the end.
// Used by gemm_local (kernels/cpu/conv_common.h), which chooses between these and OpenBLAS.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/cpu/isa_target.h"

namespace asap::cpu {
ASAP_CPU_TARGET_BEGIN
ASAP_CPU_VARIANT_NS_BEGIN

// Unaligned, aliasing-safe vector loads and stores (GCC vector extension, the variant's width).
#define ASAP_SG_LD(p) (*reinterpret_cast<const VU*>(p))
#define ASAP_SG_ST(p, v) (*reinterpret_cast<VU*>(p) = (v))

// c = alpha * acc (+ beta * c): the epilogue of one vector or one element of C.
template <typename T, typename V, typename VU>
inline void sg_store_v(T* c, const V& acc, T alpha, T beta) {
  if (beta == T(0)) ASAP_SG_ST(c, alpha * acc);
  else ASAP_SG_ST(c, alpha * acc + beta * ASAP_SG_LD(c));
}
template <typename T>
inline void sg_store_s(T* c, T acc, T alpha, T beta) {
  *c = beta == T(0) ? alpha * acc : alpha * acc + beta * *c;
}

// One block of C: rows [i0, i0 + R) (R = 4 or 1) x columns [j0, j0 + NV * L) (NV = 2 or 1 vectors),
// for op(B) = B. TA: op(A) = A^T (A is k x m, row stride lda). The block's accumulators stay in
// registers over the whole reduction.
template <typename T, bool TA, int R, int NV>
inline void sg_nn_block(int i0, int j0, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                        int ldc) {
  typedef T V __attribute__((vector_size(ASAP_CPU_VEC_BYTES)));
  typedef T VU __attribute__((vector_size(ASAP_CPU_VEC_BYTES), aligned(alignof(T)), may_alias));
  constexpr int L = ASAP_CPU_VEC_BYTES / sizeof(T);
  static_assert((R == 4 || R == 1) && (NV == 2 || NV == 1), "4 or 1 rows, 2 or 1 vectors");
  // Element (i0 + r, p) of op(A).
  auto av = [&](int r, int p) -> T {
    return TA ? a[int64_t(p) * lda + i0 + r] : a[int64_t(i0 + r) * lda + p];
  };
  V s00 = {}, s01 = {}, s10 = {}, s11 = {}, s20 = {}, s21 = {}, s30 = {}, s31 = {};
  for (int p = 0; p < k; ++p) {
    const T* bp = b + int64_t(p) * ldb + j0;
    const V b0 = ASAP_SG_LD(bp);
    const V b1 = NV == 2 ? ASAP_SG_LD(bp + L) : V{};
    const T a0 = av(0, p);
    s00 += a0 * b0;
    if (NV == 2) s01 += a0 * b1;
    if (R == 4) {
      const T a1 = av(1, p), a2 = av(2, p), a3 = av(3, p);
      s10 += a1 * b0;
      s20 += a2 * b0;
      s30 += a3 * b0;
      if (NV == 2) {
        s11 += a1 * b1;
        s21 += a2 * b1;
        s31 += a3 * b1;
      }
    }
  }
  T* c0 = c + int64_t(i0) * ldc + j0;
  sg_store_v<T, V, VU>(c0, s00, alpha, beta);
  if (NV == 2) sg_store_v<T, V, VU>(c0 + L, s01, alpha, beta);
  if (R == 4) {
    sg_store_v<T, V, VU>(c0 + ldc, s10, alpha, beta);
    sg_store_v<T, V, VU>(c0 + 2 * ldc, s20, alpha, beta);
    sg_store_v<T, V, VU>(c0 + 3 * ldc, s30, alpha, beta);
    if (NV == 2) {
      sg_store_v<T, V, VU>(c0 + ldc + L, s11, alpha, beta);
      sg_store_v<T, V, VU>(c0 + 2 * ldc + L, s21, alpha, beta);
      sg_store_v<T, V, VU>(c0 + 3 * ldc + L, s31, alpha, beta);
    }
  }
}

// Row blocks outer, column blocks inner: each row block streams B once with unit stride and writes
// its rows of C in order (measured faster here than keeping a column block of B in L1 across the
// row blocks: the reductions are short, k <= 64).
template <typename T, bool TA>
inline void small_gemm_nn_t(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
                            T* c, int ldc) {
  constexpr int L = ASAP_CPU_VEC_BYTES / sizeof(T);
  auto row_block = [&](int i, auto r) {
    constexpr int R = decltype(r)::value;
    int j = 0;
    for (; j + 2 * L <= n; j += 2 * L) sg_nn_block<T, TA, R, 2>(i, j, k, alpha, a, lda, b, ldb, beta, c, ldc);
    for (; j + L <= n; j += L) sg_nn_block<T, TA, R, 1>(i, j, k, alpha, a, lda, b, ldb, beta, c, ldc);
    for (; j < n; ++j)  // the last columns, one element at a time
      for (int ii = i; ii < i + R; ++ii) {
        T s = T(0);
        for (int p = 0; p < k; ++p)
          s += (TA ? a[int64_t(p) * lda + ii] : a[int64_t(ii) * lda + p]) * b[int64_t(p) * ldb + j];
        sg_store_s(c + int64_t(ii) * ldc + j, s, alpha, beta);
      }
  };
  int i = 0;
  for (; i + 4 <= m; i += 4) row_block(i, std::integral_constant<int, 4>{});
  for (; i < m; ++i) row_block(i, std::integral_constant<int, 1>{});
}

template <typename T>
inline void small_gemm_nn(bool ta, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
                          T beta, T* c, int ldc) {
  if (ta) small_gemm_nn_t<T, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else small_gemm_nn_t<T, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// C[i0 .. i0+RI) x [j0 .. j0+RJ) of C = A B^T: RI x RJ dot products of length k (RI <= 2, RJ <= 4).
template <typename T, int RI, int RJ>
inline void sg_nt_block(int i0, int j0, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                        int ldc) {
  typedef T V __attribute__((vector_size(ASAP_CPU_VEC_BYTES)));
  typedef T VU __attribute__((vector_size(ASAP_CPU_VEC_BYTES), aligned(alignof(T)), may_alias));
  constexpr int L = ASAP_CPU_VEC_BYTES / sizeof(T);
  static_assert(RI >= 1 && RI <= 2 && RJ >= 1 && RJ <= 4, "a 2 x 4 block at most");
  const T* ar[2] = {a + int64_t(i0) * lda, a + int64_t(i0 + RI - 1) * lda};
  const T* br[4];
  for (int q = 0; q < 4; ++q) br[q] = b + int64_t(j0 + (q < RJ ? q : 0)) * ldb;
  V s[RI][RJ] = {};
  int p = 0;
  for (; p + L <= k; p += L) {
#pragma GCC unroll 2
    for (int r = 0; r < RI; ++r) {
      const V av = ASAP_SG_LD(ar[r] + p);
#pragma GCC unroll 4
      for (int q = 0; q < RJ; ++q) s[r][q] += av * ASAP_SG_LD(br[q] + p);
    }
  }
  for (int r = 0; r < RI; ++r)
    for (int q = 0; q < RJ; ++q) {
      T t = T(0);
      for (int l = 0; l < L; ++l) t += s[r][q][l];
      for (int pp = p; pp < k; ++pp) t += ar[r][pp] * br[q][pp];
      sg_store_s(c + int64_t(i0 + r) * ldc + j0 + q, t, alpha, beta);
    }
}

template <typename T, int RI>
inline void sg_nt_rows(int i0, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                       int ldc) {
  int j = 0;
  for (; j + 4 <= n; j += 4) sg_nt_block<T, RI, 4>(i0, j, k, alpha, a, lda, b, ldb, beta, c, ldc);
  for (; j < n; ++j) sg_nt_block<T, RI, 1>(i0, j, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
inline void small_gemm_nt(int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                          int ldc) {
  int i = 0;
  for (; i + 2 <= m; i += 2) sg_nt_rows<T, 2>(i, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  for (; i < m; ++i) sg_nt_rows<T, 1>(i, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

ASAP_CPU_VARIANT_NS_END
ASAP_CPU_TARGET_END
}  // namespace asap::cpu

#undef ASAP_SG_LD
#undef ASAP_SG_ST
