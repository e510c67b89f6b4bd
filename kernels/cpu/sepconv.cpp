// Fused separable block on the CPU: y = pw(dw(relu(x))), one sample per OpenMP task.
// Per sample, ReLU is applied while copying each input plane into its zero-padded buffer, the
// depthwise result (mid_n, C x Ho*Wo, tens of KB) is produced straight into `mid` and then
// consumed by the 1x1 GEMM while still in L2; relu(x) and the depthwise output never make a
// round trip through memory as separate tensors. The arithmetic is the same sequence of
// operations as relu -> conv2d(depthwise) -> conv2d(1x1) on this backend, so the fused and
// unfused paths agree to the last bit (tests check up to rounding).
#include "kernels/cpu/conv_common.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/isa_target.h"

namespace asap::cpu {
ASAP_CPU_TARGET_BEGIN  // kernels/cpu/isa_target.h: this file has AVX2 and AVX-512 variants
namespace {

struct SepGeom {
  ConvGeom g;  // depthwise part: O == C, groups == C
  int O;       // 1x1 output channels
};

SepGeom make_sep_geom(const Tensor& x, const Tensor& wd, const Tensor& wp, const Tensor& y,
                      const Conv2dParams& p) {
  SepGeom s;
  Conv2dParams pd = p;
  pd.groups = int(x.dim(1));
  s.g = make_geom(x, wd, y, pd);
  s.O = int(wp.dim(0));
  return s;
}

template <typename T>
void fwd_t(const Tensor& x, const Tensor& wd, const Tensor& wp, Tensor& mid, Tensor& y, const SepGeom& sg) {
  const ConvGeom& g = sg.g;
  const T* X = x.data<T>();
  const T* WD = wd.data<T>();
  const T* WP = wp.data<T>();
  T* Y = y.data<T>();
  T* MID = mid.defined() ? mid.data<T>() : nullptr;
  const int Hp = g.Hp(), Wp = g.Wp(), KK = g.KH * g.KW, P = g.P(), C = g.C;
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      T* midn = MID ? MID + n * C * P : scratch_t<T>(kSlotMid, size_t(C) * P);
      T* xp = scratch_t<T>(kSlotPlane, size_t(Hp) * Wp);
      T* acc = scratch_t<T>(kSlotAux, size_t(g.Ho) * Wp);
      for (int c = 0; c < C; ++c) {
        pad_plane<T, true>(X + n * g.xsn + c * g.xsc, g.xsh, g.xsw, g.H, g.W, g.pad, xp);
        dw_plane_fwd(xp, Wp, WD + c * KK, g, midn + int64_t(c) * P, acc);
      }
      gemm_local<T>(false, false, sg.O, P, C, T(1), WP, C, midn, P, T(0), Y + n * sg.O * P, P);
    }
  });
}

template <typename T>
void bwd_t(const Tensor& x, const Tensor& wd, const Tensor& wp, const Tensor& mid, const Tensor& dy,
           Tensor& dx, Tensor& dwd, Tensor& dwp, const SepGeom& sg) {
  const ConvGeom& g = sg.g;
  const T* X = x.data<T>();
  const T* WD = wd.data<T>();
  const T* WP = wp.data<T>();
  const T* DY = dy.data<T>();
  const T* MID = dwp.defined() ? mid.data<T>() : nullptr;
  T* DX = dx.defined() ? dx.data<T>() : nullptr;
  const bool want_dwd = dwd.defined(), want_dmid = dx.defined() || want_dwd;
  const int Hp = g.Hp(), Wp = g.Wp(), KK = g.KH * g.KW, P = g.P(), C = g.C, O = sg.O;
  const int64_t OC = int64_t(O) * C, CKK = int64_t(C) * KK, HW = int64_t(g.H) * g.W;
  // Per-sample partial weight gradients, reduced in sample order afterwards (deterministic).
  T* dwp_part = MID ? scratch_t<T>(kSlotPartial, size_t(g.N) * OC) : nullptr;
  T* dwd_part = want_dwd ? scratch_t<T>(kSlotPartial2, size_t(g.N) * CKK) : nullptr;
  parallel_for(g.N, true, [&](int64_t lo_, int64_t hi_) {
    for (int64_t n = lo_; n < hi_; ++n) {
      const T* dyn = DY + n * O * P;
      if (MID) gemm_local<T>(false, true, O, C, P, T(1), dyn, P, MID + n * C * P, P, T(0), dwp_part + n * OC, C);
      if (!want_dmid) continue;
      T* dmid = scratch_t<T>(kSlotDmid, size_t(C) * P);
      gemm_local<T>(true, false, C, P, O, T(1), WP, C, dyn, P, T(0), dmid, P);
      T* dyw = scratch_t<T>(kSlotAux, size_t(g.Ho) * Wp);
      T* xp = scratch_t<T>(kSlotPlane, size_t(Hp) * Wp);
      const bool gather = dw_bwd_gather_ok(g);
      T* dxp = scratch_t<T>(kSlotPlane2, gather ? size_t(g.H) * dw_bwd_gather_ld(g) : size_t(Hp) * Wp);
      T* dyq = gather ? scratch_t<T>(kSlotCol, size_t(dw_bwd_gather_rows(g)) * dw_bwd_gather_ld(g)) : nullptr;
      for (int c = 0; c < C; ++c) {
        const T* dm = dmid + int64_t(c) * P;
        const T* xc = X + n * g.xsn + c * g.xsc;
        if (g.s == 1) dw_widen(dm, g, Wp, dyw);
        if (want_dwd) {
          pad_plane<T, true>(xc, g.xsh, g.xsw, g.H, g.W, g.pad, xp);
          dw_plane_bwd_weight(xp, Wp, dm, dyw, g, dwd_part + (n * C + c) * KK);
        }
        if (DX) {
          // dx plane: gather form into a wide plane (row stride ld) when possible, else scatter.
          const T* base;
          int64_t ld;
          if (gather) {
            ld = dw_plane_bwd_data_gather(dm, WD + c * KK, g, dyq, dxp);
            base = dxp;
          } else {
            dw_plane_bwd_data(dm, dyw, WD + c * KK, g, Hp, Wp, dxp);
            ld = Wp;
            base = dxp + int64_t(g.pad) * Wp + g.pad;
          }
          T* out = DX + (n * C + c) * HW;
          for (int h = 0; h < g.H; ++h) {
            const T* src = base + int64_t(h) * ld;
            const T* xr = xc + h * g.xsh;
            T* o = out + int64_t(h) * g.W;
            if (g.xsw == 1) {
  #pragma omp simd
              for (int w = 0; w < g.W; ++w) {  // ReLU mask; both loads unconditional so it vectorises
                const T v = src[w], xv = xr[w];
                o[w] = xv > T(0) ? v : T(0);
              }
            } else {
              for (int w = 0; w < g.W; ++w) o[w] = xr[w * g.xsw] > T(0) ? src[w] : T(0);
            }
          }
        }
      }
    }
  });
  if (MID) reduce_partials(dwp_part, g.N, OC, dwp.data<T>());
  if (want_dwd) reduce_partials(dwd_part, g.N, CKK, dwd.data<T>());
}

void check_dtype(const Tensor& t, const char* what) {
  ASAP_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, what,
             ": CPU kernels support float32 and float64, got ", dtype_name(t.dtype()));
}

void sepblock_fwd_cpu(const Tensor& x, const Tensor& wd, const Tensor& wp, Tensor& mid, Tensor& y,
                      const Conv2dParams& p) {
  check_dtype(x, "sepblock_fwd");
  SepGeom sg = make_sep_geom(x, wd, wp, y, p);
  if (x.dtype() == DType::F32) fwd_t<float>(x, wd, wp, mid, y, sg);
  else fwd_t<double>(x, wd, wp, mid, y, sg);
}

// dx, dwd, dwp may be undefined (not wanted); mid is required when dwp is wanted.
void sepblock_bwd_cpu(const Tensor& x, const Tensor& wd, const Tensor& wp, const Tensor& mid,
                      const Tensor& dy, Tensor& dx, Tensor& dwd, Tensor& dwp, const Conv2dParams& p) {
  check_dtype(x, "sepblock_bwd");
  ASAP_CHECK(!dwp.defined() || mid.defined(), "sepblock_bwd: the 1x1 weight gradient needs mid");
  SepGeom sg = make_sep_geom(x, wd, wp, dy, p);
  if (x.dtype() == DType::F32) bwd_t<float>(x, wd, wp, mid, dy, dx, dwd, dwp, sg);
  else bwd_t<double>(x, wd, wp, mid, dy, dx, dwd, dwp, sg);
}

}  // namespace
ASAP_CPU_TARGET_END

ASAP_REGISTER_KERNEL(CPU, sepblock_fwd, sepblock_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, sepblock_bwd, sepblock_bwd_cpu);

}  // namespace asap::cpu
