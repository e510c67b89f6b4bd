#include "engine/search_kernels.h"

namespace asap {

SearchKernels& search_kernels_mut(DeviceType t) {
  static SearchKernels tables[2];
  return tables[static_cast<int>(t)];
}

const SearchKernels& search_kernels(DeviceType t) { return search_kernels_mut(t); }

}  // namespace asap
