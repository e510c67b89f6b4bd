#include "engine/kernel_table.h"

namespace asap {

KernelTable& kernel_table_mut(DeviceType t) {
  static KernelTable tables[2];
  return tables[static_cast<int>(t)];
}

const KernelTable& kernels(DeviceType t) { return kernel_table_mut(t); }

}  // namespace asap
