#include "engine/distributed/mpi/mpi_communicator.h"

// The C API only: the deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <vector>

namespace asap::dist {
namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw DistributedError(std::string(call) + " failed: " + std::string(msg, static_cast<size_t>(len)) +
                         " (a peer rank may have died)");
}

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

// MPI counts are int: large buffers go in chunks.
constexpr size_t kMaxChunk = size_t(1) << 30;

}  // namespace

MpiCommunicator::MpiCommunicator(double timeout_s) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Only the thread that runs the loops calls MPI (the data loader's worker never does).
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    finalize_ = true;
  }
  check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  if (size_ > 1) watchdog_ = std::make_unique<Watchdog>(timeout_s, rank_);
}

MpiCommunicator::~MpiCommunicator() {
  watchdog_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalize_ && !finalized) MPI_Finalize();
}

// Reduce to rank 0, then broadcast: every rank gets rank 0's bits, whatever order an MPI_Allreduce
// algorithm would take on each rank (the prune decisions depend on equal alphas everywhere).
template <typename T>
void MpiCommunicator::allreduce_impl(T* buf, size_t n) {
  if (size_ == 1 || n == 0) return;
  Watchdog::Armed guard(*watchdog_, "an all-reduce (MPI_Reduce + MPI_Bcast)");
  for (size_t off = 0; off < n; off += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, n - off));
    void* send = rank_ == 0 ? MPI_IN_PLACE : static_cast<void*>(buf + off);
    check(MPI_Reduce(send, buf + off, count, mpi_type<T>(), MPI_SUM, 0, MPI_COMM_WORLD), "MPI_Reduce");
    check(MPI_Bcast(buf + off, count, mpi_type<T>(), 0, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

void MpiCommunicator::allreduce_sum(float* buf, size_t n) { allreduce_impl(buf, n); }
void MpiCommunicator::allreduce_sum(double* buf, size_t n) { allreduce_impl(buf, n); }

void MpiCommunicator::broadcast(void* buf, size_t bytes, int root) {
  if (size_ == 1 || bytes == 0) return;
  Watchdog::Armed guard(*watchdog_, "a broadcast (MPI_Bcast)");
  char* p = static_cast<char*>(buf);
  for (size_t off = 0; off < bytes; off += kMaxChunk)
    check(MPI_Bcast(p + off, static_cast<int>(std::min(kMaxChunk, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD),
          "MPI_Bcast");
}

void MpiCommunicator::barrier() {
  if (size_ == 1) return;
  Watchdog::Armed guard(*watchdog_, "a barrier (MPI_Barrier)");
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void MpiCommunicator::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest if it ever does
}

}  // namespace asap::dist
