// Device queries that compile in every build: a CPU-only build (no toolkit, ASAP_WITH_CUDA unset)
// gets inline stubs reporting no device, so tests/cuda/ can skip visibly instead of failing to link.
#pragma once
#include <cstddef>
#include <string>

namespace asap::cuda {

// Per-device tables (allocator, handles, staging rings) are sized for this many devices.
constexpr int kMaxDevices = 16;

#if defined(ASAP_WITH_CUDA)
int device_count() noexcept;           // 0 when there is no driver or no device (never throws)
std::string device_name(int index);    // "NVIDIA H200", or "" without a device
size_t device_bytes_in_use(int index = 0) noexcept;
size_t device_peak_bytes(int index = 0) noexcept;
size_t device_bytes_cached(int index = 0) noexcept;  // held by the caching allocator, not in use
void empty_cache(int index = 0) noexcept;            // return cached blocks to the driver
#else
inline int device_count() noexcept { return 0; }
inline std::string device_name(int) { return ""; }
inline size_t device_bytes_in_use(int = 0) noexcept { return 0; }
inline size_t device_peak_bytes(int = 0) noexcept { return 0; }
inline size_t device_bytes_cached(int = 0) noexcept { return 0; }
inline void empty_cache(int = 0) noexcept {}
#endif

inline bool device_present() noexcept { return device_count() > 0; }

}  // namespace asap::cuda
