// The emulated CUDA runtime: one device, host memory standing in for device memory, eager streams.
// - Memory: cudaMalloc returns exact-size, 256-byte-aligned host blocks kept in a registry (base,
//   size, allocation number) and filled with a NaN pattern (device memory is uninitialised);
//   cudaMallocHost blocks are registered as pinned. Every copy and memset checks its kind and its
//   ranges against the registry: a host pointer where device memory is required, a copy running
//   past its allocation or a wrong cudaMemcpyKind is a fault naming the call and the pointer.
// - Streams execute work when it is issued, so every ordering CUDA guarantees (stream order,
//   events, blocking syncs) holds trivially; synchronisations are still counted, and a stream
//   that is capturing records instead (graph.cpp).
// - Errors: runtime calls return CUDA's codes and set the per-thread last error, as CUDA does;
//   misuse that the hardware would turn into a crash or a silent wrong result throws
//   asap::DeviceError with a precise message.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

#include "engine/error.h"
#include "kernels/cuda_emu/internal.h"

struct CUstream_st {
  unsigned flags = 0;
  uint64_t id = 0;
};
struct CUevent_st {
  unsigned flags = 0;
  bool recorded = false;
  std::chrono::steady_clock::time_point when;
};

namespace cuda_emu {
namespace {

thread_local cudaError_t tl_last_error = cudaSuccess;

struct Registry {
  std::mutex mu;
  std::map<uintptr_t, detail::Region> regions;  // base -> region
  uint64_t next_id = 1;
  uint64_t device_bytes = 0;
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
  Counters counters;
};

Registry& reg() {
  static Registry* r = new Registry();  // leaked: storages are freed during static destruction
  return *r;
}

cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess) tl_last_error = e;
  return e;
}

uint64_t env_u64(const char* name, uint64_t fallback, uint64_t lo, uint64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw asap::DeviceError(std::string("CUDA emulator: ") + name + " must be an integer in [" + std::to_string(lo) +
                            ", " + std::to_string(hi) + "], got '" + v + "'");
  return x;
}

Options read_options() {
  Options o;
  if (const char* s = std::getenv("ASAP_EMU_SCHEDULE"); s && *s) {
    const std::string v = s;
    if (v == "fwd") {
      o.schedule = Schedule::Forward;
    } else if (v == "rev") {
      o.schedule = Schedule::Reverse;
    } else if (v.rfind("shuffle:", 0) == 0 && v.size() > 8 && v.find_first_not_of("0123456789", 8) == std::string::npos) {
      o.schedule = Schedule::Shuffle;
      o.shuffle_seed = std::strtoull(v.c_str() + 8, nullptr, 10);
    } else {
      throw asap::DeviceError("CUDA emulator: ASAP_EMU_SCHEDULE must be fwd, rev or shuffle:SEED, got '" + v + "'");
    }
  }
  o.workers = static_cast<int>(env_u64("ASAP_EMU_WORKERS", 1, 1, 64));
  o.sm_count = static_cast<int>(env_u64("ASAP_EMU_SMS", 4, 1, 1024));
  o.device_memory = env_u64("ASAP_EMU_DEVICE_MEMORY", uint64_t(16) << 30, uint64_t(1) << 20, uint64_t(1) << 50);
  return o;
}

std::string ptr_str(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
  }
  return "invalid";
}

// Checks one side of a copy: device memory (a live cudaMalloc range covering [p, p + bytes)) or
// host memory (anything that is not device memory; pinned blocks must hold the whole range).
void check_side(const char* call, const char* side, const void* p, size_t bytes, bool device) {
  const detail::Region r = detail::find_region(p, 0);
  if (device) {
    if (r.kind != detail::MemKind::Device)
      detail::fault(std::string(call) + ": " + side + " " + ptr_str(p) + " is not device memory (" +
                    detail::describe(p) + ")");
    if (reinterpret_cast<uintptr_t>(p) + bytes > r.base + r.size)
      detail::fault(std::string(call) + ": " + side + " range of " + std::to_string(bytes) + " bytes at " +
                    detail::describe(p) + " runs past the end of its allocation");
  } else if (r.kind == detail::MemKind::Device) {
    detail::fault(std::string(call) + ": " + side + " " + ptr_str(p) + " is device memory (" + detail::describe(p) +
                  ") but the copy kind says host");
  } else if (r.kind == detail::MemKind::Pinned && reinterpret_cast<uintptr_t>(p) + bytes > r.base + r.size) {
    detail::fault(std::string(call) + ": " + side + " range of " + std::to_string(bytes) +
                  " bytes runs past the end of its pinned host allocation");
  }
}

bool is_device(const void* p) { return detail::find_region(p, 0).kind == detail::MemKind::Device; }

cudaMemcpyKind resolve_kind(cudaMemcpyKind kind, void* dst, const void* src) {
  if (kind != cudaMemcpyDefault) return kind;
  const bool d = is_device(dst), s = is_device(src);
  return d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
           : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
}

// Validates a 2-D copy of `height` rows of `width` bytes, then returns the closure doing it.
cudaError_t copy2d(const char* call, void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                   size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return ret(cudaErrorInvalidMemcpyDirection);
  if (!detail::valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
  if (width == 0 || height == 0) return cudaSuccess;
  if (dpitch < width || spitch < width) return ret(cudaErrorInvalidValue);
  kind = resolve_kind(kind, dst, const_cast<void*>(src));
  const bool dev_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool dev_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const std::string name = std::string(call) + "(" + kind_name(kind) + ")";
  check_side(name.c_str(), "destination", dst, dpitch * (height - 1) + width, dev_dst);
  check_side(name.c_str(), "source", src, spitch * (height - 1) + width, dev_src);
  auto* d = static_cast<unsigned char*>(dst);
  auto* s = static_cast<const unsigned char*>(src);
  auto run = [=] {
    for (size_t r = 0; r < height; ++r) std::memmove(d + r * dpitch, s + r * spitch, width);
    detail::count_copy_bytes(kind, width * height);
  };
  if (detail::capture_if_active(stream, call, run)) return cudaSuccess;
  run();
  return cudaSuccess;
}

}  // namespace

Options& options() {
  static Options o = read_options();
  return o;
}

void set_schedule(Schedule s, uint64_t seed) {
  options().schedule = s;
  options().shuffle_seed = seed;
}

std::string schedule_name() {
  switch (options().schedule) {
    case Schedule::Forward: return "fwd";
    case Schedule::Reverse: return "rev";
    case Schedule::Shuffle: return "shuffle:" + std::to_string(options().shuffle_seed);
  }
  return "?";
}

Counters counters() {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  Counters c = r.counters;
  c.live_allocations = 0;
  for (const auto& kv : r.regions) c.live_allocations += kv.second.kind == detail::MemKind::Device;
  c.live_device_bytes = r.device_bytes;
  return c;
}

void reset_counters() {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.counters = Counters{};
}

namespace detail {

void set_last_error(cudaError_t e) { ret(e); }

void fault(const std::string& message) { throw asap::DeviceError("CUDA emulator: " + message); }

Region find_region(const void* p, size_t bytes) {
  Registry& r = reg();
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.regions.upper_bound(a);
  if (it == r.regions.begin()) return Region{};
  --it;
  const Region& g = it->second;
  if (a < g.base || a + bytes > g.base + g.size || (bytes == 0 && a > g.base + g.size)) return Region{};
  return g;
}

std::string describe(const void* p) {
  const Region g = find_region(p, 0);
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::ostringstream os;
  if (g.kind == MemKind::None) return "host memory, not from cudaMalloc or cudaMallocHost";
  os << (g.kind == MemKind::Device ? "device allocation #" : "pinned host allocation #") << g.id << " (" << g.size
     << " bytes) + " << (a - g.base);
  return os.str();
}

bool valid_stream(cudaStream_t s) {
  if (!s) return true;
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.streams.count(s) > 0;
}

void count_launch(const char* kernel) {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  ++r.counters.launches;
  ++r.counters.launches_by_kernel[kernel];
}
void count_sync() {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  ++r.counters.host_syncs;
}
void count_copy_bytes(cudaMemcpyKind kind, size_t bytes) {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  if (kind == cudaMemcpyHostToDevice) r.counters.bytes_h2d += bytes;
  if (kind == cudaMemcpyDeviceToHost) r.counters.bytes_d2h += bytes;
  if (kind == cudaMemcpyDeviceToDevice) r.counters.bytes_d2d += bytes;
}
void count_blas() {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  ++r.counters.blas_calls;
}
void count_blocks(uint64_t n) {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.counters.blocks += n;
}
void count_graph(uint64_t kernel_nodes) {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  ++r.counters.graph_launches;
  r.counters.graph_kernel_nodes_run += kernel_nodes;
}

}  // namespace detail
}  // namespace cuda_emu

using cuda_emu::detail::MemKind;
using cuda_emu::detail::Region;
using cuda_emu::ret;

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return cudaGetErrorName(e);
  }
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = cuda_emu::tl_last_error;
  cuda_emu::tl_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return cuda_emu::tl_last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return ret(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return ret(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (!p) return ret(cudaErrorInvalidValue);
  if (device != 0) return ret(cudaErrorInvalidDevice);
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "ASAP CUDA emulator (CPU, sm_90 limits, %d SMs, schedule %s)",
                cuda_emu::options().sm_count, cuda_emu::schedule_name().c_str());
  p->totalGlobalMem = cuda_emu::options().device_memory;
  p->sharedMemPerBlock = 48 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->multiProcessorCount = cuda_emu::options().sm_count;
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return ret(cudaErrorInvalidValue);
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device); e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    default: return ret(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  if (cudaError_t e = cuda_emu::detail::capture_forbids("cudaDeviceSynchronize"); e != cudaSuccess) return ret(e);
  cuda_emu::detail::count_sync();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return ret(cudaErrorInvalidValue);
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  *total_bytes = cuda_emu::options().device_memory;
  *free_bytes = *total_bytes - r.device_bytes;
  return cudaSuccess;
}

namespace {
cudaError_t register_block(void** ptr, size_t bytes, MemKind kind) {
  if (!ptr) return ret(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (cudaError_t e = cuda_emu::detail::capture_forbids(kind == MemKind::Device ? "cudaMalloc" : "cudaMallocHost");
      e != cudaSuccess)
    return ret(e);
  if (bytes == 0) return cudaSuccess;
  auto& r = cuda_emu::reg();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    if (kind == MemKind::Device && bytes > cuda_emu::options().device_memory - r.device_bytes)
      return ret(cudaErrorMemoryAllocation);
  }
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0 || !p) return ret(cudaErrorMemoryAllocation);
  if (kind == MemKind::Device) std::memset(p, 0xff, bytes);  // uninitialised device memory reads as NaN
  std::lock_guard<std::mutex> lock(r.mu);
  Region g;
  g.kind = kind;
  g.base = reinterpret_cast<uintptr_t>(p);
  g.size = bytes;
  g.id = r.next_id++;
  r.regions[g.base] = g;
  if (kind == MemKind::Device) r.device_bytes += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t release_block(void* ptr, MemKind kind) {
  if (!ptr) return cudaSuccess;
  auto& r = cuda_emu::reg();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.regions.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == r.regions.end() || it->second.kind != kind)
      return ret(kind == MemKind::Device ? cudaErrorInvalidDevicePointer : cudaErrorInvalidValue);
    if (kind == MemKind::Device) r.device_bytes -= it->second.size;
    r.regions.erase(it);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t memset_impl(const char* call, void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (!cuda_emu::detail::valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  cuda_emu::check_side(call, "destination", ptr, bytes, true);
  auto run = [=] { std::memset(ptr, value, bytes); };
  if (cuda_emu::detail::capture_if_active(stream, call, run)) return cudaSuccess;
  run();
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMalloc(void** ptr, size_t bytes) { return register_block(ptr, bytes, MemKind::Device); }
cudaError_t cudaFree(void* ptr) { return release_block(ptr, MemKind::Device); }
cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return register_block(ptr, bytes, MemKind::Pinned); }
cudaError_t cudaFreeHost(void* ptr) { return release_block(ptr, MemKind::Pinned); }

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attr, const void* ptr) {
  if (!attr) return ret(cudaErrorInvalidValue);
  *attr = cudaPointerAttributes{};
  const Region g = cuda_emu::detail::find_region(ptr, 0);
  attr->device = 0;
  if (g.kind == MemKind::Device) {
    attr->type = cudaMemoryTypeDevice;
    attr->devicePointer = const_cast<void*>(ptr);
  } else if (g.kind == MemKind::Pinned) {
    attr->type = cudaMemoryTypeHost;
    attr->devicePointer = attr->hostPointer = const_cast<void*>(ptr);
  } else {
    attr->type = cudaMemoryTypeUnregistered;
    attr->device = -2;
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  return cuda_emu::copy2d("cudaMemcpyAsync", dst, bytes, src, bytes, bytes, 1, kind, stream);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = cuda_emu::detail::capture_forbids("cudaMemcpy"); e != cudaSuccess) return ret(e);
  const cudaError_t e = cuda_emu::copy2d("cudaMemcpy", dst, bytes, src, bytes, bytes, 1, kind, nullptr);
  if (e == cudaSuccess && bytes > 0 && cuda_emu::resolve_kind(kind, dst, src) != cudaMemcpyDeviceToDevice)
    cuda_emu::detail::count_sync();  // blocks the host until the copy is done
  return e;
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
  return cuda_emu::copy2d("cudaMemcpy2DAsync", dst, dpitch, src, spitch, width, height, kind, stream);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (cudaError_t e = cuda_emu::detail::capture_forbids("cudaMemset"); e != cudaSuccess) return ret(e);
  return memset_impl("cudaMemset", ptr, value, bytes, nullptr);
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  return memset_impl("cudaMemsetAsync", ptr, value, bytes, stream);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!stream || (flags & ~cudaStreamNonBlocking)) return ret(cudaErrorInvalidValue);
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto* s = new CUstream_st();
  s->flags = flags;
  s->id = r.streams.size() + 1;
  r.streams.insert(s);
  *stream = s;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!stream || !r.streams.erase(stream)) return ret(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!cuda_emu::detail::valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
  if (cudaError_t e = cuda_emu::detail::capture_forbids("cudaStreamSynchronize"); e != cudaSuccess) return ret(e);
  cuda_emu::detail::count_sync();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (!cuda_emu::detail::valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.events.count(event) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (!event) return ret(cudaErrorInvalidValue);
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto* e = new CUevent_st();
  e->flags = flags;
  r.events.insert(e);
  *event = e;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!event || !r.events.erase(event)) return ret(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!cuda_emu::detail::valid_stream(stream)) return ret(cudaErrorInvalidResourceHandle);
  {
    auto& r = cuda_emu::reg();
    std::lock_guard<std::mutex> lock(r.mu);
    if (!r.events.count(event)) return ret(cudaErrorInvalidResourceHandle);
  }
  // Work is done when issued, so the event completes at once; its time stamp is now.
  auto run = [event] {
    event->recorded = true;
    event->when = std::chrono::steady_clock::now();
  };
  if (cuda_emu::detail::capture_if_active(stream, "cudaEventRecord", run)) return cudaSuccess;
  run();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  {
    auto& r = cuda_emu::reg();
    std::lock_guard<std::mutex> lock(r.mu);
    if (!r.events.count(event)) return ret(cudaErrorInvalidResourceHandle);
  }
  if (cudaError_t e = cuda_emu::detail::capture_forbids("cudaEventSynchronize"); e != cudaSuccess) return ret(e);
  cuda_emu::detail::count_sync();
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.events.count(event) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return ret(cudaErrorInvalidValue);
  auto& r = cuda_emu::reg();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.events.count(start) || !r.events.count(end)) return ret(cudaErrorInvalidResourceHandle);
  if ((start->flags | end->flags) & cudaEventDisableTiming) return ret(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return ret(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
