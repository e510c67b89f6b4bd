// The NCCL communicator over CUDA tensors (built with the real CUDA backend and NCCL; run on a
// GPU by benchmarks/device_check.sh at world size 1, and at any size under mpirun): sums of
// float and double device buffers, a broadcast, a barrier, and the gradient buckets on the device.
#include <catch2/catch.hpp>

#if defined(ASAP_WITH_NCCL)
#include "engine/distributed/grad_sync.h"
#include "engine/distributed/nccl/nccl_communicator.h"
#include "tests/cuda/test_cuda_util.h"
#include "tests/distributed/dist_test_world.h"

using namespace asap;
using namespace asap::dist;

TEST_CASE("nccl: all-reduce, broadcast and gradient buckets on CUDA tensors", "[nccl]") {
  ASAP_SKIP_WITHOUT_CUDA();
  auto& mpi = dynamic_cast<MpiCommunicator&>(test_world());
  NcclCommunicator nccl(mpi, 0, 60.0);
  const int W = nccl.size(), r = nccl.rank();
  CHECK(nccl.device() == Device::cuda(0));
  Tensor f = Tensor::full({1000}, double(r + 1), DType::F32, Device::cuda(0));
  allreduce_sum(nccl, f);
  for (float v : f.to(Device::cpu()).to_vector()) REQUIRE(v == float(W * (W + 1) / 2));
  Tensor d = Tensor::full({33}, 0.5, DType::F64, Device::cuda(0));
  allreduce_sum(nccl, d);
  for (double v : d.to(Device::cpu()).to_vector_f64()) REQUIRE(v == 0.5 * W);
  Tensor b = Tensor::full({8}, r == 0 ? 7.0 : -1.0, DType::F32, Device::cuda(0));
  nccl.broadcast(b.raw_data(), b.nbytes(), 0);
  for (float v : b.to(Device::cpu()).to_vector()) CHECK(v == 7.0f);
  nccl.barrier();
  Tensor p = Tensor::zeros({40}, DType::F32, Device::cuda(0));
  p.impl()->requires_grad = true;
  p.impl()->grad = Tensor::full({40}, double(r + 1), DType::F32, Device::cuda(0)).impl_ptr();
  GradAllReduce sync(nccl);
  sync.average({p}, 1);
  for (float v : p.grad().to(Device::cpu()).to_vector()) CHECK(v == Approx((W + 1) / 2.0));
}
#endif
