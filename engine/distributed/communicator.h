// The one interface data-parallel code talks to (docs/distributed.md): rank, size, all-reduce
// sum of a flat buffer, broadcast, barrier. Backends: Open MPI for host memory (mpi_communicator)
// and NCCL for CUDA memory (nccl_communicator, built with CUDA), which uses MPI to share its id.
// The search and train loops call it; kernels never do.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "engine/error.h"
#include "engine/tensor.h"

namespace asap::dist {

// A collective failed or timed out, or the ranks disagree (a divergence check): the job cannot
// go on consistently. asap_run maps it to exit code 6.
struct DistributedError : Error { using Error::Error; };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "mpi" or "nccl"
  // Where the buffers of the collectives live: the CPU for MPI, a CUDA device for NCCL.
  virtual Device device() const = 0;
  // In place, every rank ends with the elementwise sum over ranks; the result is the same on
  // every rank (each backend reduces in one fixed order).
  virtual void allreduce_sum(float* buf, size_t n) = 0;
  virtual void allreduce_sum(double* buf, size_t n) = 0;
  // `bytes` from rank `root` to every rank (buffer in device() memory).
  virtual void broadcast(void* buf, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // A communicator over host memory with the same ranks (itself for MPI; NCCL's MPI side):
  // small host values such as sample counts, checksums and synchronised BN statistics.
  virtual Communicator& host() { return *this; }
  // Ends every rank of the job now with `code` (after this rank's error): a peer blocked in a
  // collective would otherwise wait for a rank that is gone. Does not return.
  [[noreturn]] virtual void abort(int code) = 0;
};

// A contiguous F32/F64 tensor on comm.device(), summed in place over the ranks.
void allreduce_sum(Communicator& comm, Tensor& t);

// A contiguous tensor's bytes from rank `root` to every rank, through comm (a tensor on
// comm.device()) or its host side (a CPU tensor).
void broadcast_tensor(Communicator& comm, Tensor& t, int root);

// Host helpers over host(): a scalar sum, and a broadcast of a string (length first).
double allreduce_sum(Communicator& comm, double v);
void broadcast_string(Communicator& comm, std::string& s, int root);

}  // namespace asap::dist
