// The Open MPI backend: host buffers over MPI_COMM_WORLD. Errors return (MPI_ERRORS_RETURN) and
// become DistributedError naming the call; every blocking call is bounded by the watchdog.
#pragma once
#include <memory>

#include "engine/distributed/communicator.h"
#include "engine/distributed/watchdog.h"

namespace asap::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI (once per process; a process not started by mpirun becomes a singleton of
  // size 1) and finalises it in the destructor when it initialised it.
  explicit MpiCommunicator(double timeout_s);
  ~MpiCommunicator() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }
  void allreduce_sum(float* buf, size_t n) override;
  void allreduce_sum(double* buf, size_t n) override;
  void broadcast(void* buf, size_t bytes, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 private:
  template <typename T>
  void allreduce_impl(T* buf, size_t n);
  int rank_ = 0, size_ = 1;
  bool finalize_ = false;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace asap::dist
