// Runner of the data-parallel unit tests (asap_dist_tests): MPI is initialised once for the whole
// process (a process may not initialise it twice), the tests run on every rank, and it is
// finalised before exit. Started plainly it is a world of one; under mpirun -np N, N ranks.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "engine/distributed/mpi/mpi_communicator.h"
#include "tests/distributed/dist_test_world.h"

namespace {
asap::dist::MpiCommunicator* g_world = nullptr;
}

asap::dist::Communicator& test_world() { return *g_world; }

int main(int argc, char** argv) {
  asap::dist::MpiCommunicator world(120.0);
  g_world = &world;
  const int failed = Catch::Session().run(argc, argv);
  // Every rank reports; the job fails when any rank failed.
  double any = failed ? 1.0 : 0.0;
  world.allreduce_sum(&any, 1);
  g_world = nullptr;
  return any > 0 ? 1 : 0;
}
