// CPU conv2d forward / backward-data / backward-weight. Four paths chosen per call:
//  - a tiny output plane (Ho*Wo <= 16, groups 1: the auxiliary head): samples batched in fixed
//    blocks, one GEMM per block (below, "tiny outputs");
//  - depthwise (groups == C == O): direct kernel on a zero-padded copy of each plane, OpenMP over
//    N*C planes, no im2col (the DARTS sep/dil convs);
//  - 1x1, no padding, groups 1: one GEMM per sample (a strided or stride>1 input is gathered first);
//  - everything else (stem 3x3, grouped convs): im2col + GEMM per sample and group.
// Also the 1x1 conv of relu(x) with the ReLU fused in (relu_pw_*).
// x is read through its strides in every path, so FactorizedReduce's shifted view needs no copy.
// Weight gradients are per-sample (tiny path: per-block) partials reduced in order: bit-identical
// results for any thread count.
#include <omp.h>

#include "kernels/cpu/conv_common.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap::cpu {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

bool is_depthwise(const ConvGeom& g) { return g.g > 1 && g.g == g.C && g.O == g.C; }
bool is_pointwise(const ConvGeom& g) { return g.KH == 1 && g.KW == 1 && g.pad == 0 && g.g == 1; }

// ------------------------------------------------------------------ depthwise
template <typename T>
void dw_fwd(const Tensor& x, const Tensor& w, Tensor& y, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  T* Y = y.data<T>();
  const int Hp = g.Hp(), Wp = g.Wp(), KK = g.KH * g.KW;
  const int64_t NC = int64_t(g.N) * g.C;
  parallel_for(NC, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t nc = lo_; nc < hi_; ++nc) {
      const int64_t n = nc / g.C, c = nc % g.C;
      T* xp = scratch_t<T>(kSlotPlane, size_t(Hp) * Wp);
      T* acc = scratch_t<T>(kSlotAux, size_t(g.Ho) * Wp);
      pad_plane<T, false>(X + n * g.xsn + c * g.xsc, g.xsh, g.xsw, g.H, g.W, g.pad, xp);
      dw_plane_fwd(xp, Wp, Wt + c * KK, g, Y + nc * g.P(), acc);
    }
  });
}

template <typename T>
void dw_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvGeom& g) {
  const T* DY = dy.data<T>();
  const T* Wt = w.data<T>();
  T* DX = dx.data<T>();
  const int Hp = g.Hp(), Wp = g.Wp(), KK = g.KH * g.KW;
  const int64_t NC = int64_t(g.N) * g.C;
  parallel_for(NC, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t nc = lo_; nc < hi_; ++nc) {
      const int64_t c = nc % g.C;
      const T* dyp = DY + nc * g.P();
      T* out = DX + nc * int64_t(g.H) * g.W;
      if (dw_bwd_gather_ok(g)) {
        const int Wq = dw_bwd_gather_ld(g);
        T* dyq = scratch_t<T>(kSlotCol, size_t(dw_bwd_gather_rows(g)) * Wq);
        T* wide = scratch_t<T>(kSlotPlane, size_t(g.H) * Wq);
        dw_plane_bwd_data_gather(dyp, Wt + c * KK, g, dyq, wide);
        for (int h = 0; h < g.H; ++h)
          std::memcpy(out + int64_t(h) * g.W, wide + int64_t(h) * Wq, sizeof(T) * g.W);
        continue;
      }
      T* dxp = scratch_t<T>(kSlotPlane, size_t(Hp) * Wp);
      T* dyw = scratch_t<T>(kSlotAux, size_t(g.Ho) * Wp);
      if (g.s == 1) dw_widen(dyp, g, Wp, dyw);
      dw_plane_bwd_data(dyp, dyw, Wt + c * KK, g, Hp, Wp, dxp);
      for (int h = 0; h < g.H; ++h)
        std::memcpy(out + int64_t(h) * g.W, dxp + int64_t(h + g.pad) * Wp + g.pad, sizeof(T) * g.W);
    }
  });
}

template <typename T>
void dw_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* DY = dy.data<T>();
  const int Hp = g.Hp(), Wp = g.Wp(), KK = g.KH * g.KW;
  const int64_t NC = int64_t(g.N) * g.C;
  T* part = scratch_t<T>(kSlotPartial, size_t(NC) * KK);  // [N][C][KK], this thread's slot
  parallel_for(NC, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t nc = lo_; nc < hi_; ++nc) {
      const int64_t n = nc / g.C, c = nc % g.C;
      T* xp = scratch_t<T>(kSlotPlane, size_t(Hp) * Wp);
      T* dyw = scratch_t<T>(kSlotAux, size_t(g.Ho) * Wp);
      const T* dyp = DY + nc * g.P();
      if (g.s == 1) dw_widen(dyp, g, Wp, dyw);
      pad_plane<T, false>(X + n * g.xsn + c * g.xsc, g.xsh, g.xsw, g.H, g.W, g.pad, xp);
      dw_plane_bwd_weight(xp, Wp, dyp, dyw, g, part + nc * KK);
    }
  });
  reduce_partials(part, g.N, int64_t(g.C) * KK, dw.data<T>());
}

// ------------------------------------------------------------------ 1x1 (GEMM per sample)
// Returns sample n of x (kRelu: of relu(x)) as a contiguous [C, Ho*Wo] matrix: x itself when it
// already is one and no ReLU is asked for, else a gather (stride > 1 and/or a strided view, with the
// ReLU applied on the way) into this thread's scratch.
template <typename T, bool kRelu = false>
const T* pw_input(const T* X, const ConvGeom& g, int64_t n) {
  const T* xn = X + n * g.xsn;
  if (!kRelu && g.s == 1 && g.xsw == 1 && g.xsh == g.W && g.xsc == int64_t(g.H) * g.W) return xn;
  T* col = scratch_t<T>(kSlotCol, size_t(g.C) * g.P());
  const int64_t step = int64_t(g.s) * g.xsw;
  for (int c = 0; c < g.C; ++c) {
    T* dst = col + int64_t(c) * g.P();
    const T* src = xn + c * g.xsc;
    for (int oh = 0; oh < g.Ho; ++oh) {
      const T* r = src + int64_t(oh) * g.s * g.xsh;
      T* d = dst + int64_t(oh) * g.Wo;
      if (kRelu && step == 1) {
#pragma omp simd
        for (int ow = 0; ow < g.Wo; ++ow) d[ow] = r[ow] > T(0) ? r[ow] : T(0);
      } else if (step == 2) {  // every reduction's FactorizedReduce: a stride-2 load group vectorises
#pragma omp simd
        for (int ow = 0; ow < g.Wo; ++ow) {
          const T v = r[2 * ow];
          d[ow] = !kRelu || v > T(0) ? v : T(0);
        }
      } else {
        for (int ow = 0; ow < g.Wo; ++ow) {
          const T v = r[ow * step];
          d[ow] = !kRelu || v > T(0) ? v : T(0);
        }
      }
    }
  }
  return col;
}

template <typename T, bool kRelu = false>
void pw_fwd(const Tensor& x, const Tensor& w, Tensor& y, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  T* Y = y.data<T>();
  const int P = g.P();
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      const T* xn = pw_input<T, kRelu>(X, g, n);
      gemm_local<T>(false, false, g.O, P, g.C, T(1), Wt, g.C, xn, P, T(0), Y + n * g.O * P, P);
    }
  });
}

template <typename T>
void pw_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvGeom& g) {
  const T* DY = dy.data<T>();
  const T* Wt = w.data<T>();
  T* DX = dx.data<T>();
  const int P = g.P();
  const int64_t HW = int64_t(g.H) * g.W;
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      T* dxn = DX + n * g.C * HW;
      if (g.s == 1) {
        gemm_local<T>(true, false, g.C, P, g.O, T(1), Wt, g.C, DY + n * g.O * P, P, T(0), dxn, P);
        continue;
      }
      T* col = scratch_t<T>(kSlotCol, size_t(g.C) * P);
      gemm_local<T>(true, false, g.C, P, g.O, T(1), Wt, g.C, DY + n * g.O * P, P, T(0), col, P);
      std::memset(dxn, 0, sizeof(T) * size_t(g.C * HW));
      for (int c = 0; c < g.C; ++c)
        for (int oh = 0; oh < g.Ho; ++oh)
          for (int ow = 0; ow < g.Wo; ++ow)
            dxn[c * HW + int64_t(oh) * g.s * g.W + int64_t(ow) * g.s] = col[(int64_t(c) * g.Ho + oh) * g.Wo + ow];
    }
  });
}

template <typename T>
void pw_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* DY = dy.data<T>();
  const int P = g.P();
  const int64_t OC = int64_t(g.O) * g.C;
  T* part = scratch_t<T>(kSlotPartial, size_t(g.N) * OC);
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      const T* xn = pw_input(X, g, n);
      gemm_local<T>(false, true, g.O, g.C, P, T(1), DY + n * g.O * P, P, xn, P, T(0), part + n * OC, g.C);
    }
  });
  reduce_partials(part, g.N, OC, dw.data<T>());
}

// ------------------------------------------------------------------ ReLU fused into a 1x1 conv
// y = conv1x1(relu(x)) at stride s (ReLUConvBN with a 1x1 kernel, FactorizedReduce's two halves).
// relu(x) is gathered per sample into this thread's scratch while it is in cache, instead of being
// written to memory as a tensor and read back by the conv; the backward applies the ReLU mask as it
// writes dx, instead of a separate pass over the conv's input gradient. The values and the GEMM
// calls are those of relu -> conv2d, so the results have the same bits.

// dx (contiguous, x's shape) = mask(x > 0) * (W^T dY scattered at the stride); dw = sum_n dY_n relu(x_n)^T,
// per-sample partials reduced in sample order. Either may be undefined (not wanted).
template <typename T>
void relu_pw_bwd_t(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  const T* DY = dy.data<T>();
  T* DX = dx.defined() ? dx.data<T>() : nullptr;
  const int P = g.P();
  const int64_t HW = int64_t(g.H) * g.W, OC = int64_t(g.O) * g.C;
  T* part = dw.defined() ? scratch_t<T>(kSlotPartial, size_t(g.N) * OC) : nullptr;
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      const T* dyn = DY + n * g.O * P;
      if (part)
        gemm_local<T>(false, true, g.O, g.C, P, T(1), dyn, P, pw_input<T, true>(X, g, n), P, T(0), part + n * OC, g.C);
      if (!DX) continue;
      T* dxn = DX + n * g.C * HW;
      T* col = g.s == 1 ? dxn : scratch_t<T>(kSlotDmid, size_t(g.C) * P);
      gemm_local<T>(true, false, g.C, P, g.O, T(1), Wt, g.C, dyn, P, T(0), col, P);
      if (g.s != 1) std::memset(dxn, 0, sizeof(T) * size_t(g.C * HW));
      for (int c = 0; c < g.C; ++c) {
        const T* xc = X + n * g.xsn + c * g.xsc;
        const T* gc = col + int64_t(c) * P;
        T* dc = dxn + c * HW;
        for (int oh = 0; oh < g.Ho; ++oh) {
          const T* xr = xc + int64_t(oh) * g.s * g.xsh;
          const T* gr = gc + int64_t(oh) * g.Wo;
          T* dr = dc + int64_t(oh) * g.s * g.W;
          if (g.s == 1 && g.xsw == 1) {
#pragma omp simd
            for (int ow = 0; ow < g.Wo; ++ow) {  // both loads unconditional, so it vectorises
              const T v = gr[ow], xv = xr[ow];
              dr[ow] = xv > T(0) ? v : T(0);
            }
          } else {
            for (int ow = 0; ow < g.Wo; ++ow)
              dr[int64_t(ow) * g.s] = xr[int64_t(ow) * g.s * g.xsw] > T(0) ? gr[ow] : T(0);
          }
        }
      }
    }
  });
  if (part) reduce_partials(part, g.N, OC, dw.data<T>());
}

// ------------------------------------------------------------------ general (im2col + GEMM)
// Valid output columns [lo, hi) for which ow*s + off lands inside [0, W).
inline void col_range(int off, int s, int W, int Wo, int& lo, int& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = (W - 1 - off) < 0 ? 0 : std::min(Wo, (W - 1 - off) / s + 1);
  if (hi < lo) hi = lo;
}

// col [Cg*KH*KW, P] (row stride ldc, P by default) for channels [c0, c0+Cg) of sample pointer xn
// (strided).
template <typename T>
void im2col(const T* xn, const ConvGeom& g, int c0, int Cg, T* col, int64_t ldc = 0) {
  if (ldc == 0) ldc = g.P();
  for (int c = 0; c < Cg; ++c)
    for (int i = 0; i < g.KH; ++i)
      for (int j = 0; j < g.KW; ++j) {
        T* row = col + int64_t((c * g.KH + i) * g.KW + j) * ldc;
        const T* xc = xn + (c0 + c) * g.xsc;
        int lo, hi;
        col_range(j * g.d - g.pad, g.s, g.W, g.Wo, lo, hi);
        for (int oh = 0; oh < g.Ho; ++oh) {
          T* r = row + int64_t(oh) * g.Wo;
          const int ih = oh * g.s - g.pad + i * g.d;
          if (ih < 0 || ih >= g.H) {
            for (int ow = 0; ow < g.Wo; ++ow) r[ow] = T(0);
            continue;
          }
          const T* xr = xc + ih * g.xsh + int64_t(j * g.d - g.pad) * g.xsw;
          for (int ow = 0; ow < lo; ++ow) r[ow] = T(0);
          for (int ow = lo; ow < hi; ++ow) r[ow] = xr[int64_t(ow) * g.s * g.xsw];
          for (int ow = hi; ow < g.Wo; ++ow) r[ow] = T(0);
        }
      }
}

// dxn (contiguous [C,H,W], channels [c0, c0+Cg)) += col2im(col) (col's row stride ldc, P by default).
template <typename T>
void col2im_add(const T* col, const ConvGeom& g, int c0, int Cg, T* dxn, int64_t ldc = 0) {
  if (ldc == 0) ldc = g.P();
  for (int c = 0; c < Cg; ++c)
    for (int i = 0; i < g.KH; ++i)
      for (int j = 0; j < g.KW; ++j) {
        const T* row = col + int64_t((c * g.KH + i) * g.KW + j) * ldc;
        T* xc = dxn + int64_t(c0 + c) * g.H * g.W;
        int lo, hi;
        col_range(j * g.d - g.pad, g.s, g.W, g.Wo, lo, hi);
        for (int oh = 0; oh < g.Ho; ++oh) {
          const int ih = oh * g.s - g.pad + i * g.d;
          if (ih < 0 || ih >= g.H) continue;
          T* xr = xc + int64_t(ih) * g.W + (j * g.d - g.pad);
          const T* r = row + int64_t(oh) * g.Wo;
          for (int ow = lo; ow < hi; ++ow) xr[int64_t(ow) * g.s] += r[ow];
        }
      }
}

template <typename T>
void gen_fwd(const Tensor& x, const Tensor& w, Tensor& y, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  T* Y = y.data<T>();
  const int P = g.P(), Cg = g.C / g.g, Og = g.O / g.g, R = Cg * g.KH * g.KW;
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      T* col = scratch_t<T>(kSlotCol, size_t(R) * P);
      for (int gi = 0; gi < g.g; ++gi) {
        im2col(X + n * g.xsn, g, gi * Cg, Cg, col);
        gemm_local<T>(false, false, Og, P, R, T(1), Wt + int64_t(gi) * Og * R, R, col, P, T(0),
                      Y + (n * g.O + int64_t(gi) * Og) * P, P);
      }
    }
  });
}

template <typename T>
void gen_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvGeom& g) {
  const T* DY = dy.data<T>();
  const T* Wt = w.data<T>();
  T* DX = dx.data<T>();
  const int P = g.P(), Cg = g.C / g.g, Og = g.O / g.g, R = Cg * g.KH * g.KW;
  const int64_t CHW = int64_t(g.C) * g.H * g.W;
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      T* col = scratch_t<T>(kSlotCol, size_t(R) * P);
      T* dxn = DX + n * CHW;
      std::memset(dxn, 0, sizeof(T) * size_t(CHW));
      for (int gi = 0; gi < g.g; ++gi) {
        gemm_local<T>(true, false, R, P, Og, T(1), Wt + int64_t(gi) * Og * R, R,
                      DY + (n * g.O + int64_t(gi) * Og) * P, P, T(0), col, P);
        col2im_add(col, g, gi * Cg, Cg, dxn);
      }
    }
  });
}

template <typename T>
void gen_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* DY = dy.data<T>();
  const int P = g.P(), Cg = g.C / g.g, Og = g.O / g.g, R = Cg * g.KH * g.KW;
  const int64_t WN = int64_t(g.O) * R;
  T* part = scratch_t<T>(kSlotPartial, size_t(g.N) * WN);
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      T* col = scratch_t<T>(kSlotCol, size_t(R) * P);
      for (int gi = 0; gi < g.g; ++gi) {
        im2col(X + n * g.xsn, g, gi * Cg, Cg, col);
        gemm_local<T>(false, true, Og, R, P, T(1), DY + (n * g.O + int64_t(gi) * Og) * P, P, col, P,
                      T(0), part + n * WN + int64_t(gi) * Og * R, R);
      }
    }
  });
  reduce_partials(part, g.N, WN, dw.data<T>());
}

// ------------------------------------------------------------------ tiny outputs, batched over samples
// A conv whose output plane is tiny (P = Ho*Wo <= kTinyP: the auxiliary head's 1x1 conv on 2x2 and
// its 2x2 conv to 1x1) makes a per-sample GEMM with P columns that reads the whole weight for them:
// GEMV-shaped, bound by the weight's traffic (768 x 512 floats per sample for the 2x2 conv), and
// OpenBLAS's chunked calls for it. Here the samples go in fixed blocks of B = kTinyCols / P, their
// im2col columns side by side (column i*P + p of a block is sample n0 + i, output p): one GEMM per
// block reads the weight once for B*P columns. The blocks do not depend on the thread count, so
// neither do the results. The GEMMs are the register-blocked kernels of small_gemm.h at any size
// (all operands of a block stay in L2).
constexpr int kTinyP = 16, kTinyCols = 32;
bool tiny_output(const ConvGeom& g) { return g.g == 1 && g.P() <= kTinyP && !is_depthwise(g); }

struct TinyBlocks {
  int B;       // samples per block
  int64_t nb;  // blocks
  explicit TinyBlocks(const ConvGeom& g) : B(std::max(1, kTinyCols / g.P())), nb((g.N + B - 1) / B) {}
};

// f(b, n0, bn, ld) for every block b (samples [n0, n0 + bn), bn*P = ld columns), over the pool.
template <typename F>
void for_each_tiny_block(const ConvGeom& g, const TinyBlocks& tb, F f) {
  parallel_for(tb.nb, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t b = lo_; b < hi_; ++b) {
      const int64_t n0 = b * tb.B;
      const int bn = int(std::min<int64_t>(tb.B, g.N - n0));
      f(b, n0, bn, bn * g.P());
    }
  });
}

template <typename T>
void tiny_fwd(const Tensor& x, const Tensor& w, Tensor& y, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* Wt = w.data<T>();
  T* Y = y.data<T>();
  const int P = g.P(), R = g.C * g.KH * g.KW;
  for_each_tiny_block(g, TinyBlocks(g), [&](int64_t, int64_t n0, int bn, int ld) {
    T* col = scratch_t<T>(kSlotCol, size_t(R) * ld);
    T* out = scratch_t<T>(kSlotAux, size_t(g.O) * ld);
    for (int i = 0; i < bn; ++i) im2col(X + (n0 + i) * g.xsn, g, 0, g.C, col + int64_t(i) * P, ld);
    small_gemm_nn(false, g.O, ld, R, T(1), Wt, R, col, ld, T(0), out, ld);
    for (int i = 0; i < bn; ++i)
      for (int o = 0; o < g.O; ++o)
        for (int p = 0; p < P; ++p) Y[((n0 + i) * g.O + o) * P + p] = out[int64_t(o) * ld + i * P + p];
  });
}

// dY of a block's samples as [O, bn*P] (column i*P + p).
template <typename T>
void tiny_gather_dy(const T* DY, const ConvGeom& g, int64_t n0, int bn, T* dyb) {
  const int P = g.P(), ld = bn * P;
  for (int i = 0; i < bn; ++i)
    for (int o = 0; o < g.O; ++o)
      for (int p = 0; p < P; ++p) dyb[int64_t(o) * ld + i * P + p] = DY[((n0 + i) * g.O + o) * P + p];
}

template <typename T>
void tiny_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvGeom& g) {
  const T* DY = dy.data<T>();
  const T* Wt = w.data<T>();
  T* DX = dx.data<T>();
  const int P = g.P(), R = g.C * g.KH * g.KW;
  const int64_t CHW = int64_t(g.C) * g.H * g.W;
  for_each_tiny_block(g, TinyBlocks(g), [&](int64_t, int64_t n0, int bn, int ld) {
    T* dyb = scratch_t<T>(kSlotAux, size_t(g.O) * ld);
    T* col = scratch_t<T>(kSlotCol, size_t(R) * ld);
    tiny_gather_dy(DY, g, n0, bn, dyb);
    small_gemm_nn(true, R, ld, g.O, T(1), Wt, R, dyb, ld, T(0), col, ld);  // W^T dY
    std::memset(DX + n0 * CHW, 0, sizeof(T) * size_t(bn * CHW));
    for (int i = 0; i < bn; ++i) col2im_add(col + int64_t(i) * P, g, 0, g.C, DX + (n0 + i) * CHW, ld);
  });
}

template <typename T>
void tiny_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const ConvGeom& g) {
  const T* X = x.data<T>();
  const T* DY = dy.data<T>();
  const int P = g.P(), R = g.C * g.KH * g.KW;
  const int64_t WN = int64_t(g.O) * R;
  const TinyBlocks tb(g);
  // Per-block partial gradients, reduced in block order afterwards (deterministic).
  T* part = scratch_t<T>(kSlotPartial, size_t(tb.nb) * WN);
  for_each_tiny_block(g, tb, [&](int64_t b, int64_t n0, int bn, int ld) {
    T* dyb = scratch_t<T>(kSlotAux, size_t(g.O) * ld);
    T* col = scratch_t<T>(kSlotCol, size_t(R) * ld);
    tiny_gather_dy(DY, g, n0, bn, dyb);
    for (int i = 0; i < bn; ++i) im2col(X + (n0 + i) * g.xsn, g, 0, g.C, col + int64_t(i) * P, ld);
    small_gemm_nt(g.O, R, ld, T(1), dyb, ld, col, ld, T(0), part + b * WN, R);  // dY col^T
  });
  reduce_partials(part, int(tb.nb), WN, dw.data<T>());
}

// ------------------------------------------------------------------ dispatch
void check_dtype(const Tensor& t, const char* what) {
  ASAP_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, what,
             ": CPU conv kernels support float32 and float64, got ", dtype_name(t.dtype()));
}

template <typename T>
void fwd_t(const Tensor& x, const Tensor& w, Tensor& y, const ConvGeom& g) {
  if (tiny_output(g)) tiny_fwd<T>(x, w, y, g);
  else if (is_depthwise(g)) dw_fwd<T>(x, w, y, g);
  else if (is_pointwise(g)) pw_fwd<T>(x, w, y, g);
  else gen_fwd<T>(x, w, y, g);
}
template <typename T>
void bwd_data_t(const Tensor& dy, const Tensor& w, Tensor& dx, const ConvGeom& g) {
  if (tiny_output(g)) tiny_bwd_data<T>(dy, w, dx, g);
  else if (is_depthwise(g)) dw_bwd_data<T>(dy, w, dx, g);
  else if (is_pointwise(g)) pw_bwd_data<T>(dy, w, dx, g);
  else gen_bwd_data<T>(dy, w, dx, g);
}
template <typename T>
void bwd_weight_t(const Tensor& x, const Tensor& dy, Tensor& dw, const ConvGeom& g) {
  if (tiny_output(g)) tiny_bwd_weight<T>(x, dy, dw, g);
  else if (is_depthwise(g)) dw_bwd_weight<T>(x, dy, dw, g);
  else if (is_pointwise(g)) pw_bwd_weight<T>(x, dy, dw, g);
  else gen_bwd_weight<T>(x, dy, dw, g);
}

void conv2d_fwd_cpu(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) {
  check_dtype(x, "conv2d_fwd");
  ConvGeom g = make_geom(x, w, y, p);
  if (x.dtype() == DType::F32) fwd_t<float>(x, w, y, g);
  else fwd_t<double>(x, w, y, g);
}
void conv2d_bwd_data_cpu(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p) {
  check_dtype(dy, "conv2d_bwd_data");
  ConvGeom g = make_geom(dx, w, dy, p);
  if (dy.dtype() == DType::F32) bwd_data_t<float>(dy, w, dx, g);
  else bwd_data_t<double>(dy, w, dx, g);
}
void conv2d_bwd_weight_cpu(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p) {
  check_dtype(x, "conv2d_bwd_weight");
  ConvGeom g = make_geom(x, dw, dy, p);
  if (x.dtype() == DType::F32) bwd_weight_t<float>(x, dy, dw, g);
  else bwd_weight_t<double>(x, dy, dw, g);
}

void check_relu_pw(const ConvGeom& g, const char* what) {
  ASAP_CHECK_SHAPE(g.KH == 1 && g.KW == 1 && g.pad == 0 && g.d == 1 && g.g == 1, what,
                   ": needs a 1x1 kernel without padding, dilation or groups");
}
void relu_pw_fwd_cpu(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) {
  check_dtype(x, "relu_pw_fwd");
  ConvGeom g = make_geom(x, w, y, p);
  check_relu_pw(g, "relu_pw_fwd");
  if (x.dtype() == DType::F32) pw_fwd<float, true>(x, w, y, g);
  else pw_fwd<double, true>(x, w, y, g);
}
void relu_pw_bwd_cpu(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw,
                     const Conv2dParams& p) {
  check_dtype(x, "relu_pw_bwd");
  ConvGeom g = make_geom(x, w, dy, p);
  check_relu_pw(g, "relu_pw_bwd");
  if (x.dtype() == DType::F32) relu_pw_bwd_t<float>(x, w, dy, dx, dw, g);
  else relu_pw_bwd_t<double>(x, w, dy, dx, dw, g);
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, conv2d_fwd, conv2d_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, conv2d_bwd_data, conv2d_bwd_data_cpu);
ASAP_REGISTER_KERNEL(CPU, conv2d_bwd_weight, conv2d_bwd_weight_cpu);
ASAP_REGISTER_KERNEL(CPU, relu_pw_fwd, relu_pw_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, relu_pw_bwd, relu_pw_bwd_cpu);

}  // namespace asap::cpu
