// General convolutions through cuDNN's legacy (v9) API. Math is restricted to FMA (no TF32) so
// results track the CPU backend: the descriptor is set to CUDNN_FMA_MATH and only heuristic
// entries whose mathType is FMA are taken (an entry's mathType overrides the descriptor's when
// used, so an unfiltered pick could run TF32). Backward passes take deterministic algorithms
// only. The workspace is what cudnnGetConvolution*WorkspaceSize reports for the chosen
// algorithm (the heuristic entry's `memory` field is an estimate). The choice per (shape,
// direction) is cached; when cuDNN supports no such algorithm the call returns false and the
// dispatcher uses im2col + cuBLAS for that shape.
#include "kernels/cuda/conv_paths.cuh"

#if defined(ASAP_WITH_CUDNN)
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/handles.h"

namespace asap::cuda {
namespace {

struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descs(const Tensor& xt, const Tensor& wt, const Tensor& yt, const Conv2dParams& p) {
    ASAP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    ASAP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    ASAP_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    ASAP_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    ASAP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)xt.dim(0),
                                                (int)xt.dim(1), (int)xt.dim(2), (int)xt.dim(3)));
    ASAP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)yt.dim(0),
                                                (int)yt.dim(1), (int)yt.dim(2), (int)yt.dim(3)));
    ASAP_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)wt.dim(0),
                                                (int)wt.dim(1), (int)wt.dim(2), (int)wt.dim(3)));
    ASAP_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, p.padding, p.padding, p.stride, p.stride, p.dilation,
                                                     p.dilation, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    ASAP_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, p.groups));
    ASAP_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
  }
  ~Descs() {  // never throws
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int, int>;
Key make_key(int dir, const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  return Key{dir, x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(1), w.dim(2),
             p.stride, p.padding, p.dilation, p.groups};
}
struct Choice {
  bool ok = false;  // false: cuDNN has no usable algorithm here, use im2col
  int algo = 0;
  size_t ws = 0;
};
std::mutex g_mu;
std::map<Key, Choice>& cache() {
  static auto* m = new std::map<Key, Choice>();
  return *m;
}

// The first heuristic entry that succeeded, runs in FMA math and (when asked) is deterministic.
template <typename Perf>
Choice pick(const Perf* perf, int n, bool need_deterministic) {
  for (int i = 0; i < n; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].mathType == CUDNN_FMA_MATH &&
        (!need_deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
      Choice c;
      c.ok = true;
      c.algo = static_cast<int>(perf[i].algo);
      return c;
    }
  return Choice{};
}

// Sets c.ws from cuDNN's own size query for the chosen algorithm; NOT_SUPPORTED means im2col.
void query_workspace(Choice& c, cudnnStatus_t status, size_t bytes) {
  if (!c.ok) return;
  if (status == CUDNN_STATUS_NOT_SUPPORTED) {
    c.ok = false;
    return;
  }
  ASAP_CUDNN_CHECK(status);
  c.ws = bytes;
}

}  // namespace

bool cudnn_compiled() { return true; }

bool cudnn_conv_fwd(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p) {
  Descs d(x, w, y, p);
  cudnnHandle_t h = cudnn_handle();
  Choice c;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto key = make_key(0, x, w, p);
    auto it = cache().find(key);
    if (it == cache().end()) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int n = 0;
      ASAP_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
      Choice ch = pick(perf, n, false);
      size_t bytes = 0;
      query_workspace(ch, ch.ok ? cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                      static_cast<cudnnConvolutionFwdAlgo_t>(ch.algo), &bytes)
                                : CUDNN_STATUS_SUCCESS, bytes);
      it = cache().emplace(key, ch).first;
    }
    c = it->second;
  }
  if (!c.ok) return false;
  DeviceBuffer ws(c.ws);
  const float one = 1.f, zero = 0.f;
  ASAP_CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x, fptr(x), d.w, fptr(w), d.conv,
                                           static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws.get(), c.ws,
                                           &zero, d.y, fptr(y)));
  return true;
}

bool cudnn_conv_bwd_data(const Tensor& dy, const Tensor& w, Tensor& dx, const Conv2dParams& p) {
  Descs d(dx, w, dy, p);
  cudnnHandle_t h = cudnn_handle();
  Choice c;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto key = make_key(1, dx, w, p);
    auto it = cache().find(key);
    if (it == cache().end()) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      int n = 0;
      ASAP_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
      Choice ch = pick(perf, n, true);
      size_t bytes = 0;
      query_workspace(ch, ch.ok ? cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x,
                                      static_cast<cudnnConvolutionBwdDataAlgo_t>(ch.algo), &bytes)
                                : CUDNN_STATUS_SUCCESS, bytes);
      it = cache().emplace(key, ch).first;
    }
    c = it->second;
  }
  if (!c.ok) return false;
  DeviceBuffer ws(c.ws);
  const float one = 1.f, zero = 0.f;
  ASAP_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w, fptr(w), d.y, fptr(dy), d.conv,
                                                static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws.get(),
                                                c.ws, &zero, d.x, fptr(dx)));
  return true;
}

bool cudnn_conv_bwd_weight(const Tensor& x, const Tensor& dy, Tensor& dw, const Conv2dParams& p) {
  Descs d(x, dw, dy, p);
  cudnnHandle_t h = cudnn_handle();
  Choice c;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto key = make_key(2, x, dw, p);
    auto it = cache().find(key);
    if (it == cache().end()) {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      int n = 0;
      ASAP_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
      Choice ch = pick(perf, n, true);
      size_t bytes = 0;
      query_workspace(ch, ch.ok ? cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(ch.algo), &bytes)
                                : CUDNN_STATUS_SUCCESS, bytes);
      it = cache().emplace(key, ch).first;
    }
    c = it->second;
  }
  if (!c.ok) return false;
  DeviceBuffer ws(c.ws);
  const float one = 1.f, zero = 0.f;
  ASAP_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, fptr(x), d.y, fptr(dy), d.conv,
                                                  static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws.get(),
                                                  c.ws, &zero, d.w, fptr(dw)));
  return true;
}

}  // namespace asap::cuda

#else  // no cuDNN in this build: the dispatcher never calls these

namespace asap::cuda {
bool cudnn_compiled() { return false; }
bool cudnn_conv_fwd(const Tensor&, const Tensor&, Tensor&, const Conv2dParams&) {
  throw Error("cuDNN is not compiled into this build (set CUDNN_ROOT when configuring)");
}
bool cudnn_conv_bwd_data(const Tensor&, const Tensor&, Tensor&, const Conv2dParams&) {
  throw Error("cuDNN is not compiled into this build (set CUDNN_ROOT when configuring)");
}
bool cudnn_conv_bwd_weight(const Tensor&, const Tensor&, Tensor&, const Conv2dParams&) {
  throw Error("cuDNN is not compiled into this build (set CUDNN_ROOT when configuring)");
}
}  // namespace asap::cuda
#endif
