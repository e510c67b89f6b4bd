// The NCCL backend: CUDA buffers on the engine's compute stream, one rank per GPU. The NCCL
// unique id is created on rank 0 and broadcast over MPI, which also serves host() (sample
// counts, checksums, synchronised BN statistics). Built only with the real CUDA backend.
#pragma once
#include <memory>

#include "engine/distributed/mpi/mpi_communicator.h"

namespace asap::dist {

class NcclCommunicator final : public Communicator {
 public:
  // `mpi` must outlive this; `device_index` is this rank's GPU.
  NcclCommunicator(MpiCommunicator& mpi, int device_index, double timeout_s);
  ~NcclCommunicator() override;
  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  const char* backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda(device_); }
  void allreduce_sum(float* buf, size_t n) override;
  void allreduce_sum(double* buf, size_t n) override;
  void broadcast(void* buf, size_t bytes, int root) override;
  void barrier() override;
  Communicator& host() override { return mpi_; }
  [[noreturn]] void abort(int code) override;

 private:
  void wait(const char* what);  // the stream, bounded by the watchdog
  MpiCommunicator& mpi_;
  int device_ = 0;
  void* comm_ = nullptr;  // ncclComm_t
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace asap::dist
