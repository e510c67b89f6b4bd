// Kernel launch for the CUDA emulator. ASAP_LAUNCH (kernels/cuda/launch.cuh) turns a launch into
// launch_kernel(site, grid, block, shmem, stream, body, args...): the arguments are copied into a
// closure (CUDA passes kernel parameters by value), pointer arguments are checked against the
// device-memory registry (a host pointer handed to a kernel is an error naming the argument), and
// the closure runs every CUDA thread of the grid through the block scheduler - or, while the
// stream is capturing, is recorded into the graph.
#pragma once
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace cuda_emu {

struct LaunchSite {
  const char* kernel;  // the kernel expression as written at the launch site
  const char* file;
  int line;
};

struct PointerArg {
  const void* ptr;
  int index;  // position in the kernel's parameter list
};

// Validates the configuration as the hardware would (cudaErrorInvalidConfiguration /
// cudaErrorInvalidValue become the sticky last error, read by cudaGetLastError), checks pointer
// arguments, then runs or records the launch. Faults found while running (barrier divergence,
// a bad shuffle, a stack overflow guard hit is a crash) throw asap::DeviceError.
cudaError_t launch(const LaunchSite& site, dim3 grid, dim3 block, size_t dynamic_shmem, cudaStream_t stream,
                   std::function<void()> thread_body, const PointerArg* ptrs, int nptrs);

template <typename Body, typename... A>
cudaError_t launch_kernel(const LaunchSite& site, dim3 grid, dim3 block, size_t dynamic_shmem, cudaStream_t stream,
                          Body body, A... args) {
  PointerArg ptrs[sizeof...(A) + 1] = {};
  int n = 0, i = 0;
  auto note = [&](const auto& a) {
    using T = std::decay_t<decltype(a)>;
    if constexpr (std::is_pointer<T>::value && std::is_object<std::remove_pointer_t<T>>::value)
      ptrs[n++] = PointerArg{static_cast<const void*>(a), i};
    ++i;
  };
  (note(args), ...);
  return launch(site, grid, block, dynamic_shmem, stream,
                [body, tup = std::make_tuple(args...)]() { std::apply(body, tup); }, ptrs, n);
}

}  // namespace cuda_emu
