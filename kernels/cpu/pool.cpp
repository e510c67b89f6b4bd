// CPU max / average / global average pooling on NCHW planes, parallel over N*C planes.
// The window loops are ordered (output row, kernel row, kernel column, output column) so the
// innermost loop walks an output row: unit stride for stride-1 pooling, which vectorises, and
// for max pooling this order still visits each window in row-major scan order (ties -> first).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

using cpu::parallel_for;

// Per-call window geometry shared read-only by all threads.
struct PoolGeom {
  int64_t planes, H, W, Ho, Wo;
  int k, s, p;
  std::vector<int64_t> ow_lo, ow_hi;  // per kernel column: output columns whose tap is inside
  std::vector<int32_t> wcount;        // per output column: taps inside the row (no padding)
};

PoolGeom pool_geom(const Tensor& x, const Tensor& y, const Pool2dParams& pp) {
  PoolGeom g;
  g.planes = x.dim(0) * x.dim(1);
  g.H = x.dim(2);
  g.W = x.dim(3);
  g.Ho = y.dim(2);
  g.Wo = y.dim(3);
  g.k = pp.kernel;
  g.s = pp.stride;
  g.p = pp.padding;
  g.ow_lo.resize(g.k);
  g.ow_hi.resize(g.k);
  for (int kw = 0; kw < g.k; ++kw) {
    // input column = ow*s - p + kw must lie in [0, W)
    const int64_t need = g.p - kw;
    const int64_t lo = need <= 0 ? 0 : (need + g.s - 1) / g.s;
    const int64_t num = g.W - 1 + g.p - kw;
    const int64_t hi = num < 0 ? 0 : std::min<int64_t>(num / g.s + 1, g.Wo);
    g.ow_lo[kw] = lo;
    g.ow_hi[kw] = std::max(lo, hi);
  }
  g.wcount.resize(g.Wo);
  for (int64_t ow = 0; ow < g.Wo; ++ow) {
    const int64_t ws = ow * g.s - g.p;
    g.wcount[ow] = static_cast<int32_t>(std::min<int64_t>(ws + g.k, g.W) - std::max<int64_t>(ws, 0));
  }
  return g;
}

template <typename T>
void maxpool_fwd_impl(const Tensor& x, Tensor& y, Tensor& argmax, const PoolGeom& g) {
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  int32_t* ap = argmax.data<int32_t>();
  const int64_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  parallel_for(g.planes, g.planes * out_plane > 16384, [&](int64_t lo_, int64_t hi_) {
    // 3x3 stride 2 (every reduction cell): the plane's even and odd columns are split into two
    // half-width planes first, so each tap of an interior window is a unit-stride load.
    const bool split = g.s == 2 && g.k == 3;
    const int64_t Wh = (g.W + 1) / 2;
    thread_local std::vector<T> halves;
    if (split) halves.resize(static_cast<size_t>(2 * g.H * Wh));
    // 3x3 stride 1 with padding <= 1 (every max_pool_3x3 of a normal cell): the plane is copied
    // into a buffer with a border of -inf, so every output, border ones included, is the same
    // vectorised nine-tap loop (the border windows were scalar, a third of the time at 7x7).
    // A -inf tap never passes the strict '>' against the initial -inf, so padding never wins, and
    // the index starts at the window's first tap inside the image: results and argmax equal
    // window()'s, ties to the first in scan order and NaN included.
    const bool padded3 = g.s == 1 && g.k == 3 && g.p <= 1 && g.Ho == g.H + 2 * g.p - 2 &&
                         g.Wo == g.W + 2 * g.p - 2;
    const int64_t Wq = g.W + 2 * g.p;
    thread_local std::vector<T> padbuf;
    if (padded3) padbuf.assign(static_cast<size_t>((g.H + 2 * g.p) * Wq), -std::numeric_limits<T>::infinity());
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      const T* xpl = xp + pl * in_plane;
      if (padded3) {
        T* q = padbuf.data();
        for (int64_t h = 0; h < g.H; ++h) std::memcpy(q + (h + g.p) * Wq + g.p, xpl + h * g.W, sizeof(T) * g.W);
        // 32-bit column and index arithmetic: 64-bit ones cost a conversion per tap in the vector loop.
        const int32_t W = static_cast<int32_t>(g.W), P = g.p, Wo = static_cast<int32_t>(g.Wo);
        const int32_t Wq32 = static_cast<int32_t>(Wq);
        for (int32_t oh = 0; oh < static_cast<int32_t>(g.Ho); ++oh) {
          const T* base = q + int64_t(oh) * Wq;
          const int32_t c0 = (oh - P) * W - P;  // index of tap (0, 0) at ow = 0
          const int32_t first_row = std::max(oh - P, 0) * W;
          T* __restrict yr = yp + pl * out_plane + int64_t(oh) * Wo;
          int32_t* __restrict ar = ap + pl * out_plane + int64_t(oh) * Wo;
#pragma omp simd
          for (int32_t ow = 0; ow < Wo; ++ow) {
            T best = -std::numeric_limits<T>::infinity();
            int32_t arg = first_row + (ow > P ? ow - P : 0);
#define ASAP_MAXPOOL_PTAP(r, c)                                                 \
  {                                                                             \
    const T v = base[(r) * Wq32 + ow + (c)];                                    \
    const bool gt = (v > best) | (v != v);                                      \
    best = gt ? v : best;                                                       \
    arg = gt ? c0 + ((r) * W + ow + (c)) : arg;                                 \
  }
            ASAP_MAXPOOL_PTAP(0, 0) ASAP_MAXPOOL_PTAP(0, 1) ASAP_MAXPOOL_PTAP(0, 2)
            ASAP_MAXPOOL_PTAP(1, 0) ASAP_MAXPOOL_PTAP(1, 1) ASAP_MAXPOOL_PTAP(1, 2)
            ASAP_MAXPOOL_PTAP(2, 0) ASAP_MAXPOOL_PTAP(2, 1) ASAP_MAXPOOL_PTAP(2, 2)
#undef ASAP_MAXPOOL_PTAP
            yr[ow] = best;
            ar[ow] = arg;
          }
        }
        continue;
      }
      if (split) {
        T* ev = halves.data();
        T* od = ev + g.H * Wh;
        for (int64_t h = 0; h < g.H; ++h) {
          const T* xr = xpl + h * g.W;
          for (int64_t j = 0; j < g.W / 2; ++j) {
            ev[h * Wh + j] = xr[2 * j];
            od[h * Wh + j] = xr[2 * j + 1];
          }
          if (g.W & 1) ev[h * Wh + g.W / 2] = xr[g.W - 1];
        }
      }
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t hs = oh * g.s - g.p;
        const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min<int64_t>(hs + g.k, g.H);
        T* __restrict yr = yp + pl * out_plane + oh * g.Wo;
        int32_t* __restrict ar = ap + pl * out_plane + oh * g.Wo;
        // One window at a time with the running max in registers: strided pools everywhere, and
        // the border columns of stride-1 pools (where the window is clipped).
        auto window = [&](int64_t ow) {
          const int64_t ws = ow * g.s - g.p;
          const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min<int64_t>(ws + g.k, g.W);
          T best = -std::numeric_limits<T>::infinity();
          int32_t arg = static_cast<int32_t>(h0 * g.W + w0);  // valid even for an all -inf window
          for (int64_t h = h0; h < h1; ++h) {
            const T* xr = xpl + h * g.W;
            for (int64_t w = w0; w < w1; ++w) {
              const T v = xr[w];
              const bool gt = (v > best) | (v != v);  // '|' not '||': no branch; NaN propagates
              best = gt ? v : best;
              arg = gt ? static_cast<int32_t>(h * g.W + w) : arg;
            }
          }
          yr[ow] = best;
          ar[ow] = arg;
        };
        if (split && h1 - h0 == 3) {
          // Interior columns: input column 2*ow + t with t = kw - p in [-p, 2 - p]; t even reads the
          // even half at ow + t/2, t odd the odd half at ow + floor(t/2). Same scan order, strict
          // '>' and NaN rule as window(), so the result and argmax are identical to it.
          const int64_t ilo = std::min<int64_t>((g.p + 1) / 2, g.Wo);
          const int64_t last = g.W - 3 + g.p;  // 2 * ow <= last keeps the window's last column inside
          const int64_t ihi = last < 0 ? ilo : std::max<int64_t>(ilo, std::min<int64_t>(g.Wo, last / 2 + 1));
          for (int64_t ow = 0; ow < ilo; ++ow) window(ow);
          const T* src[3][3];
          int32_t idx0[3][3];
          for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 3; ++c) {
              const int64_t t = c - g.p, q = t & 1, j = (t - q) / 2;  // t = 2 j + q, q in {0, 1}
              src[r][c] = halves.data() + q * g.H * Wh + (h0 + r) * Wh + j;
              idx0[r][c] = static_cast<int32_t>((h0 + r) * g.W + t);
            }
#pragma omp simd
          for (int64_t ow = ilo; ow < ihi; ++ow) {
            T best = -std::numeric_limits<T>::infinity();
            int32_t arg = idx0[0][0] + static_cast<int32_t>(2 * ow);
            for (int r = 0; r < 3; ++r)
              for (int c = 0; c < 3; ++c) {
                const T v = src[r][c][ow];
                const bool gt = (v > best) | (v != v);
                best = gt ? v : best;
                arg = gt ? idx0[r][c] + static_cast<int32_t>(2 * ow) : arg;
              }
            yr[ow] = best;
            ar[ow] = arg;
          }
          for (int64_t ow = ihi; ow < g.Wo; ++ow) window(ow);
          continue;
        }
        if (g.s != 1) {
          for (int64_t ow = 0; ow < g.Wo; ++ow) window(ow);
          continue;
        }
        if (g.k == 3 && h1 - h0 == 3) {
          // 3x3, stride 1, all three rows inside the image (every row but the borders): interior
          // columns are vectorised across output columns with the nine taps unrolled and the running
          // max and index in registers; nothing is stored until the end. Taps go in scan order with
          // strict '>', so the first maximum wins ties and NaN propagates, as in window().
          const int64_t ilo = std::min<int64_t>(g.p, g.Wo);
          const int64_t ihi = std::max<int64_t>(ilo, std::min<int64_t>(g.Wo, g.W - 3 + g.p + 1));
          for (int64_t ow = 0; ow < ilo; ++ow) window(ow);
          const int64_t W = g.W, c0 = h0 * g.W - g.p;
          const T* base = xpl + c0;
#pragma omp simd
          for (int64_t ow = ilo; ow < ihi; ++ow) {
            T best = -std::numeric_limits<T>::infinity();
            int32_t arg = static_cast<int32_t>(c0 + ow);
#define ASAP_MAXPOOL_TAP(r, c)                                                  \
  {                                                                             \
    const T v = base[(r) * W + ow + (c)];                                       \
    const bool gt = (v > best) | (v != v);                                      \
    best = gt ? v : best;                                                       \
    arg = gt ? static_cast<int32_t>(c0 + (r) * W + ow + (c)) : arg;             \
  }
            ASAP_MAXPOOL_TAP(0, 0) ASAP_MAXPOOL_TAP(0, 1) ASAP_MAXPOOL_TAP(0, 2)
            ASAP_MAXPOOL_TAP(1, 0) ASAP_MAXPOOL_TAP(1, 1) ASAP_MAXPOOL_TAP(1, 2)
            ASAP_MAXPOOL_TAP(2, 0) ASAP_MAXPOOL_TAP(2, 1) ASAP_MAXPOOL_TAP(2, 2)
#undef ASAP_MAXPOOL_TAP
            yr[ow] = best;
            ar[ow] = arg;
          }
          for (int64_t ow = ihi; ow < g.Wo; ++ow) window(ow);
          continue;
        }
        // Other stride-1 rows: row-wise over (kernel row, kernel column, output column) so the
        // innermost loop is unit stride and vectorises with blends. Start from -inf pointing at the
        // window's first valid tap, so an all -inf window still yields a valid index and strict '>'
        // keeps the first maximum in scan order.
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          yr[ow] = -std::numeric_limits<T>::infinity();
          ar[ow] = static_cast<int32_t>(h0 * g.W + std::max<int64_t>(ow - g.p, 0));
        }
        for (int64_t h = h0; h < h1; ++h) {
          const T* xr = xpl + h * g.W;
          for (int kw = 0; kw < g.k; ++kw) {
            const int64_t off = kw - g.p;
            const int64_t lo = g.ow_lo[kw], hi = g.ow_hi[kw];
            const int32_t base = static_cast<int32_t>(h * g.W + off);
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) {
              const T v = xr[ow + off], b = yr[ow];
              const bool gt = (v > b) | (v != v);  // NaN propagates, as in PyTorch
              yr[ow] = gt ? v : b;
              ar[ow] = gt ? base + static_cast<int32_t>(ow) : ar[ow];
            }
          }
        }
      }
    }
  });
}

template <typename T>
void maxpool_bwd_impl(const Tensor& dy, const Tensor& argmax, Tensor& dx, const PoolGeom& g) {
  const T* dyp = dy.data<T>();
  const int32_t* ap = argmax.data<int32_t>();
  T* dxp = dx.data<T>();
  const int64_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  parallel_for(g.planes, g.planes * out_plane > 16384, [&](int64_t lo_, int64_t hi_) {
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      T* dxpl = dxp + pl * in_plane;
      std::memset(dxpl, 0, sizeof(T) * in_plane);
      const T* dypl = dyp + pl * out_plane;
      const int32_t* apl = ap + pl * out_plane;
      for (int64_t i = 0; i < out_plane; ++i) dxpl[apl[i]] += dypl[i];
    }
  });
}

template <typename T>
void avgpool_fwd_impl(const Tensor& x, Tensor& y, const PoolGeom& g) {
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  const int64_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  parallel_for(g.planes, g.planes * out_plane > 16384, [&](int64_t lo_, int64_t hi_) {
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      const T* xpl = xp + pl * in_plane;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t hs = oh * g.s - g.p;
        const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min<int64_t>(hs + g.k, g.H);
        T* yr = yp + pl * out_plane + oh * g.Wo;
        std::fill(yr, yr + g.Wo, T(0));
        for (int64_t h = h0; h < h1; ++h) {
          const T* xr = xpl + h * g.W;
          for (int kw = 0; kw < g.k; ++kw) {
            const int64_t off = kw - g.p;  // tap column = ow*s + off, inside [0, W) for ow in [lo, hi)
            const int64_t lo = g.ow_lo[kw], hi = g.ow_hi[kw];
            if (g.s == 1) {
  #pragma omp simd
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xr[ow + off];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xr[ow * g.s + off];
            }
          }
        }
        const T hc = static_cast<T>(h1 - h0);
        for (int64_t ow = 0; ow < g.Wo; ++ow) yr[ow] /= hc * static_cast<T>(g.wcount[ow]);
      }
    }
  });
}

template <typename T>
void avgpool_bwd_impl(const Tensor& dy, Tensor& dx, const PoolGeom& g) {
  const T* dyp = dy.data<T>();
  T* dxp = dx.data<T>();
  const int64_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  parallel_for(g.planes, g.planes * out_plane > 16384, [&](int64_t lo_, int64_t hi_) {
    // dy / divisor for one output row; thread_local so repeated calls do not allocate.
    thread_local std::vector<T> grow;
    grow.resize(static_cast<size_t>(g.Wo));
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      T* dxpl = dxp + pl * in_plane;
      std::memset(dxpl, 0, sizeof(T) * in_plane);
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t hs = oh * g.s - g.p;
        const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min<int64_t>(hs + g.k, g.H);
        const T* dyr = dyp + pl * out_plane + oh * g.Wo;
        const T hc = static_cast<T>(h1 - h0);
        T* gr = grow.data();
        for (int64_t ow = 0; ow < g.Wo; ++ow) gr[ow] = dyr[ow] / (hc * static_cast<T>(g.wcount[ow]));
        for (int64_t h = h0; h < h1; ++h) {
          T* dxr = dxpl + h * g.W;
          for (int kw = 0; kw < g.k; ++kw) {
            const int64_t off = kw - g.p;
            const int64_t lo = g.ow_lo[kw], hi = g.ow_hi[kw];
            if (g.s == 1) {
#pragma omp simd
              for (int64_t ow = lo; ow < hi; ++ow) dxr[ow + off] += gr[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dxr[ow * g.s + off] += gr[ow];
            }
          }
        }
      }
    }
  });
}

template <typename T>
void gap_fwd_impl(const Tensor& x, Tensor& y) {
  const int64_t planes = x.dim(0) * x.dim(1), hw = x.dim(2) * x.dim(3);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  parallel_for(planes, planes * hw > 16384, [&](int64_t lo_, int64_t hi_) {
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      const T* px = xp + pl * hw;
      double s = 0.0;
  #pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < hw; ++i) s += static_cast<double>(px[i]);
      yp[pl] = static_cast<T>(s / static_cast<double>(hw));
    }
  });
}

template <typename T>
void gap_bwd_impl(const Tensor& dy, Tensor& dx) {
  const int64_t planes = dx.dim(0) * dx.dim(1), hw = dx.dim(2) * dx.dim(3);
  const T* dyp = dy.data<T>();
  T* dxp = dx.data<T>();
  parallel_for(planes, planes * hw > 16384, [&](int64_t lo_, int64_t hi_) {
    for (int64_t pl = lo_; pl < hi_; ++pl) {
      const T v = dyp[pl] / static_cast<T>(hw);
      T* pdx = dxp + pl * hw;
  #pragma omp simd
      for (int64_t i = 0; i < hw; ++i) pdx[i] = v;
    }
  });
}

bool is_f64(DType dt, const char* kernel) {
  ASAP_CHECK(dt == DType::F32 || dt == DType::F64, kernel, ": unsupported dtype ", dtype_name(dt));
  return dt == DType::F64;
}

void maxpool_fwd_cpu(const Tensor& x, Tensor& y, Tensor& argmax, const Pool2dParams& p) {
  const PoolGeom g = pool_geom(x, y, p);
  if (is_f64(x.dtype(), "maxpool_fwd")) maxpool_fwd_impl<double>(x, y, argmax, g);
  else maxpool_fwd_impl<float>(x, y, argmax, g);
}
void maxpool_bwd_cpu(const Tensor& dy, const Tensor& argmax, Tensor& dx, const Pool2dParams& p) {
  const PoolGeom g = pool_geom(dx, dy, p);
  if (is_f64(dy.dtype(), "maxpool_bwd")) maxpool_bwd_impl<double>(dy, argmax, dx, g);
  else maxpool_bwd_impl<float>(dy, argmax, dx, g);
}
void avgpool_fwd_cpu(const Tensor& x, Tensor& y, const Pool2dParams& p) {
  const PoolGeom g = pool_geom(x, y, p);
  if (is_f64(x.dtype(), "avgpool_fwd")) avgpool_fwd_impl<double>(x, y, g);
  else avgpool_fwd_impl<float>(x, y, g);
}
void avgpool_bwd_cpu(const Tensor& dy, Tensor& dx, const Pool2dParams& p) {
  const PoolGeom g = pool_geom(dx, dy, p);
  if (is_f64(dy.dtype(), "avgpool_bwd")) avgpool_bwd_impl<double>(dy, dx, g);
  else avgpool_bwd_impl<float>(dy, dx, g);
}
void gap_fwd_cpu(const Tensor& x, Tensor& y) {
  if (is_f64(x.dtype(), "gap_fwd")) gap_fwd_impl<double>(x, y);
  else gap_fwd_impl<float>(x, y);
}
void gap_bwd_cpu(const Tensor& dy, Tensor& dx) {
  if (is_f64(dy.dtype(), "gap_bwd")) gap_bwd_impl<double>(dy, dx);
  else gap_bwd_impl<float>(dy, dx);
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, maxpool_fwd, maxpool_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, maxpool_bwd, maxpool_bwd_cpu);
ASAP_REGISTER_KERNEL(CPU, avgpool_fwd, avgpool_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, avgpool_bwd, avgpool_bwd_cpu);
ASAP_REGISTER_KERNEL(CPU, gap_fwd, gap_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, gap_bwd, gap_bwd_cpu);

}  // namespace asap
