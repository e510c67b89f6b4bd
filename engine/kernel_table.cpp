#include "engine/kernel_table.h"

#include "kernels/cpu/isa.h"

namespace asap {

KernelTable& kernel_table_mut(DeviceType t) {
  static KernelTable tables[2];
  return tables[static_cast<int>(t)];
}

// The CPU table is the baseline overlaid with the chosen instruction set's variants (kernels/cpu/isa.h).
const KernelTable& kernels(DeviceType t) {
  return t == DeviceType::CPU ? cpu::cpu_kernels() : kernel_table_mut(t);
}

}  // namespace asap
