// How asap_run recognises a launch: the launcher's environment, run.distributed, the build.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <string>

#include "engine/distributed/world.h"

using namespace asap;
using namespace asap::dist;

namespace {
// Sets one launcher variable for a scope (the others cleared) and restores them after.
struct EnvScope {
  std::map<std::string, std::string> saved;
  std::map<std::string, bool> had;
  explicit EnvScope(const char* key = nullptr, const char* value = nullptr) {
    for (const char* k : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"}) {
      const char* v = std::getenv(k);
      had[k] = v != nullptr;
      if (v) saved[k] = v;
      unsetenv(k);
    }
    if (key) setenv(key, value, 1);
  }
  ~EnvScope() {
    for (const auto& [k, h] : had) {
      if (h) setenv(k.c_str(), saved[k].c_str(), 1);
      else unsetenv(k.c_str());
    }
  }
};
}  // namespace

TEST_CASE("a launch is recognised from the launcher's environment", "[dist]") {
  {
    EnvScope e;
    CHECK_FALSE(detect_launch().under_launcher);
  }
  {
    EnvScope e("SLURM_STEP_NUM_TASKS", "1");  // a plain job script or array task
    CHECK_FALSE(detect_launch().under_launcher);
  }
  {
    EnvScope e("SLURM_STEP_NUM_TASKS", "8");
    const Launch l = detect_launch();
    CHECK(l.under_launcher);
    CHECK(l.size == 8);
  }
  {
    EnvScope e("OMPI_COMM_WORLD_SIZE", "2");
    const Launch l = detect_launch();
    CHECK(l.under_launcher);
    CHECK(l.size == 2);
    CHECK(l.evidence == "OMPI_COMM_WORLD_SIZE=2");
  }
  {
    EnvScope e("PMIX_RANK", "0");
    CHECK(detect_launch().under_launcher);
  }
}

TEST_CASE("run.distributed: off under several ranks and unknown modes are refused", "[dist]") {
  Launch two;
  two.under_launcher = true;
  two.size = 2;
  two.evidence = "OMPI_COMM_WORLD_SIZE=2";
  try {
    make_host_communicator("off", two, 10);
    FAIL("off under 2 ranks was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("the launcher started 2 ranks (OMPI_COMM_WORLD_SIZE=2)") != std::string::npos);
  }
  CHECK_THROWS_AS(make_host_communicator("nccl", Launch(), 10), ConfigError);
  // No launcher and auto or off: one process, no communicator (and no MPI call).
  CHECK(make_host_communicator("auto", Launch(), 10) == nullptr);
  CHECK(make_host_communicator("off", Launch(), 10) == nullptr);
  CHECK(built_with_mpi());  // this test binary exists only in MPI builds
}
