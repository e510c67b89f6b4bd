// The one way kernels are launched (a lint test rejects `<<<` anywhere else in kernels/cuda):
//   ASAP_LAUNCH(kernel, grid, block, dynamic_shmem_bytes, stream, args...)
// Under nvcc it is exactly kernel<<<grid, block, shmem, stream>>>(args...); in the emulation build
// (ASAP_CUDA_EMU=ON) it hands the kernel to the CPU emulator. In both it counts the launch per
// call site (kernels/cuda/stats.h), so launch counts measured in the emulator hold on a GPU.
// ASAP_DYNAMIC_SHARED(T, name) declares the block's dynamic shared memory as T name[].
#pragma once
#include <cuda_runtime.h>

#include "kernels/cuda/stats.h"

#if defined(ASAP_CUDA_EMULATOR)
#define ASAP_LAUNCH(kernel, grid, block, shmem, stream, ...)                                              \
  do {                                                                                                   \
    static ::asap::cuda::stats::LaunchSite asap_launch_site_(#kernel, __FILE__, __LINE__);                \
    asap_launch_site_.hit();                                                                             \
    ::cuda_emu::launch_kernel(::cuda_emu::LaunchSite{#kernel, __FILE__, __LINE__}, grid, block, shmem,    \
                              stream, [](auto... asap_args_) { kernel(asap_args_...); }, __VA_ARGS__);    \
  } while (0)
#define ASAP_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::cuda_emu::dynamic_shared())
#else
#define ASAP_LAUNCH(kernel, grid, block, shmem, stream, ...)                                \
  do {                                                                                     \
    static ::asap::cuda::stats::LaunchSite asap_launch_site_(#kernel, __FILE__, __LINE__);  \
    asap_launch_site_.hit();                                                               \
    kernel<<<grid, block, shmem, stream>>>(__VA_ARGS__);                                   \
  } while (0)
#define ASAP_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif
