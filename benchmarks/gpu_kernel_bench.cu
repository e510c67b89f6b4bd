// GPU kernel timing harness for the CUDA backend's memory-bound kernels. It calls the production
// entries through the kernel table (no copies of kernels here), times each with CUDA events after
// flushing L2 (a 512 MiB memset between repetitions), and reports the median time, the achieved
// bandwidth on the MINIMUM bytes the op must move (each input read once, each output written
// once) and that bandwidth as a percentage of a measured device-to-device cudaMemcpy.
// Usage: gpu_kernel_bench [--json FILE] [--reps N]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/kernel_table.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using namespace asap;

namespace {

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

struct Row {
  std::string name;
  double ms, bytes, gbs, pct;
};

int g_reps = 20;
void* g_flush = nullptr;
size_t g_flush_bytes = size_t(512) << 20;
double g_copy_gbs = 0;
std::vector<Row> g_rows;
const KernelTable* K = nullptr;

// The engine's compute stream: kernels launch there, so events go there too (legacy default
// stream = stream 0 would also order with it, as the engine's stream is a blocking stream).
double time_ms(const std::function<void()>& fn) {
  fn();  // warm-up: handles, cuDNN/cuBLAS heuristics, caching allocator
  CK(cudaDeviceSynchronize());
  std::vector<double> t;
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int r = 0; r < g_reps; ++r) {
    CK(cudaMemsetAsync(g_flush, r & 0xff, g_flush_bytes, 0));
    CK(cudaEventRecord(a, 0));
    fn();
    CK(cudaEventRecord(b, 0));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CK(cudaGetLastError());
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const std::string& name, double bytes, const std::function<void()>& fn) {
  const double ms = time_ms(fn);
  const double gbs = bytes / (ms * 1e-3) / 1e9;
  g_rows.push_back({name, ms, bytes, gbs, g_copy_gbs > 0 ? 100.0 * gbs / g_copy_gbs : 0});
  std::printf("%-44s %9.4f ms %9.1f GB/s %6.1f %%\n", name.c_str(), ms, gbs, g_rows.back().pct);
  std::fflush(stdout);
}

Tensor rnd(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s, DType::F32, Device::cuda());
  K->fill_uniform(t, seed, 0, -1.0, 1.0);  // never zeros: zeros can run faster than real data
  return t;
}
Tensor empty(const Shape& s) { return Tensor::empty(s, DType::F32, Device::cuda()); }
double fbytes(const Tensor& t) { return static_cast<double>(t.numel()) * 4.0; }

void measure_copy() {
  const size_t n = size_t(1) << 30;  // 1 GiB
  void *src, *dst;
  CK(cudaMalloc(&src, n));
  CK(cudaMalloc(&dst, n));
  CK(cudaMemset(src, 1, n));
  const double ms = time_ms([&] { CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, 0)); });
  g_copy_gbs = 2.0 * n / (ms * 1e-3) / 1e9;  // bytes read + bytes written
  g_rows.push_back({"d2d cudaMemcpy 1 GiB (reference)", ms, 2.0 * n, g_copy_gbs, 100.0});
  std::printf("%-44s %9.4f ms %9.1f GB/s  (reference)\n", "d2d cudaMemcpy 1 GiB", ms, g_copy_gbs);
  CK(cudaFree(src));
  CK(cudaFree(dst));
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) g_reps = std::max(3, std::atoi(argv[++i]));
  }
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("gpu_kernel_bench: SKIPPED: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  K = &kernels(DeviceType::CUDA);
  CK(cudaMalloc(&g_flush, g_flush_bytes));
  measure_copy();

  try {
    // gpu-large cell shapes: batch 256, C 16..64, 32x32 planes (tens to hundreds of MiB per tensor).
    const int64_t N = 256, C = 64, H = 32, W = 32, O = 64;
    Tensor x = rnd({N, C, H, W}, 1), y = empty({N, C, H, W}), dy = rnd({N, C, H, W}, 2), dx = empty({N, C, H, W});
    for (int k : {3, 5}) {
      for (int d : {1, 2}) {
        Conv2dParams p;
        p.padding = d * (k - 1) / 2;
        p.dilation = d;
        p.groups = int(C);
        Tensor w = rnd({C, 1, k, k}, 3), dw = empty({C, 1, k, k});
        const std::string tag = "k" + std::to_string(k) + " d" + std::to_string(d);
        report("depthwise fwd " + tag, fbytes(x) + fbytes(y), [&] { K->conv2d_fwd(x, w, y, p); });
        report("depthwise bwd_data " + tag, fbytes(dy) + fbytes(dx), [&] { K->conv2d_bwd_data(dy, w, dx, p); });
        report("depthwise bwd_weight " + tag, fbytes(x) + fbytes(dy), [&] { K->conv2d_bwd_weight(x, dy, dw, p); });
      }
    }
    // Separable block: fused entry vs the unfused chain relu -> depthwise -> 1x1.
    for (int k : {3, 5}) {
      Conv2dParams p, p1;
      p.padding = (k - 1) / 2;
      Conv2dParams pd = p;
      pd.groups = int(C);
      Tensor wd = rnd({C, 1, k, k}, 4), wp = rnd({O, C, 1, 1}, 5), mid = empty({N, C, H, W}), r = empty({N, C, H, W});
      Tensor out = empty({N, O, H, W});
      const double minb = fbytes(x) + fbytes(out);  // x in, y out (mid is extra, kept for backward)
      report("sepblock fwd FUSED k" + std::to_string(k), minb, [&] { K->sepblock_fwd(x, wd, wp, mid, out, p); });
      report("sepblock fwd unfused k" + std::to_string(k), minb, [&] {
        K->relu_fwd(x, r);
        K->conv2d_fwd(r, wd, mid, pd);
        K->conv2d_fwd(mid, wp, out, p1);
      });
      Tensor dout = rnd({N, O, H, W}, 6), gx = empty({N, C, H, W}), gwd = empty({C, 1, k, k}), gwp = empty({O, C, 1, 1});
      report("sepblock bwd FUSED k" + std::to_string(k), fbytes(x) + fbytes(mid) + fbytes(dout) + fbytes(gx),
             [&] { K->sepblock_bwd(x, wd, wp, mid, dout, gx, gwd, gwp, p); });
    }
    // Mixed-op weighted sum over K = 8 alive ops (and 2: the sparse end of the schedule).
    for (int Kops : {8, 2}) {
      const Shape s{N, 32, H, W};
      std::vector<Tensor> xs, dxs;
      for (int k = 0; k < Kops; ++k) {
        xs.push_back(rnd(s, 10 + k));
        dxs.push_back(empty(s));
      }
      Tensor w = rnd({Kops}, 30), dwv = empty({Kops}), ys = empty(s), dys = rnd(s, 31);
      const double e = fbytes(ys);
      report("wsum fwd K=" + std::to_string(Kops), e * (Kops + 1), [&] { K->wsum_fwd(xs, w, ys); });
      report("wsum bwd K=" + std::to_string(Kops), e * (2 * Kops + 1), [&] { K->wsum_bwd(xs, w, dys, dxs, dwv); });
    }
    // Batch norm (affine off, as in the search network).
    {
      Tensor mean = empty({C}), invstd = empty({C}), rm = rnd({C}, 40), rv = empty({C});
      K->fill(rv, 1.0);
      BatchNormParams bp;
      Tensor none;
      report("bn fwd train (stats + apply)", fbytes(x) + fbytes(y),
             [&] { K->bn_fwd_train(x, none, none, y, mean, invstd, rm, rv, bp); });
      Tensor dgn, dbn;
      report("bn bwd train", fbytes(x) + fbytes(dy) + fbytes(dx),
             [&] { K->bn_bwd_train(x, dy, none, mean, invstd, dx, dgn, dbn); });
    }
    CK(cudaDeviceSynchronize());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_kernel_bench: %s\n", e.what());
    return 1;
  }

  if (!json.empty()) {
    FILE* f = std::fopen(json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json.c_str());
      return 1;
    }
    std::fprintf(f, "{\"device\": \"%s\", \"copy_gbs\": %.1f, \"reps\": %d, \"kernels\": [\n", prop.name, g_copy_gbs,
                 g_reps);
    for (size_t i = 0; i < g_rows.size(); ++i)
      std::fprintf(f, "  {\"name\": \"%s\", \"ms\": %.5f, \"bytes\": %.0f, \"gbs\": %.1f, \"pct_copy\": %.1f}%s\n",
                   g_rows[i].name.c_str(), g_rows[i].ms, g_rows[i].bytes, g_rows[i].gbs, g_rows[i].pct,
                   i + 1 < g_rows.size() ? "," : "");
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  CK(cudaFree(g_flush));
  return 0;
}
