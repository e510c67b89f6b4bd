// How asap_run finds its ranks: the launcher's environment (mpirun/mpiexec of Open MPI, a PMI
// launcher, srun with several tasks), run.distributed (auto | off | mpi) and the build (MPI and
// NCCL are optional). A single rank is never distributed: no collective runs and nothing in the
// arithmetic changes.
#pragma once
#include <memory>
#include <string>

#include "engine/distributed/communicator.h"

namespace asap::dist {

struct Launch {
  bool under_launcher = false;  // started by mpirun/srun (the environment says so)
  int size = 1;                 // the world size the environment announces (1 when unknown)
  std::string evidence;         // e.g. "OMPI_COMM_WORLD_SIZE=2", for messages
};
// OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK (mpirun, mpiexec.hydra); SLURM_STEP_NUM_TASKS > 1
// (srun with several tasks: a plain job script or array task stays a single process).
Launch detect_launch();

bool built_with_mpi();
bool built_with_nccl();

// The host communicator for `mode` ("auto", "off", "mpi"), or null for a single process.
// Throws ConfigError (exit 2) when MPI is asked for or the launcher started several ranks but
// this build has no MPI, and when run.distributed is off under a launcher of several ranks.
std::unique_ptr<Communicator> make_host_communicator(const std::string& mode, const Launch& launch, double timeout_s);
// The communicator for tensors on `dev`: `host` itself for the CPU, NCCL over it for CUDA.
// `host` must outlive the result.
std::unique_ptr<Communicator> make_device_communicator(Communicator& host, Device dev, double timeout_s);

}  // namespace asap::dist
