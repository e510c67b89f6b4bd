#include "engine/distributed/nccl/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>

#include "kernels/cuda/allocator.h"

namespace asap::dist {
namespace {

void check(ncclResult_t rc, const char* call) {
  if (rc != ncclSuccess)
    throw DistributedError(std::string(call) + " failed: " + ncclGetErrorString(rc) + " (a peer rank may have died)");
}

ncclComm_t as_comm(void* p) { return static_cast<ncclComm_t>(p); }

}  // namespace

NcclCommunicator::NcclCommunicator(MpiCommunicator& mpi, int device_index, double timeout_s)
    : mpi_(mpi), device_(device_index) {
  ncclUniqueId id;
  if (mpi_.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  mpi_.broadcast(&id, sizeof id, 0);
  if (cudaSetDevice(device_) != cudaSuccess)
    throw DistributedError("nccl: cudaSetDevice(" + std::to_string(device_) + ") failed");
  ncclComm_t c = nullptr;
  check(ncclCommInitRank(&c, mpi_.size(), id, mpi_.rank()), "ncclCommInitRank");
  comm_ = c;
  if (mpi_.size() > 1) watchdog_ = std::make_unique<Watchdog>(timeout_s, mpi_.rank());
}

NcclCommunicator::~NcclCommunicator() {
  watchdog_.reset();
  if (comm_) ncclCommDestroy(as_comm(comm_));
}

// The collectives are enqueued on the compute stream, so they are ordered after the backward
// kernels that wrote the gradients and before the optimizer kernels that read them. The host
// waits (bounded) so that a dead peer surfaces here rather than in a later, unrelated kernel.
void NcclCommunicator::wait(const char* what) {
  if (mpi_.size() == 1) return;
  Watchdog::Armed guard(*watchdog_, what);
  if (cudaStreamSynchronize(cuda::stream()) != cudaSuccess)
    throw DistributedError(std::string("nccl: ") + what + ": the stream failed");
}

void NcclCommunicator::allreduce_sum(float* buf, size_t n) {
  if (n == 0) return;
  check(ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, as_comm(comm_), cuda::stream()), "ncclAllReduce");
  wait("an all-reduce (ncclAllReduce)");
}

void NcclCommunicator::allreduce_sum(double* buf, size_t n) {
  if (n == 0) return;
  check(ncclAllReduce(buf, buf, n, ncclFloat64, ncclSum, as_comm(comm_), cuda::stream()), "ncclAllReduce");
  wait("an all-reduce (ncclAllReduce)");
}

void NcclCommunicator::broadcast(void* buf, size_t bytes, int root) {
  if (bytes == 0) return;
  check(ncclBroadcast(buf, buf, bytes, ncclUint8, root, as_comm(comm_), cuda::stream()), "ncclBroadcast");
  wait("a broadcast (ncclBroadcast)");
}

void NcclCommunicator::barrier() {
  wait("a barrier (stream)");
  mpi_.barrier();
}

void NcclCommunicator::abort(int code) {
  if (comm_) ncclCommAbort(as_comm(comm_));
  comm_ = nullptr;
  mpi_.abort(code);
}

}  // namespace asap::dist
