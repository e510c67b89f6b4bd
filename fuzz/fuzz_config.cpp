// YAML run config (parse_config). Input: YAML text, optionally followed by a NUL byte and
// newline-separated --set overrides. Only asap::Error may escape (the contract is ConfigError
// naming file, key and line). A config that parses must survive its own round trip: the run
// folder's config.yaml (to_yaml) is what --resume reads back, so it must parse to the same config.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "fuzz_util.h"
#include "tools/config.h"

using namespace asap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;  // configs are small; long inputs only slow the search
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string yaml = in.substr(0, nul);
  std::vector<std::string> sets;
  if (nul != std::string::npos) {
    std::istringstream ss(in.substr(nul + 1));
    for (std::string line; std::getline(ss, line);) sets.push_back(line);
  }
  run::RunConfig c;
  try {
    c = run::parse_config(yaml, "fuzz.yaml", sets);
  } catch (const Error&) {
    return 0;
  }
  const std::string once = run::to_yaml(c);
  run::RunConfig again;
  try {
    again = run::parse_config(once, "config.yaml");
  } catch (const Error& e) {
    std::fprintf(stderr, "round trip rejected: %s\n--- to_yaml ---\n%s\n", e.what(), once.c_str());
    std::abort();
  }
  const std::string twice = run::to_yaml(again);
  if (once != twice) std::fprintf(stderr, "--- first ---\n%s\n--- second ---\n%s\n", once.c_str(), twice.c_str());
  FUZZ_ASSERT(once == twice, "to_yaml(parse_config(to_yaml(c))) == to_yaml(c)");
  return 0;
}
