// NVTX ranges, always compiled in when the header-only nvtx3 is available (CUDA toolkit), and a
// no-op otherwise. Free when no profiler is attached: nvtx3 checks for an injection library once.
#pragma once

#if defined(ASAP_HAVE_NVTX)
#include <nvtx3/nvToolsExt.h>
#endif

namespace asap {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) {
#if defined(ASAP_HAVE_NVTX)
    nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
  ~NvtxRange() {
#if defined(ASAP_HAVE_NVTX)
    nvtxRangePop();
#endif
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace asap

#define ASAP_NVTX_CAT2(a, b) a##b
#define ASAP_NVTX_CAT(a, b) ASAP_NVTX_CAT2(a, b)
// ASAP_NVTX_RANGE("cell/normal/3"): a range until the end of the enclosing scope.
#define ASAP_NVTX_RANGE(name) ::asap::NvtxRange ASAP_NVTX_CAT(asap_nvtx_, __LINE__)(name)
