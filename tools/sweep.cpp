#include "tools/sweep.h"

#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;

namespace asap::run {
namespace {

uint64_t parse_seed(const std::string& s, const std::string& whole) {
  const uint64_t kMax = 0xFFFFFFFFULL;
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw ConfigError("command line: --seeds '" + whole + "': '" + s + "' is not a seed (a decimal integer 0.." +
                      std::to_string(kMax) + ")");
  const uint64_t v = std::stoull(s);
  if (v > kMax) throw ConfigError("command line: --seeds '" + whole + "': " + s + " is larger than " + std::to_string(kMax));
  return v;
}

}  // namespace

std::vector<uint64_t> parse_seed_list(const std::string& text) {
  std::vector<uint64_t> out;
  std::set<uint64_t> seen;
  if (text.empty()) throw ConfigError("command line: --seeds is empty (e.g. --seeds 0,1,2,3 or --seeds 0-3)");
  size_t b = 0;
  for (;;) {
    const size_t e = text.find(',', b);
    const std::string item = text.substr(b, e == std::string::npos ? std::string::npos : e - b);
    const size_t dash = item.find('-');
    uint64_t lo, hi;
    if (dash == std::string::npos) {
      lo = hi = parse_seed(item, text);
    } else {
      lo = parse_seed(item.substr(0, dash), text);
      hi = parse_seed(item.substr(dash + 1), text);
      if (hi < lo) throw ConfigError("command line: --seeds '" + text + "': range " + item + " runs backwards");
      if (hi - lo >= 100000) throw ConfigError("command line: --seeds '" + text + "': range " + item + " is too long");
    }
    for (uint64_t s = lo; s <= hi; ++s) {
      if (!seen.insert(s).second)
        throw ConfigError("command line: --seeds '" + text + "': seed " + std::to_string(s) + " is listed twice");
      out.push_back(s);
    }
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

SeedAction seed_action(const std::string& dir, const std::string& stage) {
  const fs::path summary = fs::path(dir) / "summary.json";
  if (fs::is_regular_file(summary)) {
    const nlohmann::json j = nlohmann::json::parse(read_file(summary.string()), nullptr, false);
    if (j.is_object() && j.contains(stage == "search" ? "search_seconds" : "test_accuracy")) return SeedAction::Skip;
  }
  if (fs::is_regular_file(fs::path(dir) / "config.yaml")) return SeedAction::Resume;
  return SeedAction::Start;
}

const char* seed_action_name(SeedAction a) {
  return a == SeedAction::Skip ? "complete, skipped" : a == SeedAction::Resume ? "resuming" : "starting";
}

std::string seed_dir(const std::string& out, uint64_t seed) {
  return (fs::path(out) / ("seed-" + std::to_string(seed))).string();
}

std::vector<std::string> child_argv(const SweepChild& c, uint64_t seed, const std::string& dir, bool resume) {
  // A folder or config whose name starts with '-' would read as an option: make it ./-name.
  auto arg = [](const std::string& p) { return !p.empty() && p[0] == '-' ? "./" + p : p; };
  std::vector<std::string> v = {c.asap_run};
  if (resume) v.insert(v.end(), {"--resume", arg(dir), arg(c.config)});
  else v.insert(v.end(), {arg(c.config), "--out", arg(dir)});
  if (c.stage != "all") v.insert(v.end(), {"--stage", c.stage});
  v.insert(v.end(), {"--set", "run.seed=" + std::to_string(seed)});
  for (const auto& s : c.sets) v.insert(v.end(), {"--set", s});
  v.insert(v.end(), {"--set", "run.threads=" + std::to_string(std::max(1, c.threads)), "--set", "run.progress=false"});
  return v;
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

}  // namespace asap::run
