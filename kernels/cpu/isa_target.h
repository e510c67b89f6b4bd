// Compiling one CPU kernel file for one instruction set (kernels/cpu/isa.h). The build compiles
// such a file once as it is (the x86-64 baseline) and once per variant through a generated unit
// that defines ASAP_CPU_VARIANT (1 = AVX2+FMA, 2 = AVX-512) and includes it. The file includes
// this header after all its other includes and brackets its kernels:
//
//   #include ...everything...
//   #include "kernels/cpu/isa_target.h"
//   namespace asap::cpu {
//   ASAP_CPU_TARGET_BEGIN
//   namespace { ...kernels... }  // namespace
//   ASAP_CPU_TARGET_END
//   ASAP_REGISTER_KERNEL(CPU, relu_fwd, relu_fwd);  // into the variant's table in a variant unit
//   }
//
// Why a pragma and not -mavx2 on the command line: every header is included before the pragma,
// so the inline functions headers define (std::vector, Tensor accessors, ...) are compiled for the
// baseline in every object. With -mavx2, an AVX2 copy of such a function could be the one the
// linker keeps, and the portable build would crash on an older CPU. What comes after the pragma
// is in an anonymous namespace (the kernel files) or in the variant's own inline namespace
// (ASAP_CPU_VARIANT_NS_BEGIN, for shared headers such as conv_common.h), so no symbol is defined
// twice with different code; the registrations stay outside the target region, because static
// initialisation runs on every CPU. tests/lint_cpu_isa.sh checks the objects for both.
#pragma once
#include "engine/kernel_table.h"
#include "kernels/cpu/isa.h"

#if defined(ASAP_CPU_VARIANT)

#if ASAP_CPU_VARIANT == 1
#define ASAP_CPU_TARGET_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define ASAP_CPU_VARIANT_NS_BEGIN inline namespace isa_avx2 {
#define ASAP_CPU_VARIANT_ISA ::asap::cpu::CpuIsa::AVX2
#define ASAP_CPU_VEC_BYTES 32
#elif ASAP_CPU_VARIANT == 2
#define ASAP_CPU_TARGET_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,avx512f,avx512bw,avx512dq,avx512vl\")")
#define ASAP_CPU_VARIANT_NS_BEGIN inline namespace isa_avx512 {
#define ASAP_CPU_VARIANT_ISA ::asap::cpu::CpuIsa::AVX512
#define ASAP_CPU_VEC_BYTES 64
#else
#error "ASAP_CPU_VARIANT must be 1 (AVX2+FMA) or 2 (AVX-512)"
#endif
#define ASAP_CPU_TARGET_END _Pragma("GCC pop_options")
#define ASAP_CPU_VARIANT_NS_END }

// Inside a variant unit the registrations fill the variant's table; the baseline's stay as they are.
#undef ASAP_REGISTER_KERNEL
#define ASAP_REGISTER_KERNEL(DEV, name, fn)                                                     \
  static_assert(::asap::DeviceType::DEV == ::asap::DeviceType::CPU, "CPU kernel files only");  \
  static const bool asap_reg_##name = [] {                                                      \
    ::asap::cpu::cpu_variant_table(ASAP_CPU_VARIANT_ISA).name = fn;                             \
    return true;                                                                                \
  }()

#else  // the baseline unit: nothing changes

#define ASAP_CPU_TARGET_BEGIN
#define ASAP_CPU_TARGET_END
#define ASAP_CPU_VEC_BYTES 16  // SSE2: the width explicit vector code (GCC vector extension) uses
#define ASAP_CPU_VARIANT_NS_BEGIN
#define ASAP_CPU_VARIANT_NS_END

#endif
