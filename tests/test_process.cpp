// External programs start from an argument vector: shell syntax in an argument stays text.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "engine/io/process.h"

namespace fs = std::filesystem;
using asap::run_program;

TEST_CASE("run_program passes arguments verbatim, never through a shell", "[process]") {
  const fs::path pwned = fs::temp_directory_path() / ("asap_pwned_" + std::to_string(::getpid()));
  fs::remove(pwned);
  const std::string hostile = "x'; touch " + pwned.string() + "; echo '$(id)`id`";
  auto r = run_program({"echo", hostile});
  CHECK(r.ok());
  CHECK(r.output == hostile + "\n");
  CHECK_FALSE(fs::exists(pwned));
}

TEST_CASE("run_program reports exit status, output and missing programs", "[process]") {
  auto r = run_program({"ls", "/nonexistent_asap_dir"});
  CHECK(r.started);
  CHECK(r.exit_code != 0);
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.summary(), Catch::StartsWith("exit ") && Catch::Contains("nonexistent_asap_dir"));
  auto m = run_program({"asap_no_such_program_xyz", "a"});
  CHECK_FALSE(m.started);
  CHECK_THAT(m.summary(), Catch::Contains("not found"));
  CHECK_FALSE(asap::program_available("asap_no_such_program_xyz"));
  CHECK(asap::program_available("ls"));
  CHECK_FALSE(run_program({}).started);
}
