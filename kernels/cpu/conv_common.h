// Shared pieces of the CPU convolution family (conv.cpp, sepconv.cpp): scratch buffers, a BLAS
// wrapper that is safe to call from inside OpenMP regions, and the depthwise plane kernels.
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/small_gemm.h"
#include "kernels/cpu/isa_target.h"

namespace asap::cpu {

inline constexpr size_t kScratchSlack = 512;

// Grow-only per-thread scratch, one slot per purpose, 64-byte aligned. The pool's threads persist
// (kernels/cpu/parallel.h), so after the first step no kernel of this family allocates on the hot path.
inline void* scratch(int slot, size_t bytes) {
  struct Buf {
    void* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  constexpr int kSlots = 8;
  thread_local Buf bufs[kSlots];
  Buf& b = bufs[slot];
  // Slack past the requested size: the register-blocked depthwise loops read and write up to one
  // block (kDwBlock elements, 8 vectors: at most 512 bytes with AVX-512) beyond the last useful
  // element instead of running a scalar tail.
  bytes += kScratchSlack;
  if (b.n < bytes) {
    std::free(b.p);
    size_t n = (std::max<size_t>(bytes, 256) + 63) / 64 * 64;
    b.p = std::aligned_alloc(64, n);
    if (!b.p) throw Error("cpu conv: out of memory for scratch");
    b.n = n;
  }
  return b.p;
}
template <typename T>
T* scratch_t(int slot, size_t count) {
  return static_cast<T*>(scratch(slot, count * sizeof(T)));
}

// Scratch slots (per thread). The calling thread's slots 6/7 hold per-sample partial weight
// gradients that worker threads fill; the others are private to the thread using them.
enum : int { kSlotPlane = 0, kSlotPlane2 = 1, kSlotCol = 2, kSlotMid = 3, kSlotDmid = 4, kSlotAux = 5,
             kSlotPartial = 6, kSlotPartial2 = 7 };

inline void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                      const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
                      const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

// From here on: compiled for the including file's instruction set, in its own inline namespace
// (kernels/cpu/isa_target.h), so the AVX2 and AVX-512 copies of these inline functions never
// stand in for the baseline's. The scratch buffers above are shared by all variants.
ASAP_CPU_TARGET_BEGIN
ASAP_CPU_VARIANT_NS_BEGIN

// The largest sides small_gemm.h takes (the weight's two sides: m and k for op(B) = B, m and n for
// op(B) = B^T): every 1x1 convolution of the DARTS search (C = 16: 16..64 channels) and of the
// quick start's network. Larger ones go to OpenBLAS, which is tuned for them when it knows the CPU.
inline constexpr int kSmallGemmSide = 64;

// Row-major C[m,n] = alpha op(A) op(B) + beta C on the calling thread, safe inside `omp parallel`.
// Small weights run small_gemm.h's register-blocked kernels; the rest goes to OpenBLAS, split so
// that every BLAS call has m*n*k <= 2^18: OpenBLAS (pthread build) runs such calls on the calling
// thread, so its thread pool never fights OpenMP for the cores.
template <typename T>
void gemm_local(bool ta, bool tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
                int ldb, T beta, T* c, int ldc) {
  constexpr int64_t kMax = 1 << 18;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[int64_t(i) * ldc + j] = beta == T(0) ? T(0) : beta * c[int64_t(i) * ldc + j];
    return;
  }
  if (!tb && m <= kSmallGemmSide && k <= kSmallGemmSide) {
    small_gemm_nn(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (tb && !ta && m <= kSmallGemmSide && n <= kSmallGemmSide) {
    small_gemm_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (int64_t(m) * n * k <= kMax) {
    blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (n >= k) {  // split the columns of C (and of op(B))
    int nc = std::max<int64_t>(16, kMax / (int64_t(m) * k) / 16 * 16);
    for (int j = 0; j < n; j += nc) {
      int w = std::min(nc, n - j);
      const T* bj = tb ? b + int64_t(j) * ldb : b + j;
      blas_gemm(ta, tb, m, w, k, alpha, a, lda, bj, ldb, beta, c + j, ldc);
    }
  } else {  // split the reduction dimension, accumulating after the first chunk
    int kc = std::max<int64_t>(16, kMax / (int64_t(m) * n) / 16 * 16);
    for (int p = 0; p < k; p += kc) {
      int w = std::min(kc, k - p);
      const T* ap = ta ? a + int64_t(p) * lda : a + p;
      const T* bp = tb ? b + p : b + int64_t(p) * ldb;
      blas_gemm(ta, tb, m, n, w, alpha, ap, lda, bp, ldb, p == 0 ? beta : T(1), c, ldc);
    }
  }
}

inline int conv_out_size(int64_t in, int k, const Conv2dParams& p) {
  return static_cast<int>((in + 2 * p.padding - p.dilation * (k - 1) - 1) / p.stride + 1);
}

// Geometry of one conv call, in ints (all DARTS sizes are small).
struct ConvGeom {
  int N, C, H, W, O, KH, KW, Ho, Wo, s, pad, d, g;
  int64_t xsn, xsc, xsh, xsw;  // x strides (x may be a view)
  int Hp() const { return H + 2 * pad; }
  int Wp() const { return W + 2 * pad; }
  int P() const { return Ho * Wo; }
};

inline ConvGeom make_geom(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p) {
  ConvGeom gm;
  gm.N = int(x.dim(0)); gm.C = int(x.dim(1)); gm.H = int(x.dim(2)); gm.W = int(x.dim(3));
  gm.O = int(w.dim(0)); gm.KH = int(w.dim(2)); gm.KW = int(w.dim(3));
  gm.Ho = int(y.dim(2)); gm.Wo = int(y.dim(3));
  gm.s = p.stride; gm.pad = p.padding; gm.d = p.dilation; gm.g = p.groups;
  gm.xsn = x.strides()[0]; gm.xsc = x.strides()[1]; gm.xsh = x.strides()[2]; gm.xsw = x.strides()[3];
  return gm;
}

// Copies one H x W input plane (row stride sh, column stride sw) into a zero-bordered
// (H+2p) x (W+2p) buffer, optionally applying ReLU on the way (the fused separable block).
template <typename T, bool kRelu>
inline void pad_plane(const T* x, int64_t sh, int64_t sw, int H, int W, int pad, T* xp) {
  const int Wp = W + 2 * pad;
  std::memset(xp, 0, sizeof(T) * size_t(pad) * Wp);
  std::memset(xp + int64_t(pad + H) * Wp, 0, sizeof(T) * size_t(pad) * Wp);
  for (int h = 0; h < H; ++h) {
    T* row = xp + int64_t(h + pad) * Wp;
    const T* xr = x + h * sh;
    for (int i = 0; i < pad; ++i) row[i] = row[pad + W + i] = T(0);
    if (sw == 1) {
      T* dst = row + pad;
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        const T v = xr[w];
        dst[w] = kRelu ? (v > T(0) ? v : T(0)) : v;
      }
    } else {
      for (int w = 0; w < W; ++w) {
        T v = xr[w * sw];
        row[pad + w] = kRelu ? (v > T(0) ? v : T(0)) : v;
      }
    }
  }
}

// ---- depthwise plane kernels on a padded plane xp (Hp x Wp). w: KH*KW taps. ----
// Stride 1 runs each tap as one long contiguous loop over a "wide" output of Ho rows of Wp
// columns (the extra columns are junk/zero), which vectorises far better than 28-wide rows.

// Elements per register block of the stride-1 depthwise loops: 8 vectors of the variant's width
// (16 bytes SSE2, 32 AVX2, 64 AVX-512), 8 accumulators live in registers in every variant.
template <typename T>
constexpr int kDwBlock = 8 * ASAP_CPU_VEC_BYTES / sizeof(T);
static_assert(8 * ASAP_CPU_VEC_BYTES <= kScratchSlack, "scratch slack must cover one depthwise block");

// Stride-1 depthwise correlation on a "wide" plane: out[q] = sum_taps w[i][j] * in[q + i*d*ld + j*d]
// for q in [0, Q). Each block of kDwBlock outputs stays in registers across all taps and is stored
// once (the tap-outer form loaded and stored the accumulator once per tap: store-bound). The sum
// runs over the taps in the same order as before, so results are unchanged. Reads and writes up
// to one block past Q: buffers come from scratch(), which has that slack.
template <typename T>
inline void dw_wide_s1(const T* in, int64_t ld, const T* w, int KH, int KW, int d, int64_t Q, T* out) {
  // Eight explicit vectors (GCC vector extension, as wide as the variant's registers): a plain
  // T[B] accumulator array was kept on the stack, not in registers.
  // Unaligned, aliasing-safe loads and stores through VU: no helper returns a vector by value
  // (that would be an ABI question between variants, -Wpsabi).
  typedef T V __attribute__((vector_size(ASAP_CPU_VEC_BYTES)));
  typedef T VU __attribute__((vector_size(ASAP_CPU_VEC_BYTES), aligned(alignof(T)), may_alias));
  constexpr int L = ASAP_CPU_VEC_BYTES / sizeof(T);
  static_assert(kDwBlock<T> == 8 * L, "block = 8 vectors");
#define ld_v(p) (*reinterpret_cast<const VU*>(p))
#define st_v(p, v) (*reinterpret_cast<VU*>(p) = (v))
  for (int64_t q0 = 0; q0 < Q; q0 += 8 * L) {
    V a0 = {}, a1 = {}, a2 = {}, a3 = {}, a4 = {}, a5 = {}, a6 = {}, a7 = {};
    for (int i = 0; i < KH; ++i)
      for (int j = 0; j < KW; ++j) {
        const T wv = w[i * KW + j];
        const T* xs = in + int64_t(i) * d * ld + j * d + q0;
        a0 += wv * ld_v(xs);
        a1 += wv * ld_v(xs + L);
        a2 += wv * ld_v(xs + 2 * L);
        a3 += wv * ld_v(xs + 3 * L);
        a4 += wv * ld_v(xs + 4 * L);
        a5 += wv * ld_v(xs + 5 * L);
        a6 += wv * ld_v(xs + 6 * L);
        a7 += wv * ld_v(xs + 7 * L);
      }
    T* o = out + q0;
    st_v(o, a0); st_v(o + L, a1); st_v(o + 2 * L, a2); st_v(o + 3 * L, a3);
    st_v(o + 4 * L, a4); st_v(o + 5 * L, a5); st_v(o + 6 * L, a6); st_v(o + 7 * L, a7);
  }
#undef ld_v
#undef st_v
}

// Stride 2: the padded plane (Hp x Wp, row stride Wp) as four quarter planes by row and column
// parity, each Hq x Wq (Hq = ceil(Hp/2), Wq = ceil(Wp/2)), quarter (a, b) at buf + (2a + b) * Hq*Wq.
// Input (2*oh + r, 2*ow + c) is quarter (r&1, c&1) at (oh + r/2, ow + c/2): every tap of a stride-2
// depthwise conv becomes a unit-stride stream (the strided loads were gathers or scalar). Cells no
// row or column maps to stay zero. Returns the quarter size Hq*Wq; `extra` zeroed values follow.
template <typename T>
inline int64_t split_quarters(const T* xp, int Hp, int Wp, std::vector<T>& buf, int64_t extra) {
  const int Hq = (Hp + 1) / 2, Wq = (Wp + 1) / 2;
  const int64_t qsz = int64_t(Hq) * Wq;
  const size_t n = size_t(4 * qsz + extra);
  if (buf.size() < n) buf.resize(n);
  std::memset(buf.data(), 0, n * sizeof(T));  // vector::assign filled element by element
  for (int r = 0; r < Hp; ++r) {
    const T* xr = xp + int64_t(r) * Wp;
    T* q0 = buf.data() + int64_t(2 * (r & 1)) * qsz + int64_t(r / 2) * Wq;
    T* q1 = q0 + qsz;
    for (int j = 0; j < Wp / 2; ++j) {  // indexed by the half column, so it vectorises
      q0[j] = xr[2 * j];
      q1[j] = xr[2 * j + 1];
    }
    if (Wp & 1) q0[Wp / 2] = xr[Wp - 1];
  }
  return qsz;
}


// y (Ho x Wo, contiguous) = depthwise(xp). acc: scratch of Ho*Wp.
template <typename T>
inline void dw_plane_fwd(const T* xp, int Wp, const T* w, const ConvGeom& g, T* y, T* acc) {
  const int Ho = g.Ho, Wo = g.Wo, d = g.d, s = g.s;
  if (s == 1) {
    const int64_t Q = int64_t(Ho - 1) * Wp + Wo;
    dw_wide_s1(xp, Wp, w, g.KH, g.KW, d, Q, acc);
    for (int oh = 0; oh < Ho; ++oh) std::memcpy(y + int64_t(oh) * Wo, acc + int64_t(oh) * Wp, sizeof(T) * Wo);
    return;
  }
  if (s == 2) {
    // Quarter planes (split_quarters): each tap adds w * one unit-stride stream into a wide
    // accumulator of row stride Wq, taps in (i, j) order from zero as below; then the rows are copied.
    thread_local std::vector<T> buf;
    const int Wq = (Wp + 1) / 2;
    const int64_t Q = int64_t(Ho - 1) * Wq + Wo;
    const int64_t qsz = split_quarters(xp, g.Hp(), Wp, buf, int64_t(Ho) * Wq);
    T* __restrict wide = buf.data() + 4 * qsz;
    for (int i = 0; i < g.KH; ++i)
      for (int j = 0; j < g.KW; ++j) {
        const int rr = i * d, cc = j * d;
        const T* __restrict src = buf.data() + int64_t(2 * (rr & 1) + (cc & 1)) * qsz + int64_t(rr / 2) * Wq + cc / 2;
        const T wv = w[i * g.KW + j];
#pragma omp simd
        for (int64_t q = 0; q < Q; ++q) wide[q] += wv * src[q];
      }
    for (int oh = 0; oh < Ho; ++oh) std::memcpy(y + int64_t(oh) * Wo, wide + int64_t(oh) * Wq, sizeof(T) * Wo);
    return;
  }
  for (int oh = 0; oh < Ho; ++oh) {
    T* yr = y + int64_t(oh) * Wo;
    for (int ow = 0; ow < Wo; ++ow) yr[ow] = T(0);
    for (int i = 0; i < g.KH; ++i) {
      const T* xr = xp + int64_t(oh * s + i * d) * Wp;
      for (int j = 0; j < g.KW; ++j) {
        const T wv = w[i * g.KW + j];
        const T* xs = xr + j * d;
        for (int ow = 0; ow < Wo; ++ow) yr[ow] += wv * xs[int64_t(ow) * s];
      }
    }
  }
}

// dy (Ho x Wo) -> Ho x Wp with zero junk columns (stride-1 helper for the two backward kernels).
template <typename T>
inline void dw_widen(const T* dy, const ConvGeom& g, int Wp, T* dyw) {
  for (int oh = 0; oh < g.Ho; ++oh) {
    T* r = dyw + int64_t(oh) * Wp;
    std::memcpy(r, dy + int64_t(oh) * g.Wo, sizeof(T) * g.Wo);
    for (int c = g.Wo; c < Wp; ++c) r[c] = T(0);
  }
}

// Stride-1 backward data in gather form: dx = correlation of dy, zero-padded by
// (K-1)*d - pad, with the flipped kernel; the same register-blocked loop as the forward, no
// scatter. Usable when pad <= (K-1)*d (every DARTS conv). Writes an H x Wq "wide" plane to out
// (row stride Wq = Wo + 2*((KW-1)*d - pad) = W + (KW-1)*d, returned) with junk past column W.
// dyq: scratch of (Ho + 2*PH) * Wq; wflip: KH*KW scratch.
inline bool dw_bwd_gather_ok(const ConvGeom& g) {
  return g.s == 1 && g.KH * g.KW <= 64 && g.pad <= (g.KH - 1) * g.d && g.pad <= (g.KW - 1) * g.d;
}
inline int dw_bwd_gather_ld(const ConvGeom& g) { return g.Wo + 2 * ((g.KW - 1) * g.d - g.pad); }
inline int64_t dw_bwd_gather_rows(const ConvGeom& g) { return g.Ho + 2 * ((g.KH - 1) * g.d - g.pad); }
template <typename T>
inline int dw_plane_bwd_data_gather(const T* dy, const T* w, const ConvGeom& g, T* dyq, T* out) {
  const int PH = (g.KH - 1) * g.d - g.pad, PW = (g.KW - 1) * g.d - g.pad;
  const int Wq = g.Wo + 2 * PW, Hq = g.Ho + 2 * PH;
  std::memset(dyq, 0, sizeof(T) * size_t(PH) * Wq);
  std::memset(dyq + int64_t(PH + g.Ho) * Wq, 0, sizeof(T) * size_t(PH) * Wq);
  for (int oh = 0; oh < g.Ho; ++oh) {
    T* r = dyq + int64_t(oh + PH) * Wq;
    for (int c = 0; c < PW; ++c) r[c] = r[PW + g.Wo + c] = T(0);
    std::memcpy(r + PW, dy + int64_t(oh) * g.Wo, sizeof(T) * g.Wo);
  }
  (void)Hq;
  T wf[64];  // flipped taps; DARTS kernels are at most 7x7
  const int KK = g.KH * g.KW;
  for (int t = 0; t < KK; ++t) wf[t] = w[KK - 1 - t];
  const int64_t Q = int64_t(g.H - 1) * Wq + g.W;
  dw_wide_s1(dyq, Wq, wf, g.KH, g.KW, g.d, Q, out);
  return Wq;
}

// dxp (Hp x Wp, written) = transposed depthwise of dy (Ho x Wo).
// dyw: for stride 1, dy widened by dw_widen (junk columns zero, so they scatter nothing).
template <typename T>
inline void dw_plane_bwd_data(const T* dy, const T* dyw, const T* w, const ConvGeom& g, int Hp, int Wp,
                              T* dxp) {
  const int Ho = g.Ho, Wo = g.Wo, d = g.d, s = g.s;
  if (s == 2) {
    // Stride 2 (reduction cells): tap (i, j) adds dy[oh][ow] to padded column 2*ow + j*d, so
    // accumulate into the even and odd columns as two half-width planes (unit-stride, vectorised;
    // the strided form was a scalar loop), then interleave them into dxp. Each element receives
    // its terms in the same (oh, i, j) order as the strided loop: identical results.
    const int Wh = (Wp + 1) / 2;
    thread_local std::vector<T> halves;
    halves.assign(size_t(2) * Hp * Wh, T(0));
    T* hv = halves.data();
    for (int oh = 0; oh < Ho; ++oh) {
      const T* __restrict dr = dy + int64_t(oh) * Wo;
      for (int i = 0; i < g.KH; ++i) {
        const int64_t row = int64_t(oh * 2 + i * d) * Wh;
        for (int j = 0; j < g.KW; ++j) {
          const T wv = w[i * g.KW + j];
          const int t = j * d;
          T* __restrict xs = hv + (t & 1) * int64_t(Hp) * Wh + row + (t >> 1);
#pragma omp simd
          for (int ow = 0; ow < Wo; ++ow) xs[ow] += wv * dr[ow];
        }
      }
    }
    const T* ev = hv;
    const T* od = hv + int64_t(Hp) * Wh;
    for (int h = 0; h < Hp; ++h) {
      T* xr = dxp + int64_t(h) * Wp;
      const T* er = ev + int64_t(h) * Wh;
      const T* orow = od + int64_t(h) * Wh;
      for (int c = 0; c < Wp / 2; ++c) {
        xr[2 * c] = er[c];
        xr[2 * c + 1] = orow[c];
      }
      if (Wp & 1) xr[Wp - 1] = er[Wp / 2];
    }
    return;
  }
  std::memset(dxp, 0, sizeof(T) * size_t(Hp) * Wp);
  if (s == 1) {
    const int64_t Q = int64_t(Ho - 1) * Wp + Wo;
    for (int i = 0; i < g.KH; ++i)
      for (int j = 0; j < g.KW; ++j) {
        const T wv = w[i * g.KW + j];
        T* xs = dxp + int64_t(i) * d * Wp + j * d;
#pragma omp simd
        for (int64_t q = 0; q < Q; ++q) xs[q] += wv * dyw[q];
      }
    return;
  }
  for (int oh = 0; oh < Ho; ++oh) {
    const T* dr = dy + int64_t(oh) * Wo;
    for (int i = 0; i < g.KH; ++i) {
      T* xr = dxp + int64_t(oh * s + i * d) * Wp;
      for (int j = 0; j < g.KW; ++j) {
        const T wv = w[i * g.KW + j];
        T* xs = xr + j * d;
        for (int ow = 0; ow < Wo; ++ow) xs[int64_t(ow) * s] += wv * dr[ow];
      }
    }
  }
}

// One kernel row of the stride-1 weight gradient: out[j] = dot(dyw, xs + j*d) over Q values for
// the row's KW taps at once, so each dy vector is loaded once for all of them (a dot per tap
// loaded it KW times and the loop was load-bound). 16 lanes per tap keep the FMA chains
// independent; the lanes are summed as a tree, which vectorises (a sequential lane sum was a
// chain of 16 dependent scalar adds per tap and plane).
template <typename T, int KW>
inline void dw_row_taps(const T* dyw, const T* xs, int d, int64_t Q, T* out) {
  constexpr int L = 16;
  T lane[KW][L] = {};
  int64_t q = 0;
  for (; q + L <= Q; q += L)
    for (int j = 0; j < KW; ++j) {
      const T* x = xs + j * d + q;
#pragma omp simd
      for (int l = 0; l < L; ++l) lane[j][l] += dyw[q + l] * x[l];
    }
  for (int j = 0; j < KW; ++j) {
    T tail = T(0);
    for (int64_t r = q; r < Q; ++r) tail += dyw[r] * xs[j * d + r];
    for (int w = L / 2; w >= 1; w /= 2)
#pragma omp simd
      for (int l = 0; l < w; ++l) lane[j][l] += lane[j][l + w];
    out[j] = lane[j][0] + tail;
  }
}

// dw[t] = sum over outputs of dy * xp under tap t (written, KH*KW values).
// dyw: for stride 1, dy already widened to Wp columns (see dw_widen); ignored otherwise.
template <typename T>
inline void dw_plane_bwd_weight(const T* xp, int Wp, const T* dy, const T* dyw, const ConvGeom& g, T* dw) {
  const int Ho = g.Ho, Wo = g.Wo, d = g.d, s = g.s;
  if (s == 1) {
    const int64_t Q = int64_t(Ho - 1) * Wp + Wo;
    for (int i = 0; i < g.KH; ++i) {
      const T* xs = xp + int64_t(i) * d * Wp;
      T* row = dw + i * g.KW;
      switch (g.KW) {  // the DARTS kernels; others one tap at a time
        case 3: dw_row_taps<T, 3>(dyw, xs, d, Q, row); break;
        case 5: dw_row_taps<T, 5>(dyw, xs, d, Q, row); break;
        default:
          for (int j = 0; j < g.KW; ++j) dw_row_taps<T, 1>(dyw, xs + j * d, d, Q, row + j);
      }
    }
    return;
  }
  // Stride 2 keeps the per-row strided reduction: a quarter-plane dot (one stream per tap, as the
  // forward) was faster, but its summation order moved the CUDA-vs-CPU search-step comparison
  // after a re-plan from <1e-5 to 1e-2 on the alphas (tests/cuda/test_cuda_search_step.cpp), and
  // that was not understood before it had to land.
  for (int i = 0; i < g.KH; ++i)
    for (int j = 0; j < g.KW; ++j) {
      T acc = T(0);
      for (int oh = 0; oh < Ho; ++oh) {
        const T* xs = xp + int64_t(oh * s + i * d) * Wp + j * d;
        const T* dr = dy + int64_t(oh) * Wo;
#pragma omp simd reduction(+ : acc)
        for (int ow = 0; ow < Wo; ++ow) acc += dr[ow] * xs[int64_t(ow) * s];
      }
      dw[i * g.KW + j] = acc;
    }
}

// Sums `n` contiguous partial vectors of length `len` in index order: deterministic for any
// number of threads. The element loop is innermost (unit stride, vectorised); each element still
// adds its partials in order 0..n-1 starting from zero.
template <typename T>
inline void reduce_partials(const T* part, int n, int64_t len, T* out) {
  parallel_for(len, len * n > 32768, [&](int64_t lo_, int64_t hi_) {
    T* __restrict o = out;
#pragma omp simd
    for (int64_t e = lo_; e < hi_; ++e) o[e] = T(0);
    for (int i = 0; i < n; ++i) {
      const T* __restrict p = part + int64_t(i) * len;
#pragma omp simd
      for (int64_t e = lo_; e < hi_; ++e) o[e] += p[e];
    }
  });
}

ASAP_CPU_VARIANT_NS_END
ASAP_CPU_TARGET_END
}  // namespace asap::cpu
