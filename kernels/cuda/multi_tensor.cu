// Multi-tensor reductions and updates over any number of tensors in a fixed number of launches
// (a DARTS supernet has ~1,400 gradient tensors; one launch per tensor made the gradient norm
// alone ~4,200 launches a step). Tensors are cut into chunks of at most kChunk elements; a chunk
// table (kernels/cuda/multi_tensor.cuh: cached on the device by the exact pointer list, uploaded
// from pinned memory only when a pointer changes) tells block b which chunk it owns.
//  - multi_l2_norm: block b sums its chunk's squares in double (fixed grid-stride order + the
//    fixed shuffle tree of block_sum) into partial[b]; one block adds the partials in a fixed
//    order and writes sqrt as a double. 2 launches, deterministic, no atomics.
//  - multi_clip_scale: every block reads the norm from device memory, computes
//    c = max_norm / (norm + 1e-6) and scales its chunk by (float)c when the norm is finite and
//    c < 1 (the host clip_grad_norm's formula). 1 launch, no host read.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/multi_tensor.cuh"

namespace asap::cuda {
namespace {

constexpr int64_t kChunk = 16384;  // elements per block

struct MtChunk {
  float* x;
  int64_t n;
};

__global__ void mt_sumsq_partial_kernel(const MtChunk* __restrict__ chunks, double* __restrict__ partial) {
  const MtChunk ch = chunks[blockIdx.x];
  double s = 0;
  for (int64_t i = threadIdx.x; i < ch.n; i += blockDim.x) {
    const double v = ch.x[i];
    s += v * v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void mt_norm_final_kernel(const double* __restrict__ partial, int nb, double* __restrict__ out) {
  double s = 0;
  for (int i = threadIdx.x; i < nb; i += blockDim.x) s += partial[i];
  s = block_sum(s);
  if (threadIdx.x == 0) *out = sqrt(s);
}

__global__ void mt_clip_scale_kernel(const MtChunk* __restrict__ chunks, const double* __restrict__ norm,
                                     double max_norm) {
  const double nv = *norm;
  const double c = max_norm / (nv + 1e-6);
  if (!finite_value(nv) || !(c < 1.0)) return;
  const float cf = static_cast<float>(c);
  const MtChunk ch = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < ch.n; i += blockDim.x) ch.x[i] = cf * ch.x[i];
}

// Gradient accumulation: y[i] = (((y[i] + x0[i]) + x1[i]) + ...) for up to kMaxAcc inputs whose
// pointers travel in the kernel parameters (no table, no copy).
constexpr int kMaxAcc = 16;
struct AccPtrs {
  const float* x[kMaxAcc];
  int K;
};

__global__ void mt_accumulate_kernel(float* __restrict__ y, AccPtrs p, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = y[i];
    for (int k = 0; k < p.K; ++k) v += p.x[k][i];
    y[i] = v;
  }
}

__global__ void mt_accumulate_kernel4(float4* __restrict__ y, AccPtrs p, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    float4 v = y[i];
    for (int k = 0; k < p.K; ++k) {
      const float4 a = reinterpret_cast<const float4*>(p.x[k])[i];
      v.x += a.x;
      v.y += a.y;
      v.z += a.z;
      v.w += a.w;
    }
    y[i] = v;
  }
}

// Key and table for a list of float32 tensors cut into kChunk pieces.
std::vector<uint64_t> chunk_key(const std::vector<Tensor>& xs, const char* op, int64_t& nchunks) {
  std::vector<uint64_t> key;
  key.reserve(2 * xs.size());
  nchunks = 0;
  for (const Tensor& x : xs) {
    ASAP_CHECK(x.defined(), op, ": undefined tensor in the list");
    check_f32(x, op);
    ASAP_CHECK(x.is_contiguous(), op, ": tensors must be contiguous");
    key.push_back(reinterpret_cast<uintptr_t>(x.raw_data()));
    key.push_back(static_cast<uint64_t>(x.numel()));
    nchunks += (x.numel() + kChunk - 1) / kChunk;
  }
  return key;
}

void build_chunks(const std::vector<Tensor>& xs, std::vector<unsigned char>& out) {
  for (const Tensor& x : xs) {
    const int64_t n = x.numel();
    for (int64_t b = 0; b < n; b += kChunk) append_pod(out, MtChunk{fptr(x) + b, std::min(kChunk, n - b)});
  }
}

DeviceTableCache& norm_cache() {
  static DeviceTableCache& c = DeviceTableCache::leaked();
  return c;
}
DeviceTableCache& clip_cache() {
  static DeviceTableCache& c = DeviceTableCache::leaked();
  return c;
}

void multi_l2_norm_cuda(const std::vector<Tensor>& xs, Tensor& out) {
  ASAP_CHECK(out.dtype() == DType::F64 && out.numel() == 1 && out.device().is_cuda(),
             "multi_l2_norm: the output must be a one-element float64 CUDA tensor");
  int64_t nc = 0;
  std::vector<uint64_t> key = chunk_key(xs, "multi_l2_norm", nc);
  ASAP_CHECK(nc < (int64_t{1} << 31), "multi_l2_norm: too many chunks");
  ASAP_NVTX_RANGE("multi_l2_norm");
  double* o = static_cast<double*>(out.raw_data());
  if (nc == 0) {
    ASAP_LAUNCH(mt_norm_final_kernel, 1, kThreads, 0, stream(), static_cast<const double*>(nullptr), 0, o);
    ASAP_CUDA_LAUNCH_CHECK("multi_l2_norm(final)");
    return;
  }
  const DeviceTableCache::View v =
      norm_cache().get(std::move(key), sizeof(double) * nc, [&](std::vector<unsigned char>& b) { build_chunks(xs, b); });
  double* partial = static_cast<double*>(v.scratch);
  ASAP_LAUNCH(mt_sumsq_partial_kernel, (unsigned)nc, kThreads, 0, stream(), static_cast<const MtChunk*>(v.table), partial);
  ASAP_CUDA_LAUNCH_CHECK("multi_l2_norm(partials)");
  ASAP_LAUNCH(mt_norm_final_kernel, 1, kThreads, 0, stream(), static_cast<const double*>(partial), (int)nc, o);
  ASAP_CUDA_LAUNCH_CHECK("multi_l2_norm(final)");
}

void multi_clip_scale_cuda(std::vector<Tensor>& xs, const Tensor& norm, double max_norm) {
  ASAP_CHECK(norm.dtype() == DType::F64 && norm.numel() == 1 && norm.device().is_cuda(),
             "multi_clip_scale: the norm must be a one-element float64 CUDA tensor");
  int64_t nc = 0;
  std::vector<uint64_t> key = chunk_key(xs, "multi_clip_scale", nc);
  if (nc == 0) return;
  ASAP_CHECK(nc < (int64_t{1} << 31), "multi_clip_scale: too many chunks");
  const DeviceTableCache::View v =
      clip_cache().get(std::move(key), 0, [&](std::vector<unsigned char>& b) { build_chunks(xs, b); });
  ASAP_LAUNCH(mt_clip_scale_kernel, (unsigned)nc, kThreads, 0, stream(), static_cast<const MtChunk*>(v.table),
              static_cast<const double*>(norm.raw_data()), max_norm);
  ASAP_CUDA_LAUNCH_CHECK("multi_clip_scale");
}

void accumulate_n_cuda(Tensor& y, const std::vector<Tensor>& xs) {
  check_f32(y, "accumulate_n");
  ASAP_CHECK(y.is_contiguous(), "accumulate_n: the output must be contiguous");
  const int64_t n = y.numel();
  const auto aligned = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; };
  for (size_t k0 = 0; k0 < xs.size(); k0 += kMaxAcc) {
    AccPtrs p{};
    p.K = static_cast<int>(std::min<size_t>(kMaxAcc, xs.size() - k0));
    bool vec = n % 4 == 0 && aligned(fptr(y));
    for (int k = 0; k < p.K; ++k) {
      const Tensor& x = xs[k0 + k];
      check_f32(x, "accumulate_n");
      ASAP_CHECK(x.is_contiguous(), "accumulate_n: inputs must be contiguous");
      ASAP_CHECK_SHAPE(x.numel() == n, "accumulate_n: input ", k0 + k, " has ", x.numel(), " elements, output ", n);
      p.x[k] = fptr(x);
      vec = vec && aligned(p.x[k]);
    }
    if (n == 0) return;
    if (vec)
      ASAP_LAUNCH(mt_accumulate_kernel4, grid_for(n / 4), kThreads, 0, stream(), reinterpret_cast<float4*>(fptr(y)), p, n / 4);
    else
      ASAP_LAUNCH(mt_accumulate_kernel, grid_for(n), kThreads, 0, stream(), fptr(y), p, n);
    ASAP_CUDA_LAUNCH_CHECK("accumulate_n");
  }
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, accumulate_n, accumulate_n_cuda);
ASAP_REGISTER_KERNEL(CUDA, multi_l2_norm, multi_l2_norm_cuda);
ASAP_REGISTER_KERNEL(CUDA, multi_clip_scale, multi_clip_scale_cuda);

}  // namespace asap::cuda
