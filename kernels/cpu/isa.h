// Runtime instruction-set dispatch for the CPU kernels. The hot kernel files are compiled three
// times (kernels/cpu/isa_target.h): for the x86-64 baseline (SSE2, runs anywhere), for AVX2+FMA
// and for AVX-512. At the first use of the CPU kernel table a set this CPU and its OS support is
// chosen once: the one ASAP_CPU_ISA names (sse2|avx2|avx512), or for auto / unset AVX2 when
// usable (AVX-512 measured no faster), else the baseline. Kernels without a variant keep their baseline entry. Results differ between sets
// only by rounding (FMA, vector-width reduction order); a run and its resume on one machine use
// the same set, so they still agree bit for bit.
#pragma once
#include <string>
#include <vector>

#include "engine/kernel_table.h"

namespace asap::cpu {

enum class CpuIsa : int { SSE2 = 0, AVX2 = 1, AVX512 = 2 };
constexpr int kCpuIsaCount = 3;

const char* cpu_isa_name(CpuIsa isa);  // "sse2", "avx2", "avx512"
bool cpu_supports(CpuIsa isa);         // cpuid, with the OS's register-state support
bool cpu_isa_compiled(CpuIsa isa);     // this build has that variant (SSE2 always)
std::vector<CpuIsa> usable_cpu_isas(); // supported and compiled, narrowest first
CpuIsa auto_cpu_isa();     // what `auto` picks: AVX2 when usable (faster than AVX-512 here), else the widest
// The set ASAP_CPU_ISA asks for, or auto_cpu_isa(); throws asap::Error naming the value
// when it is unknown, not compiled into this build or not supported by this CPU.
CpuIsa requested_cpu_isa();
CpuIsa active_cpu_isa();  // the set the kernel table uses (chooses it on first call)

// Switches the CPU kernel table to `isa` (tests and benchmarks compare the variants); not while
// a kernel runs. Throws like requested_cpu_isa when isa is not usable here.
void set_cpu_isa(CpuIsa isa);

// The table kernels(DeviceType::CPU) returns: baseline entries overlaid with the active variant's.
const KernelTable& cpu_kernels();
// Where a variant unit registers its entries (ASAP_REGISTER_KERNEL inside a variant unit).
KernelTable& cpu_variant_table(CpuIsa isa);

}  // namespace asap::cpu
