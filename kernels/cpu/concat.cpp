// CPU channel concat (dim 1) of contiguous [N, C_i, ...] tensors and its backward (channel
// slices of dy). Each (sample, input) pair is one contiguous block of C_i * inner elements in
// both tensors, so the work is a set of memcpy calls, parallel over the blocks.
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "engine/kernel_table.h"
#include "kernels/cpu/parallel.h"

namespace asap {
namespace {

using cpu::parallel_for;

int64_t inner_size(const Tensor& t) {
  int64_t s = 1;
  for (int i = 2; i < t.ndim(); ++i) s *= t.dim(i);
  return s;
}

// Copies block (n, i) between y and part i; to_y picks the direction.
void concat_blocks(const std::vector<const Tensor*>& parts, const Tensor& y, bool to_y) {
  const int64_t N = y.dim(0), Cy = y.dim(1), inner = inner_size(y);
  const size_t es = dtype_size(y.dtype());
  const int64_t P = static_cast<int64_t>(parts.size());
  std::vector<int64_t> c_off(P + 1, 0);
  for (int64_t i = 0; i < P; ++i) c_off[i + 1] = c_off[i] + parts[i]->dim(1);
  ASAP_CHECK(c_off[P] == Cy, "concat: channel counts sum to ", c_off[P], ", output has ", Cy);
  char* yb = static_cast<char*>(y.raw_data());
  const int64_t total = N * P;
  parallel_for(total, y.numel() > 65536, [&](int64_t lo_, int64_t hi_) {
    for (int64_t b = lo_; b < hi_; ++b) {
      const int64_t n = b / P, i = b % P;
      const Tensor* t = parts[i];
      const int64_t ci = c_off[i + 1] - c_off[i];
      const size_t bytes = static_cast<size_t>(ci * inner) * es;
      char* yblk = yb + static_cast<size_t>((n * Cy + c_off[i]) * inner) * es;
      char* tblk = static_cast<char*>(t->raw_data()) + static_cast<size_t>(n * ci * inner) * es;
      if (to_y) std::memcpy(yblk, tblk, bytes);
      else std::memcpy(tblk, yblk, bytes);
    }
  });
}

void concat_fwd_cpu(const std::vector<Tensor>& xs, Tensor& y) {
  std::vector<const Tensor*> parts(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) parts[i] = &xs[i];
  concat_blocks(parts, y, true);
}

void concat_bwd_cpu(const Tensor& dy, std::vector<Tensor>& dxs) {
  std::vector<const Tensor*> parts(dxs.size());
  for (size_t i = 0; i < dxs.size(); ++i) parts[i] = &dxs[i];
  concat_blocks(parts, dy, false);
}

}  // namespace

ASAP_REGISTER_KERNEL(CPU, concat_fwd, concat_fwd_cpu);
ASAP_REGISTER_KERNEL(CPU, concat_bwd, concat_bwd_cpu);

}  // namespace asap
