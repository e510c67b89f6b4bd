// asap_sweep CONFIG --seeds 0,1,2,3 --out DIR [--set k=v ...] [--jobs N] [--threads T] [--index I]
//            [--stage search|train|all]
// One asap_run per seed into DIR/seed-K/ (a normal, resumable run folder; its log in
// DIR/seed-K.log), N at a time with the CPUs divided among them. Rerunning the same command skips
// finished seeds and resumes unfinished ones. --index I runs only the I-th seed of the list (a
// Slurm array task: tools/slurm/asap_array.sbatch). asap_run is started with an argument vector,
// never through a shell. Exit codes: 0 every seed complete, 1 some seed failed (each named on
// stderr with its exit code and log), 2 bad command line, 130/143 interrupted (rerun to continue).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/io/process.h"
#include "tools/interrupt.h"
#include "tools/run_files.h"
#include "tools/sweep.h"

namespace fs = std::filesystem;
using namespace asap;

namespace {

const char* kUsage =
    "usage: asap_sweep CONFIG --seeds LIST --out DIR [--set k=v ...] [--jobs N] [--threads T] [--index I]\n"
    "                  [--stage search|train|all]\n"
    "  --seeds LIST   seeds, e.g. 0,1,2,3 or 0-3 (run.seed of each run)\n"
    "  --out DIR      DIR/seed-K/ per seed (asap_run folders), DIR/seed-K.log their output\n"
    "  --set k=v      passed to every asap_run (docs/config.md)\n"
    "  --jobs N       runs at once (default 1); the CPUs are divided among them\n"
    "  --threads T    run.threads of each run (default: usable CPUs / N, at least 1)\n"
    "  --index I      run only the I-th seed of LIST (0-based; Slurm: $SLURM_ARRAY_TASK_ID)\n"
    "  --stage S      asap_run --stage (default all; train: a train.genotype over seeds)\n"
    "Rerunning the same command skips finished seeds and resumes the others.\n";

struct Args {
  std::string config, out, seeds, stage = "all";
  std::vector<std::string> sets;
  int jobs = 1, threads = 0;
  long index = -1;
  bool help = false;
};

int parse_int(const std::string& flag, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || errno == ERANGE || x < lo || x > hi)
    throw ConfigError("command line: " + flag + " '" + v + "' must be an integer in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]");
  return static_cast<int>(x);
}

Args parse_args(int argc, char** argv) {
  Args a;
  auto value = [&](int& i, const char* flag) -> std::string {
    if (i + 1 >= argc) throw ConfigError(std::string("command line: ") + flag + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "-h" || s == "--help") a.help = true;
    else if (s == "--seeds") a.seeds = value(i, "--seeds");
    else if (s == "--out") a.out = value(i, "--out");
    else if (s == "--set") a.sets.push_back(value(i, "--set"));
    else if (s == "--jobs") a.jobs = parse_int("--jobs", value(i, "--jobs"), 1, 1024);
    else if (s == "--threads") a.threads = parse_int("--threads", value(i, "--threads"), 1, 4096);
    else if (s == "--stage") a.stage = value(i, "--stage");
    else if (s == "--index") a.index = parse_int("--index", value(i, "--index"), 0, 1 << 30);
    else if (!s.empty() && s[0] == '-') throw ConfigError("command line: unknown option '" + s + "'");
    else if (a.config.empty()) a.config = s;
    else throw ConfigError("command line: unexpected argument '" + s + "' (one CONFIG only)");
  }
  if (a.help) return a;
  if (a.config.empty()) throw ConfigError("command line: a CONFIG file is required");
  if (a.stage != "search" && a.stage != "train" && a.stage != "all")
    throw ConfigError("command line: --stage must be search, train or all, not '" + a.stage + "'");
  if (a.seeds.empty()) throw ConfigError("command line: --seeds is required (e.g. --seeds 0,1,2,3)");
  if (a.out.empty()) throw ConfigError("command line: --out DIR is required");
  if (!fs::is_regular_file(a.config)) throw ConfigError("command line: CONFIG " + a.config + " is not a file");
  for (const auto& s : a.sets)
    if (s.rfind("run.seed=", 0) == 0 || s.rfind("run.out=", 0) == 0)
      throw ConfigError("command line: --set " + s + ": the sweep sets run.seed and the run folder itself");
  return a;
}

// asap_run next to this binary.
std::string sibling_asap_run() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const fs::path p = ec ? fs::path("asap_run") : self.parent_path() / "asap_run";
  return p.string();
}

struct Outcome {
  uint64_t seed = 0;
  std::string action;
  int exit_code = 0;
  bool started = true;
  std::string detail;
};

int sweep_main(const Args& a) {
  std::vector<uint64_t> seeds = run::parse_seed_list(a.seeds);
  if (a.index >= 0) {
    if (a.index >= static_cast<long>(seeds.size()))
      throw ConfigError("command line: --index " + std::to_string(a.index) + " is past the " +
                        std::to_string(seeds.size()) + " seeds of --seeds " + a.seeds);
    seeds = {seeds[a.index]};
  }
  run::SweepChild child;
  child.asap_run = sibling_asap_run();
  if (!program_available(child.asap_run))
    throw ConfigError("asap_run not found next to asap_sweep (" + child.asap_run + ")");
  child.config = a.config;
  child.sets = a.sets;
  child.stage = a.stage;
  const int jobs = std::max(1, std::min<int>(a.jobs, static_cast<int>(seeds.size())));
  child.threads = a.threads > 0 ? a.threads : std::max(1, run::usable_cpus() / jobs);
  fs::create_directories(a.out);
  std::printf("asap_sweep: %s, seeds %s -> %s (%d at a time, %d threads each)\n", a.config.c_str(), a.seeds.c_str(),
              a.out.c_str(), jobs, child.threads);

  std::mutex mu;
  std::map<int, uint64_t> running;  // pid -> seed
  std::vector<Outcome> outcomes;
  size_t next = 0;
  std::atomic<bool> stop{false};
  auto worker = [&] {
    for (;;) {
      uint64_t seed;
      {
        std::lock_guard<std::mutex> g(mu);
        if (stop || next >= seeds.size()) return;
        seed = seeds[next++];
      }
      const std::string dir = run::seed_dir(a.out, seed);
      const run::SeedAction act = run::seed_action(dir, a.stage);
      Outcome o;
      o.seed = seed;
      o.action = run::seed_action_name(act);
      if (act == run::SeedAction::Skip) {
        std::printf("seed %llu: %s (%s)\n", (unsigned long long)seed, o.action.c_str(), dir.c_str());
        std::lock_guard<std::mutex> g(mu);
        outcomes.push_back(o);
        continue;
      }
      const std::string log = dir + ".log";
      std::printf("seed %llu: %s %s (log %s)\n", (unsigned long long)seed, o.action.c_str(), dir.c_str(), log.c_str());
      const auto argv = run::child_argv(child, seed, dir, act == run::SeedAction::Resume);
      int my_pid = -1;
      const ProgramResult r = run_program_logged(argv, log, [&](int pid) {
        std::lock_guard<std::mutex> g(mu);
        my_pid = pid;
        running[pid] = seed;
        if (stop) ::kill(pid, run::pending_signal());  // a signal came while it was starting
      });
      {
        std::lock_guard<std::mutex> g(mu);
        if (my_pid > 0) running.erase(my_pid);
        o.started = r.started;
        o.exit_code = r.started ? r.exit_code : -1;
        o.detail = r.started ? log : r.output;
        outcomes.push_back(o);
      }
      if (r.ok()) std::printf("seed %llu: complete\n", (unsigned long long)seed);
    }
  };
  std::atomic<int> live{jobs};
  std::vector<std::thread> pool;
  for (int i = 0; i < jobs; ++i)
    pool.emplace_back([&] {
      worker();
      --live;
    });
  // Signals: the first SIGINT/SIGTERM stops new seeds and is forwarded once to every running
  // child (each stops after its current write, as asap_run does alone); then we wait for them.
  bool forwarded = false;
  while (live > 0) {
    const int sig = run::pending_signal();
    if (sig && !forwarded) {
      std::lock_guard<std::mutex> g(mu);
      stop = true;
      forwarded = true;
      for (const auto& kv : running) ::kill(kv.first, sig);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : pool) t.join();

  const int sig = run::pending_signal();
  int failed = 0;
  std::sort(outcomes.begin(), outcomes.end(), [](const Outcome& x, const Outcome& y) { return x.seed < y.seed; });
  for (const Outcome& o : outcomes) {
    if (o.exit_code == 0) continue;
    if (sig && (o.exit_code == 130 || o.exit_code == 143)) continue;  // stopped by the forwarded signal
    ++failed;
    if (!o.started)
      std::fprintf(stderr, "asap_sweep: seed %llu: asap_run did not start: %s\n", (unsigned long long)o.seed,
                   o.detail.c_str());
    else
      std::fprintf(stderr, "asap_sweep: seed %llu failed with exit code %d (see %s)\n", (unsigned long long)o.seed,
                   o.exit_code, o.detail.c_str());
  }
  if (sig) {
    std::fprintf(stderr, "asap_sweep: interrupted (signal %d); rerun the same command to resume the unfinished seeds\n",
                 sig);
    return 128 + sig;
  }
  const size_t ok = outcomes.size() - failed;
  std::printf("asap_sweep: %zu of %zu seeds complete in %s\n", ok, seeds.size(), a.out.c_str());
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  run::install_interrupt_handlers();
  try {
    Args a = parse_args(argc, argv);
    if (a.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return sweep_main(a);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "asap_sweep: error: %s\n", e.what());
    if (std::strncmp(e.what(), "command line", 12) == 0) std::fputs(kUsage, stderr);
    return 2;
  } catch (const IoError& e) {
    std::fprintf(stderr, "asap_sweep: error: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asap_sweep: error: %s\n", e.what());
    return 1;
  }
}
