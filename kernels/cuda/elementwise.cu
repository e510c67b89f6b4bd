// Elementwise kernels: grid-stride loops, 16-byte (float4) loads and stores when every pointer is
// aligned and the length divides by 4 (the common case: the caching allocator aligns to 512 B).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/host_sync.h"

namespace asap::cuda {
namespace {

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// y = f(a[, b]) elementwise; F has float operator()(float a, float b) (b = 0 when unary).
// No __restrict__: callers run these in place (axpy reads y; the engine calls mul_scalar(g, s, g)).
template <typename F>
__global__ void map_kernel(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (; i < n; i += step) y[i] = f(a[i], b ? b[i] : 0.f);
}

template <typename F>
__global__ void map_kernel4(const float4* a, const float4* b, float4* y, int64_t n4, F f) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (; i < n4; i += step) {
    float4 va = a[i], vb = b ? b[i] : make_float4(0.f, 0.f, 0.f, 0.f), r;
    r.x = f(va.x, vb.x); r.y = f(va.y, vb.y); r.z = f(va.z, vb.z); r.w = f(va.w, vb.w);
    y[i] = r;
  }
}

template <typename F>
void launch_map(const float* a, const float* b, float* y, int64_t n, F f, const char* op) {
  if (n == 0) return;
  if (n % 4 == 0 && aligned16(a) && aligned16(y) && (!b || aligned16(b))) {
    const int64_t n4 = n / 4;
    ASAP_LAUNCH(map_kernel4, grid_for(n4), kThreads, 0, stream(), reinterpret_cast<const float4*>(a), reinterpret_cast<const float4*>(b),
        reinterpret_cast<float4*>(y), n4, f);
  } else {
    ASAP_LAUNCH(map_kernel, grid_for(n), kThreads, 0, stream(), a, b, y, n, f);
  }
  ASAP_CUDA_LAUNCH_CHECK(op);
}

struct ReluF { __device__ float operator()(float a, float) const { return a > 0.f ? a : 0.f; } };
struct ReluBwdF {  // a = x, b = dy
  __device__ float operator()(float x, float dy) const { return x > 0.f ? dy : 0.f; }
};
struct AddF { __device__ float operator()(float a, float b) const { return a + b; } };
struct AxpyF {  // a = x, b = y (old)
  float alpha;
  __device__ float operator()(float x, float y) const { return y + alpha * x; }
};
struct MulF {
  float s;
  __device__ float operator()(float a, float) const { return s * a; }
};

template <typename T>
__global__ void fill_kernel(T* __restrict__ y, int64_t n, T v) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (; i < n; i += int64_t(gridDim.x) * blockDim.x) y[i] = v;
}

struct StridedSpec {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t src_strides[kMaxDims];
  int64_t dst_strides[kMaxDims];
};

// 4-byte elements (float32 and int32 share this kernel). Either side may be strided (the engine
// scatters into narrow() views and fills strided tensors through this entry).
__global__ void copy_strided_kernel(const uint32_t* __restrict__ src, uint32_t* __restrict__ dst,
                                    int64_t n, StridedSpec s) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, so = 0, d_off = 0;
    for (int d = s.ndim - 1; d >= 0; --d) {
      const int64_t c = rem % s.shape[d];
      rem /= s.shape[d];
      so += c * s.src_strides[d];
      d_off += c * s.dst_strides[d];
    }
    dst[d_off] = src[so];
  }
}

__global__ void scale_dev_kernel(const float* x, const float* s, float* y, int64_t n) {
  const float sv = *s;
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (; i < n; i += int64_t(gridDim.x) * blockDim.x) y[i] = sv * x[i];
}

__global__ void scale_per_sample_kernel(const float* x, const float* s, float* y, int64_t n, int64_t inner) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (; i < n; i += int64_t(gridDim.x) * blockDim.x) y[i] = x[i] * s[i / inner];
}

void fill_cuda(Tensor& y, double value) {
  ASAP_CHECK(y.dtype() == DType::F32 || y.dtype() == DType::I32,
             "CUDA kernel 'fill' supports float32 and int32, got ", dtype_name(y.dtype()));
  const int64_t n = y.numel();
  if (n == 0) return;
  if (y.dtype() == DType::F32)
    ASAP_LAUNCH(fill_kernel, grid_for(n), kThreads, 0, stream(), y.data<float>(), n, static_cast<float>(value));
  else
    ASAP_LAUNCH(fill_kernel, grid_for(n), kThreads, 0, stream(), y.data<int32_t>(), n, static_cast<int32_t>(value));
  ASAP_CUDA_LAUNCH_CHECK("fill");
}

void copy_strided_cuda(const Tensor& src, Tensor& dst) {
  ASAP_CHECK(src.dtype() == dst.dtype() && dtype_size(src.dtype()) == 4,
             "CUDA kernel 'copy_strided' supports 4-byte types (float32, int32)");
  ASAP_CHECK_SHAPE(src.shape() == dst.shape(), "copy_strided: shapes differ ", src.shape().str(),
                   " vs ", dst.shape().str());
  const int64_t n = dst.numel();
  if (n == 0) return;
  if (src.is_contiguous() && dst.is_contiguous()) {
    copy_async(dst.raw_data(), src.raw_data(), n * 4, cudaMemcpyDeviceToDevice, stream());
    return;
  }
  StridedSpec s{};
  s.ndim = src.ndim();
  for (int d = 0; d < s.ndim; ++d) {
    s.shape[d] = src.dim(d);
    s.src_strides[d] = src.strides()[d];
    s.dst_strides[d] = dst.strides()[d];
  }
  ASAP_LAUNCH(copy_strided_kernel, grid_for(n), kThreads, 0, stream(), static_cast<const uint32_t*>(src.raw_data()), static_cast<uint32_t*>(dst.raw_data()), n, s);
  ASAP_CUDA_LAUNCH_CHECK("copy_strided");
}

void relu_fwd_cuda(const Tensor& x, Tensor& y) {
  check_f32(x, "relu_fwd");
  launch_map(fptr(x), nullptr, fptr(y), x.numel(), ReluF{}, "relu_fwd");
}
void relu_bwd_cuda(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_f32(x, "relu_bwd");
  check_f32(dy, "relu_bwd");
  launch_map(fptr(x), fptr(dy), fptr(dx), x.numel(), ReluBwdF{}, "relu_bwd");
}
void add_cuda(const Tensor& a, const Tensor& b, Tensor& y) {
  check_f32(a, "add");
  check_f32(b, "add");
  launch_map(fptr(a), fptr(b), fptr(y), a.numel(), AddF{}, "add");
}
void axpy_cuda(double alpha, const Tensor& x, Tensor& y) {
  check_f32(x, "axpy");
  check_f32(y, "axpy");
  launch_map(fptr(x), fptr(y), fptr(y), x.numel(), AxpyF{static_cast<float>(alpha)}, "axpy");
}
void mul_scalar_cuda(const Tensor& x, double s, Tensor& y) {
  check_f32(x, "mul_scalar");
  launch_map(fptr(x), nullptr, fptr(y), x.numel(), MulF{static_cast<float>(s)}, "mul_scalar");
}
void scale_cuda(const Tensor& x, const Tensor& s0d, Tensor& y) {
  check_f32(x, "scale");
  check_f32(s0d, "scale");
  const int64_t n = x.numel();
  if (n == 0) return;
  ASAP_LAUNCH(scale_dev_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), fptr(s0d), fptr(y), n);
  ASAP_CUDA_LAUNCH_CHECK("scale");
}
void scale_per_sample_cuda(const Tensor& x, const Tensor& s, Tensor& y) {
  check_f32(x, "scale_per_sample");
  check_f32(s, "scale_per_sample");
  const int64_t n = x.numel();
  if (n == 0) return;
  const int64_t inner = n / x.dim(0);
  ASAP_LAUNCH(scale_per_sample_kernel, grid_for(n), kThreads, 0, stream(), fptr(x), fptr(s), fptr(y), n, inner);
  ASAP_CUDA_LAUNCH_CHECK("scale_per_sample");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, fill, fill_cuda);
ASAP_REGISTER_KERNEL(CUDA, copy_strided, copy_strided_cuda);
ASAP_REGISTER_KERNEL(CUDA, relu_fwd, relu_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, relu_bwd, relu_bwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, add, add_cuda);
ASAP_REGISTER_KERNEL(CUDA, axpy, axpy_cuda);
ASAP_REGISTER_KERNEL(CUDA, scale, scale_cuda);
ASAP_REGISTER_KERNEL(CUDA, mul_scalar, mul_scalar_cuda);
ASAP_REGISTER_KERNEL(CUDA, scale_per_sample, scale_per_sample_cuda);

}  // namespace asap::cuda
