#include "engine/distributed/world.h"

#include <cstdlib>

#if defined(ASAP_WITH_MPI)
#include "engine/distributed/mpi/mpi_communicator.h"
#endif
#if defined(ASAP_WITH_NCCL)
#include "engine/distributed/nccl/nccl_communicator.h"
#endif

namespace asap::dist {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// Borrows a communicator without owning it (the CPU case of make_device_communicator).
class Borrowed final : public Communicator {
 public:
  explicit Borrowed(Communicator& c) : c_(c) {}
  int rank() const override { return c_.rank(); }
  int size() const override { return c_.size(); }
  const char* backend() const override { return c_.backend(); }
  Device device() const override { return c_.device(); }
  void allreduce_sum(float* b, size_t n) override { c_.allreduce_sum(b, n); }
  void allreduce_sum(double* b, size_t n) override { c_.allreduce_sum(b, n); }
  void broadcast(void* b, size_t bytes, int root) override { c_.broadcast(b, bytes, root); }
  void barrier() override { c_.barrier(); }
  Communicator& host() override { return c_.host(); }
  [[noreturn]] void abort(int code) override {
    c_.abort(code);
    std::_Exit(code);  // unreachable: abort() does not return
  }

 private:
  Communicator& c_;
};

}  // namespace

Launch detect_launch() {
  Launch l;
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* v = env(name)) {
      l.under_launcher = true;
      l.size = std::max(1, std::atoi(v));
      l.evidence = std::string(name) + "=" + v;
      return l;
    }
  }
  if (const char* v = env("PMIX_RANK")) {
    l.under_launcher = true;
    l.evidence = std::string("PMIX_RANK=") + v;
    return l;
  }
  if (const char* v = env("SLURM_STEP_NUM_TASKS"); v && std::atoi(v) > 1) {
    l.under_launcher = true;
    l.size = std::atoi(v);
    l.evidence = std::string("SLURM_STEP_NUM_TASKS=") + v;
  }
  return l;
}

bool built_with_mpi() {
#if defined(ASAP_WITH_MPI)
  return true;
#else
  return false;
#endif
}

bool built_with_nccl() {
#if defined(ASAP_WITH_NCCL)
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_host_communicator(const std::string& mode, const Launch& launch, double timeout_s) {
  if (mode != "auto" && mode != "off" && mode != "mpi")
    throw ConfigError("key 'run.distributed': '" + mode + "' is not one of auto, off, mpi");
  if (mode == "off") {
    if (launch.under_launcher && launch.size > 1)
      throw ConfigError("key 'run.distributed' is off but the launcher started " + std::to_string(launch.size) +
                        " ranks (" + launch.evidence + "); they would all write one run folder: use auto or mpi, or one rank");
    return nullptr;
  }
  if (mode == "auto" && !launch.under_launcher) return nullptr;
  if (!built_with_mpi())
    throw ConfigError(std::string("this asap_run was built without MPI but ") +
                      (mode == "mpi" ? "run.distributed is mpi" : "it was launched by mpirun/srun (" + launch.evidence + ")") +
                      ": install libopenmpi-dev and rebuild (CMake finds MPI; -DASAP_MPI=ON), or run without the launcher");
#if defined(ASAP_WITH_MPI)
  auto c = std::make_unique<MpiCommunicator>(timeout_s);
  if (c->size() == 1) return nullptr;  // one rank: the plain single-process path, bit for bit
  return c;
#else
  (void)timeout_s;
  return nullptr;
#endif
}

std::unique_ptr<Communicator> make_device_communicator(Communicator& host, Device dev, double timeout_s) {
  if (!dev.is_cuda()) return std::make_unique<Borrowed>(host);
#if defined(ASAP_WITH_NCCL)
  auto* mpi = dynamic_cast<MpiCommunicator*>(&host);
  ASAP_CHECK_T(ConfigError, mpi, "distributed: NCCL needs the MPI host communicator");
  return std::make_unique<NcclCommunicator>(*mpi, dev.index, timeout_s);
#else
  (void)timeout_s;
  throw ConfigError("distributed training on " + dev.str() +
                    " needs NCCL, and this build has none (the real CUDA backend with nccl.h and libnccl)");
#endif
}

}  // namespace asap::dist
