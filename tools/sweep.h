// asap_sweep's pieces: the seed list, the per-seed run folder and what to do with it (skip, resume,
// start), and the asap_run argument vector (no shell). tools/asap_sweep_main.cpp drives them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asap::run {

// "0,1,2,3" or ranges "0-3", mixed ("0-2,7"); no repeats, each 0..2^32-1. Throws asap::ConfigError
// naming the bad entry.
std::vector<uint64_t> parse_seed_list(const std::string& text);

enum class SeedAction { Skip, Resume, Start };
// Skip: summary.json holds a test accuracy (stage all or train) or search seconds (stage search):
// the run finished. Resume: config.yaml exists (an interrupted run). Start: anything else.
SeedAction seed_action(const std::string& run_dir, const std::string& stage = "all");
const char* seed_action_name(SeedAction a);

std::string seed_dir(const std::string& out, uint64_t seed);  // OUT/seed-K

struct SweepChild {
  std::string asap_run;          // path of the asap_run binary
  std::string config;            // CONFIG
  std::vector<std::string> sets; // the sweep's --set k=v, in order
  int threads = 1;               // run.threads of each child
  std::string stage = "all";     // asap_run --stage
};
// The argv of one seed: a fresh run `asap_run CONFIG --out DIR --set run.seed=K [--set ...]`, or
// a resume `asap_run --resume DIR CONFIG --set run.seed=K [--set ...]` (asap_run then refuses, exit
// 2 listing the keys, when the sweep's CONFIG or --set no longer match what the folder recorded).
// Both add run.threads and run.progress=false, the only keys a resume may change.
std::vector<std::string> child_argv(const SweepChild& c, uint64_t seed, const std::string& dir, bool resume);

// CPUs this process may run on (sched_getaffinity: honours taskset and Slurm's binding).
int usable_cpus();

}  // namespace asap::run
