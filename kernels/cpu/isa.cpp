#include "kernels/cpu/isa.h"

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "engine/error.h"

namespace asap::cpu {
namespace {

// The table is a struct of function pointers only; overlaying one on another goes slot by slot.
using Slot = void (*)();
static_assert(std::is_trivially_copyable_v<KernelTable> && std::is_standard_layout_v<KernelTable>);
static_assert(sizeof(KernelTable) % sizeof(Slot) == 0, "KernelTable holds function pointers only");
constexpr size_t kSlots = sizeof(KernelTable) / sizeof(Slot);

Slot slot(const KernelTable& t, size_t i) {
  Slot s;
  std::memcpy(&s, reinterpret_cast<const char*>(&t) + i * sizeof(Slot), sizeof(Slot));
  return s;
}

KernelTable& live_table() {
  static KernelTable t;
  return t;
}
CpuIsa g_active = CpuIsa::SSE2;

void build_live_table(CpuIsa isa) {
  KernelTable t = kernel_table_mut(DeviceType::CPU);
  if (isa != CpuIsa::SSE2) {
    const KernelTable& v = cpu_variant_table(isa);
    for (size_t i = 0; i < kSlots; ++i)
      if (Slot s = slot(v, i)) std::memcpy(reinterpret_cast<char*>(&t) + i * sizeof(Slot), &s, sizeof(Slot));
  }
  live_table() = t;
  g_active = isa;
}

std::string usable_names() {
  std::string s;
  for (CpuIsa i : usable_cpu_isas()) s += (s.empty() ? "" : ", ") + std::string(cpu_isa_name(i));
  return s;
}

void check_usable(CpuIsa isa, const char* how) {
  if (!cpu_isa_compiled(isa))
    throw Error(std::string(how) + cpu_isa_name(isa) + ": this build has no " + cpu_isa_name(isa) +
                " kernels (usable here: " + usable_names() + ")");
  if (!cpu_supports(isa))
    throw Error(std::string(how) + cpu_isa_name(isa) + ": this CPU does not support it (usable here: " +
                usable_names() + ")");
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::SSE2: return "sse2";
    case CpuIsa::AVX2: return "avx2";
    case CpuIsa::AVX512: return "avx512";
  }
  return "?";
}

bool cpu_supports(CpuIsa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  switch (isa) {
    case CpuIsa::SSE2: return true;
    case CpuIsa::AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::AVX512:
      return cpu_supports(CpuIsa::AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return isa == CpuIsa::SSE2;  // other architectures: the baseline build only
#endif
}

bool cpu_isa_compiled(CpuIsa isa) {
  if (isa == CpuIsa::SSE2) return true;
  const KernelTable& v = cpu_variant_table(isa);
  for (size_t i = 0; i < kSlots; ++i)
    if (slot(v, i)) return true;
  return false;
}

std::vector<CpuIsa> usable_cpu_isas() {
  std::vector<CpuIsa> out;
  for (int i = 0; i < kCpuIsaCount; ++i)
    if (cpu_isa_compiled(CpuIsa(i)) && cpu_supports(CpuIsa(i))) out.push_back(CpuIsa(i));
  return out;
}

// AVX2 where the CPU has it, even on an AVX-512 CPU: measured side by side on a 2-core AVX-512 Xeon
// (docs/results.md, 2026-12-01), the AVX-512 kernels were no faster than the AVX2 ones and 8 %
// slower on the train step (512-bit code lowers the clock; these kernels are memory bound).
CpuIsa auto_cpu_isa() {
  const std::vector<CpuIsa> u = usable_cpu_isas();
  for (CpuIsa i : u)
    if (i == CpuIsa::AVX2) return i;
  return u.back();
}

CpuIsa requested_cpu_isa() {
  const char* env = std::getenv("ASAP_CPU_ISA");
  const std::string want = env ? env : "";
  if (want.empty() || want == "auto") return auto_cpu_isa();
  for (int i = 0; i < kCpuIsaCount; ++i)
    if (want == cpu_isa_name(CpuIsa(i))) {
      check_usable(CpuIsa(i), "ASAP_CPU_ISA=");
      return CpuIsa(i);
    }
  throw Error("ASAP_CPU_ISA=" + want + ": unknown instruction set (use sse2, avx2, avx512 or auto)");
}

const KernelTable& cpu_kernels() {
  // Chosen at the first use, after static initialisation has registered every kernel. A throw
  // (a bad ASAP_CPU_ISA) leaves it unchosen, so every later use reports the same error.
  static const bool chosen = (build_live_table(requested_cpu_isa()), true);
  (void)chosen;
  return live_table();
}

CpuIsa active_cpu_isa() {
  cpu_kernels();
  return g_active;
}

void set_cpu_isa(CpuIsa isa) {
  check_usable(isa, "cpu isa ");
  cpu_kernels();
  build_live_table(isa);
}

KernelTable& cpu_variant_table(CpuIsa isa) {
  static KernelTable tables[kCpuIsaCount];
  return tables[static_cast<int>(isa)];
}

}  // namespace asap::cpu
