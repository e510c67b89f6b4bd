// Tests of the CUDA emulator itself (ASAP_CUDA_EMU builds only, tag [cuda-emu]): the scheduler
// exposes a missing barrier and is bit-stable when the code is right; divergent or unreachable
// collectives fail naming the kernel, block, thread and call site while the legal patterns our
// kernels use pass; shuffles follow CUDA's tables; shared memory does not leak between blocks;
// launch limits, memory misuse and cuBLAS arguments are rejected as the hardware or library
// would; capture and replay equal eager execution.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "engine/error.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_emu/emulator.h"

using asap::DeviceError;

namespace {

// Restores the schedule and worker count a test changed.
struct ScheduleGuard {
  cuda_emu::Options saved = cuda_emu::options();
  ~ScheduleGuard() { cuda_emu::options() = saved; }
};

template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) { REQUIRE(cudaMalloc(&p, count * sizeof(T)) == cudaSuccess); }
  ~DevBuf() { cudaFree(p); }
  void upload(const std::vector<T>& v) {
    REQUIRE(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> v(n);
    REQUIRE(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
  }
};

// --- block reductions: the production block_sum, and one with the publishing barrier removed ---
__global__ void sum_kernel(const float* x, int n, double* out) {
  double s = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += x[i];
  s = asap::cuda::block_sum(s);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

__global__ void sum_kernel_missing_barrier(const float* x, int n, double* out) {
  __shared__ double part[32];
  double s = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += x[i];
  s = asap::cuda::warp_sum(s);
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  if (lane == 0) part[wid] = s;
  // BUG (deliberate): no __syncthreads() between publishing and reading the warp sums.
  double r = lane < static_cast<int>(blockDim.x >> 5) ? part[lane] : 0.0;
  r = asap::cuda::warp_sum(r);
  if (threadIdx.x == 0) out[blockIdx.x] = r;
}

std::vector<double> run_sum(bool broken, cuda_emu::Schedule sched, uint64_t seed, int workers) {
  ScheduleGuard g;
  cuda_emu::set_schedule(sched, seed);
  cuda_emu::options().workers = workers;
  const int n = 5000, blocks = 6;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(std::sin(0.37 * i) + 0.01 * (i % 7));
  DevBuf<float> x(n);
  x.upload(h);
  DevBuf<double> out(blocks);
  if (broken) {
    ASAP_LAUNCH(sum_kernel_missing_barrier, blocks, 256, 0, nullptr, x.p, n, out.p);
  } else {
    ASAP_LAUNCH(sum_kernel, blocks, 256, 0, nullptr, x.p, n, out.p);
  }
  REQUIRE(cudaGetLastError() == cudaSuccess);
  return out.download();
}

std::string fault_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DeviceError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("emulator: a correct block reduction is bit-identical under every schedule and worker count", "[cuda-emu]") {
  const std::vector<double> ref = run_sum(false, cuda_emu::Schedule::Forward, 0, 1);
  double total = 0;
  for (double v : ref) total += v;
  CHECK(total != 0.0);
  CHECK(run_sum(false, cuda_emu::Schedule::Reverse, 0, 1) == ref);
  CHECK(run_sum(false, cuda_emu::Schedule::Shuffle, 1, 1) == ref);
  CHECK(run_sum(false, cuda_emu::Schedule::Shuffle, 2, 4) == ref);
  CHECK(run_sum(false, cuda_emu::Schedule::Reverse, 0, 4) == ref);
}

namespace {
// Thread 0 publishes a value that the whole block reads, with the barrier missing (a broadcast).
__global__ void broadcast_missing_barrier(const float* x, float* y) {
  __shared__ float v;
  if (threadIdx.x == 0) v = x[blockIdx.x];
  // BUG (deliberate): no __syncthreads() here.
  y[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
}  // namespace

TEST_CASE("emulator: a missing barrier gives a wrong result under one of the two schedules", "[cuda-emu]") {
  const std::vector<double> ref = run_sum(false, cuda_emu::Schedule::Forward, 0, 1);
  // Reduction without the publishing barrier: under fwd, warp 0 (whose lane 0 writes the result)
  // reads the other warps' slots before they are written. Under rev warp 0 runs last and reads
  // complete data, so rev alone would miss this bug ...
  CHECK(run_sum(true, cuda_emu::Schedule::Forward, 0, 1) != ref);
  CHECK(run_sum(true, cuda_emu::Schedule::Reverse, 0, 1) == ref);
  // ... and a broadcast without its barrier is the opposite case: fwd lets thread 0 write first.
  ScheduleGuard g;
  DevBuf<float> x(3), y(3 * 64);
  x.upload({1.5f, -2.f, 4.f});
  auto wrong = [&](cuda_emu::Schedule sched) {
    cuda_emu::set_schedule(sched);
    y.upload(std::vector<float>(3 * 64, 0.f));
    ASAP_LAUNCH(broadcast_missing_barrier, 3, 64, 0, nullptr, x.p, y.p);
    const std::vector<float> h = y.download();
    int bad = 0;
    for (int b = 0; b < 3; ++b)
      for (int t = 0; t < 64; ++t) bad += h[b * 64 + t] != std::vector<float>{1.5f, -2.f, 4.f}[b];
    return bad;
  };
  CHECK(wrong(cuda_emu::Schedule::Forward) == 0);
  CHECK(wrong(cuda_emu::Schedule::Reverse) > 0);
}

namespace {
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}
__global__ void early_exit_before_shuffle_kernel(float* out) {
  if (threadIdx.x == 3) return;
  float v = static_cast<float>(threadIdx.x);
  v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}
__global__ void thread_dependent_loop_kernel(int* out) {
  for (unsigned i = 0; i < 1 + (threadIdx.x & 1); ++i) __syncthreads();
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void barrier_inside_warp_op_kernel(float* out) {
  if (threadIdx.x == 40) __syncthreads();
  float v = __shfl_xor_sync(0xffffffffu, 1.f, 1);
  out[threadIdx.x] = v;
}
__global__ void partial_warp_full_mask_kernel(float* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}
// Legal: threads past the end leave after the last barrier (dwconv.cu's pattern).
__global__ void exit_after_last_barrier_kernel(const float* x, float* y, int n) {
  __shared__ float tile[64];
  tile[threadIdx.x] = x[threadIdx.x] * 2.f;
  __syncthreads();
  if (static_cast<int>(threadIdx.x) >= n) return;
  y[threadIdx.x] = tile[63 - threadIdx.x];
}
// Legal: whole warps return before a warp reduction (loss.cu's one-warp-per-row pattern).
__global__ void whole_warp_returns_kernel(float* y, int rows) {
  const int r = threadIdx.x >> 5;
  if (r >= rows) return;
  const float v = asap::cuda::warp_sum(1.f);
  if ((threadIdx.x & 31) == 0) y[r] = v;
}
}  // namespace

TEST_CASE("emulator: divergent and unreachable collectives fail naming kernel, block, thread and site", "[cuda-emu]") {
  DevBuf<int> iout(64);
  DevBuf<float> fout(128);
  std::string m = fault_of([&] { ASAP_LAUNCH(divergent_barrier_kernel, 2, 64, 0, nullptr, iout.p); });
  CHECK(m.find("divergent __syncthreads") != std::string::npos);
  CHECK(m.find("divergent_barrier_kernel") != std::string::npos);
  CHECK(m.find("block (0,0,0)") != std::string::npos);
  CHECK(m.find("test_emulator.cpp") != std::string::npos);

  m = fault_of([&] { ASAP_LAUNCH(early_exit_before_shuffle_kernel, 1, 32, 0, nullptr, fout.p); });
  CHECK(m.find("lane 3 (thread (3,0,0)) named in the mask has exited") != std::string::npos);
  CHECK(m.find("__shfl_xor_sync") != std::string::npos);

  m = fault_of([&] { ASAP_LAUNCH(thread_dependent_loop_kernel, 1, 64, 0, nullptr, iout.p); });
  CHECK(m.find("divergent __syncthreads") != std::string::npos);

  m = fault_of([&] { ASAP_LAUNCH(barrier_inside_warp_op_kernel, 1, 64, 0, nullptr, fout.p); });
  CHECK(m.find("thread (40,0,0) waits at __syncthreads") != std::string::npos);

  m = fault_of([&] { ASAP_LAUNCH(partial_warp_full_mask_kernel, 1, 48, 0, nullptr, fout.p); });
  CHECK(m.find("does not have") != std::string::npos);

  // The legal patterns run.
  DevBuf<float> x(64), y(64);
  std::vector<float> hx(64);
  for (int i = 0; i < 64; ++i) hx[i] = static_cast<float>(i);
  x.upload(hx);
  ASAP_LAUNCH(exit_after_last_barrier_kernel, 1, 64, 0, nullptr, x.p, y.p, 40);
  std::vector<float> hy = y.download();
  for (int i = 0; i < 40; ++i) CHECK(hy[i] == 2.f * (63 - i));
  ASAP_LAUNCH(whole_warp_returns_kernel, 1, 128, 0, nullptr, fout.p, 3);
  std::vector<float> hf = fout.download();
  for (int r = 0; r < 3; ++r) CHECK(hf[r] == 32.f);
}

namespace {
template <typename T>
__global__ void shuffle_table_kernel(int op, unsigned mask, int arg, int width, T* out) {
  const unsigned lane = threadIdx.x & 31;
  if (!(mask >> lane & 1u)) return;
  const T v = static_cast<T>(100 + threadIdx.x) + static_cast<T>(0.25);
  T r = v;
  switch (op) {
    case 0: r = __shfl_sync(mask, v, arg, width); break;
    case 1: r = __shfl_up_sync(mask, v, static_cast<unsigned>(arg), width); break;
    case 2: r = __shfl_down_sync(mask, v, static_cast<unsigned>(arg), width); break;
    case 3: r = __shfl_xor_sync(mask, v, arg, width); break;
    case 4: r = static_cast<T>(__ballot_sync(mask, threadIdx.x % 3 == 0)); break;
  }
  out[threadIdx.x] = r;
}

// CUDA's documented source lane for each shuffle.
int source_lane(int op, int lane, int arg, int width) {
  const int seg = lane / width * width;
  switch (op) {
    case 0: return seg + arg % width;
    case 1: return lane - arg >= seg ? lane - arg : lane;
    case 2: return lane + arg < seg + width ? lane + arg : lane;
    default: return (lane ^ arg) < seg + width ? lane ^ arg : lane;
  }
}

template <typename T>
void check_tables() {
  DevBuf<T> out(64);
  for (int op = 0; op < 4; ++op)
    for (int width : {1, 2, 4, 8, 16, 32})
      for (int arg : {0, 1, 3, 5, 16})
        {
          ASAP_LAUNCH(shuffle_table_kernel<T>, 1, 64, 0, nullptr, op, 0xffffffffu, arg, width, out.p);
          const std::vector<T> h = out.download();
          for (int warp = 0; warp < 2; ++warp)
          for (int lane = 0; lane < 32; ++lane) {
            const int t = warp * 32 + lane;
            const int src = warp * 32 + source_lane(op, lane, arg, width);
            INFO("op " << op << " width " << width << " arg " << arg << " thread " << t);
            CHECK(h[t] == static_cast<T>(100 + src) + static_cast<T>(0.25));
          }
        }
  // A partial mask: only the named lanes take part (the others returned), results as above.
  ASAP_LAUNCH(shuffle_table_kernel<T>, 1, 32, 0, nullptr, 3, 0x0000ffffu, 4, 16, out.p);
  std::vector<T> h = out.download();
  for (int lane = 0; lane < 16; ++lane) CHECK(h[lane] == static_cast<T>(100 + (lane ^ 4)) + static_cast<T>(0.25));
  // Ballot over the full warp: bit i set when lane i % 3 == 0.
  ASAP_LAUNCH(shuffle_table_kernel<T>, 1, 32, 0, nullptr, 4, 0xffffffffu, 0, 32, out.p);
  h = out.download();
  unsigned want = 0;
  for (int i = 0; i < 32; i += 3) want |= 1u << i;
  CHECK(h[0] == static_cast<T>(want));
}
}  // namespace

TEST_CASE("emulator: shuffles follow CUDA's source-lane tables for every width, float and double", "[cuda-emu]") {
  check_tables<float>();
  check_tables<double>();
  DevBuf<float> out(32);
  // Reading a lane outside a partial mask is undefined on the device: a fault here.
  CHECK(fault_of([&] {
          ASAP_LAUNCH(shuffle_table_kernel<float>, 1, 32, 0, nullptr, 3, 0x0000ffffu, 16, 32, out.p);
        }).find("not in the mask") != std::string::npos);
  CHECK(fault_of([&] {
          ASAP_LAUNCH(shuffle_table_kernel<float>, 1, 32, 0, nullptr, 3, 0xffffffffu, 1, 3, out.p);
        }).find("not a power of two") != std::string::npos);
}

namespace {
__global__ void shared_isolation_kernel(unsigned* out) {
  __shared__ unsigned who[256];
  who[threadIdx.x] = blockIdx.x * 1000 + threadIdx.x;
  __syncthreads();
  // Read a neighbour's slot: it must hold this block's value, never another block's.
  out[blockIdx.x * blockDim.x + threadIdx.x] = who[(threadIdx.x + 1) % blockDim.x];
}
__global__ void read_dynamic_shared_kernel(unsigned* out) {
  ASAP_DYNAMIC_SHARED(unsigned, smem);
  if (threadIdx.x == 0) smem[1] = 7;
  __syncthreads();
  out[threadIdx.x] = smem[threadIdx.x];
}
}  // namespace

TEST_CASE("emulator: no shared-memory cross-talk between blocks on several workers; poisoned dynamic shared memory",
          "[cuda-emu]") {
  ScheduleGuard g;
  cuda_emu::options().workers = 4;
  const int blocks = 64, threads = 256;
  DevBuf<unsigned> out(blocks * threads);
  ASAP_LAUNCH(shared_isolation_kernel, blocks, threads, 0, nullptr, out.p);
  const std::vector<unsigned> h = out.download();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) REQUIRE(h[b * threads + t] == unsigned(b * 1000 + (t + 1) % threads));
  DevBuf<unsigned> d(4);
  ASAP_LAUNCH(read_dynamic_shared_kernel, 1, 4, 16, nullptr, d.p);
  const std::vector<unsigned> hd = d.download();
  CHECK(hd[0] == 0xffffffffu);  // never written: the NaN pattern, not a convenient zero
  CHECK(hd[1] == 7u);
}

namespace {
__global__ void noop_kernel(float* p) {
  if (p) p[0] = 1.f;
}
}  // namespace

TEST_CASE("emulator: launch limits as on the hardware; host pointers in kernels are caught", "[cuda-emu]") {
  DevBuf<float> d(4);
  auto code = [&](dim3 grid, dim3 block, size_t shmem) {
    (void)cudaGetLastError();
    ASAP_LAUNCH(noop_kernel, grid, block, shmem, nullptr, d.p);
    return cudaGetLastError();
  };
  CHECK(code(1, 1024, 0) == cudaSuccess);
  CHECK(code(1, 1025, 0) == cudaErrorInvalidConfiguration);
  CHECK(code(1, dim3(512, 3), 0) == cudaErrorInvalidConfiguration);
  CHECK(code(1, dim3(1, 1, 65), 0) == cudaErrorInvalidConfiguration);
  CHECK(code(dim3(1, 65536), 32, 0) == cudaErrorInvalidConfiguration);
  CHECK(code(0, 32, 0) == cudaErrorInvalidConfiguration);
  CHECK(code(1, 32, 48 * 1024) == cudaSuccess);
  CHECK(code(1, 32, 48 * 1024 + 1) == cudaErrorInvalidValue);
  std::vector<float> host(4);
  const std::string m = fault_of([&] { ASAP_LAUNCH(noop_kernel, 1, 1, 0, nullptr, host.data()); });
  CHECK(m.find("argument 0") != std::string::npos);
  CHECK(m.find("not device memory") != std::string::npos);
}

TEST_CASE("emulator: memory registry, checked copies, uninitialised memory, out of memory", "[cuda-emu]") {
  DevBuf<float> d(8);
  std::vector<float> h(8, 1.f);
  // Fresh device memory is NaN, not zero.
  std::vector<float> fresh = d.download();
  CHECK(std::isnan(fresh[0]));
  CHECK(fault_of([&] { (void)cudaMemcpy(d.p, h.data(), 9 * sizeof(float), cudaMemcpyHostToDevice); })
            .find("runs past the end") != std::string::npos);
  CHECK(fault_of([&] { (void)cudaMemcpy(h.data(), d.p, 4, cudaMemcpyHostToDevice); }).find("not device memory") !=
        std::string::npos);
  CHECK(fault_of([&] { (void)cudaMemcpy(d.p, h.data(), 4, cudaMemcpyDeviceToDevice); }).find("source") !=
        std::string::npos);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, size_t(1) << 50) == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaFree(h.data()) == cudaErrorInvalidDevicePointer);
  (void)cudaGetLastError();
  cudaPointerAttributes a{};
  REQUIRE(cudaPointerGetAttributes(&a, d.p + 3) == cudaSuccess);
  CHECK(a.type == cudaMemoryTypeDevice);
  REQUIRE(cudaPointerGetAttributes(&a, h.data()) == cudaSuccess);
  CHECK(a.type == cudaMemoryTypeUnregistered);
}

namespace {
// Column-major reference: C = alpha op(A) op(B) + beta C.
void ref_gemm(bool ta, bool tb, int m, int n, int k, float al, const std::vector<float>& A, int lda,
              const std::vector<float>& B, int ldb, float be, std::vector<float>& C, int ldc, size_t oa = 0,
              size_t ob = 0, size_t oc = 0) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int l = 0; l < k; ++l)
        s += double(ta ? A[oa + l + size_t(i) * lda] : A[oa + i + size_t(l) * lda]) *
             double(tb ? B[ob + j + size_t(l) * ldb] : B[ob + l + size_t(j) * ldb]);
      float& c = C[oc + i + size_t(j) * ldc];
      c = static_cast<float>(al * s + (be == 0.f ? 0.0 : double(be) * c));
    }
}
}  // namespace

TEST_CASE("emulator: cuBLAS argument table, exact results for every op pair and batch, bounds", "[cuda-emu]") {
  cublasHandle_t h = nullptr;
  REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
  const int m = 5, n = 4, k = 3, batches = 3;
  const int lda = 7, ldb = 6, ldc = 8;  // padded leading dimensions
  const long long sA = lda * 7, sB = ldb * 6, sC = ldc * n + 3;
  DevBuf<float> A(sA * batches), B(sB * batches), C(sC * batches);
  std::vector<float> hA(A.n), hB(B.n);
  for (size_t i = 0; i < hA.size(); ++i) hA[i] = static_cast<float>(int(i * 7 % 11) - 5);
  for (size_t i = 0; i < hB.size(); ++i) hB[i] = static_cast<float>(int(i * 5 % 9) - 4);
  A.upload(hA);
  B.upload(hB);
  const float one = 1.f, two = 2.f, zero = 0.f;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      INFO("transa " << ta << " transb " << tb);
      std::vector<float> hC(C.n, std::nanf(""));  // beta = 0 must never read C
      C.upload(hC);
      REQUIRE(cublasSgemmStridedBatched(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                        &two, A.p, lda, sA, B.p, ldb, sB, &zero, C.p, ldc, sC,
                                        batches) == CUBLAS_STATUS_SUCCESS);
      const std::vector<float> got = C.download();
      std::vector<float> want(C.n, std::nanf(""));
      for (int b = 0; b < batches; ++b)
        ref_gemm(ta, tb, m, n, k, 2.f, hA, lda, hB, ldb, 0.f, want, ldc, b * sA, b * sB, b * sC);
      for (int b = 0; b < batches; ++b)
        for (int j = 0; j < n; ++j)
          for (int i = 0; i < m; ++i) {
            const size_t at = b * sC + i + size_t(j) * ldc;
            REQUIRE(got[at] == want[at]);  // small integers: exact
          }
      // Padding rows of C (i >= m) are untouched.
      CHECK(std::isnan(got[m]));
    }
  // beta = 1 accumulates.
  std::vector<float> hC(C.n, 1.f);
  C.upload(hC);
  REQUIRE(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.p, lda, B.p, ldb, &one, C.p, ldc) ==
          CUBLAS_STATUS_SUCCESS);
  std::vector<float> want(C.n, 1.f);
  ref_gemm(false, false, m, n, k, 1.f, hA, lda, hB, ldb, 1.f, want, ldc);
  CHECK(C.download()[ldc + 2] == want[ldc + 2]);
  // The documented INVALID_VALUE cases.
  auto st = [&](int mm, int nn, int kk, int la, int lb, int lc, cublasOperation_t a = CUBLAS_OP_N,
                cublasOperation_t b = CUBLAS_OP_N) {
    return cublasSgemm(h, a, b, mm, nn, kk, &one, A.p, la, B.p, lb, &zero, C.p, lc);
  };
  CHECK(st(-1, n, k, lda, ldb, ldc) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(st(m, -1, k, lda, ldb, ldc) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(st(m, n, -1, lda, ldb, ldc) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(st(m, n, k, m - 1, ldb, ldc) == CUBLAS_STATUS_INVALID_VALUE);                 // lda < m (N)
  CHECK(st(m, n, k, k - 1, ldb, ldc, CUBLAS_OP_T) == CUBLAS_STATUS_INVALID_VALUE);    // lda < k (T)
  CHECK(st(m, n, k, lda, k - 1, ldc) == CUBLAS_STATUS_INVALID_VALUE);                 // ldb < k (N)
  CHECK(st(m, n, k, lda, n - 1, ldc, CUBLAS_OP_N, CUBLAS_OP_T) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(st(m, n, k, lda, ldb, m - 1) == CUBLAS_STATUS_INVALID_VALUE);                 // ldc < m
  CHECK(cublasSgemm(h, static_cast<cublasOperation_t>(7), CUBLAS_OP_N, m, n, k, &one, A.p, lda, B.p, ldb, &zero, C.p,
                    ldc) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.p, lda, sA, B.p, ldb, sB, &zero, C.p,
                                  ldc, sC, -1) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.p, lda, B.p, ldb, &zero, C.p, ldc) ==
        CUBLAS_STATUS_NOT_INITIALIZED);
  // An ld that passes the table but runs past the allocation, and a host operand: faults.
  DevBuf<float> small(m * k);
  CHECK(fault_of([&] {
          (void)cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, small.p, m + 1, B.p, ldb, &zero, C.p, ldc);
        }).find("past the end") != std::string::npos);
  CHECK(fault_of([&] {
          (void)cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, hA.data(), lda, B.p, ldb, &zero, C.p, ldc);
        }).find("outside device memory") != std::string::npos);
  CHECK(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS);
}

namespace {
__global__ void axpb_kernel(float* y, float a, float b, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = a * y[i] + b;
}
}  // namespace

TEST_CASE("emulator: stream capture and graph replay equal eager execution; syncs inside capture fail",
          "[cuda-emu]") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  const int n = 1000;
  DevBuf<float> eager(n), graph(n);
  std::vector<float> init(n);
  for (int i = 0; i < n; ++i) init[i] = 0.001f * i - 0.3f;
  eager.upload(init);
  graph.upload(init);
  float a = 1.5f;
  REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  ASAP_LAUNCH(axpb_kernel, 4, 128, 0, s, graph.p, a, 0.25f, n);
  REQUIRE(cudaMemsetAsync(graph.p, 0, 4 * sizeof(float), s) == cudaSuccess);
  ASAP_LAUNCH(axpb_kernel, 4, 128, 0, s, graph.p, a, -1.f, n);
  a = 100.f;  // a host change after capture must not reach the replay (arguments are copied)
  cudaGraph_t g = nullptr;
  REQUIRE(cudaStreamEndCapture(s, &g) == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, g) == cudaSuccess);
  CHECK(graph.download() == init);  // captured work has not run
  const cuda_emu::Counters before = cuda_emu::counters();
  for (int rep = 0; rep < 3; ++rep) {
    REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
    ASAP_LAUNCH(axpb_kernel, 4, 128, 0, s, eager.p, 1.5f, 0.25f, n);
    REQUIRE(cudaMemsetAsync(eager.p, 0, 4 * sizeof(float), s) == cudaSuccess);
    ASAP_LAUNCH(axpb_kernel, 4, 128, 0, s, eager.p, 1.5f, -1.f, n);
  }
  const cuda_emu::Counters after = cuda_emu::counters();
  CHECK(after.graph_launches - before.graph_launches == 3);
  CHECK(after.graph_kernel_nodes_run - before.graph_kernel_nodes_run == 6);
  CHECK(after.launches - before.launches == 6);  // the eager ones only: a replay is one graph launch
  CHECK(graph.download() == eager.download());
  // A synchronisation during capture fails and invalidates the capture, as on a GPU.
  REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 16) == cudaErrorStreamCaptureUnsupported);
  cudaGraph_t g2 = nullptr;
  CHECK(cudaStreamEndCapture(s, &g2) == cudaErrorStreamCaptureInvalidated);
  CHECK(g2 == nullptr);
  (void)cudaGetLastError();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(g);
  cudaStreamDestroy(s);
}
