// Channel concat of contiguous [N, C_i, ...] tensors: each input is one strided 2-D block of the
// output (N rows of C_i * inner floats, pitch C * inner), so each direction is one
// cudaMemcpy2DAsync per part, which the copy engines run at full bandwidth.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/host_sync.h"

namespace asap::cuda {
namespace {

void concat_impl(const std::vector<const Tensor*>& parts, const Tensor& y, bool to_y, const char* op) {
  check_f32(y, op);
  const int64_t N = y.dim(0), Cy = y.dim(1), inner = y.numel() / std::max<int64_t>(N * Cy, 1);
  int64_t off = 0;
  for (const Tensor* t : parts) {
    ASAP_CHECK(t->defined(), op, ": every part must be defined (its channel count places the rest)");
    const int64_t Ci = t->dim(1);
    if (t->numel() > 0) {
      check_f32(*t, op);
      const size_t width = sizeof(float) * Ci * inner, ypitch = sizeof(float) * Cy * inner;
      float* yp = fptr(y) + off * inner;
      if (to_y)
        copy_2d_async(yp, ypitch, fptr(*t), width, width, N, cudaMemcpyDeviceToDevice, stream());
      else
        copy_2d_async(fptr(*t), width, yp, ypitch, width, N, cudaMemcpyDeviceToDevice, stream());
    }
    off += Ci;
  }
  ASAP_CHECK_SHAPE(off == Cy, op, ": channel counts sum to ", off, ", output has ", Cy);
}

void concat_fwd_cuda(const std::vector<Tensor>& xs, Tensor& y) {
  std::vector<const Tensor*> parts;
  for (const Tensor& t : xs) parts.push_back(&t);
  concat_impl(parts, y, true, "concat_fwd");
}
void concat_bwd_cuda(const Tensor& dy, std::vector<Tensor>& dxs) {
  std::vector<const Tensor*> parts;
  for (const Tensor& t : dxs) parts.push_back(&t);
  concat_impl(parts, dy, false, "concat_bwd");
}

}  // namespace

ASAP_REGISTER_KERNEL(CUDA, concat_fwd, concat_fwd_cuda);
ASAP_REGISTER_KERNEL(CUDA, concat_bwd, concat_bwd_cuda);

}  // namespace asap::cuda
