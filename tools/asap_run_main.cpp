// asap_run CONFIG [--out DIR] [--resume DIR] [--set k=v ...] [--stage search|train|all]
// Runs an ASAP search, derives the cell, trains the evaluation network and evaluates it, all from
// one YAML file. Exit codes: 0 success, 2 bad command line or config, 3 data/file/checkpoint
// problem, 4 non-finite loss, 5 device error, 6 data-parallel collective failed, timed out or the ranks
// diverged (docs/distributed.md), 1 anything else. Errors are one line on stderr.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "data/split.h"
#include "engine/distributed/sync_batch_norm.h"
#include "engine/error.h"
#include "engine/io/process.h"
#include "kernels/cpu/isa.h"
#include "tools/interrupt.h"
#include "tools/config.h"
#include "tools/data_parallel.h"
#include "tools/run_files.h"
#include "tools/search_stage.h"
#include "tools/stage_common.h"
#include "tools/train_stage.h"

namespace fs = std::filesystem;
using namespace asap;

namespace {

struct Args {
  std::string config, out, resume, stage = "all";
  std::vector<std::string> sets;
  bool help = false;
};

const char* kUsage =
    "usage: asap_run CONFIG [--out DIR] [--resume DIR] [--set dotted.key=value ...] [--stage search|train|all]\n"
    "  CONFIG            YAML run configuration (see docs/config.md); optional with --resume\n"
    "  --out DIR         run folder (default: run.out from the config)\n"
    "  --resume DIR      continue the run in DIR from its last checkpoints\n"
    "  --set k=v         override any config key, e.g. --set search.epochs=10\n"
    "  --stage S         search, train, or all (default)\n";

Args parse_args(int argc, char** argv) {
  Args a;
  auto value = [&](int& i, const char* flag) -> std::string {
    if (i + 1 >= argc) throw ConfigError(std::string("command line: ") + flag + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "-h" || s == "--help") a.help = true;
    else if (s == "--out") a.out = value(i, "--out");
    else if (s == "--resume") a.resume = value(i, "--resume");
    else if (s == "--set") a.sets.push_back(value(i, "--set"));
    else if (s.rfind("--set=", 0) == 0) a.sets.push_back(s.substr(6));
    else if (s == "--stage") a.stage = value(i, "--stage");
    else if (!s.empty() && s[0] == '-') throw ConfigError("command line: unknown option '" + s + "'");
    else if (a.config.empty()) a.config = s;
    else throw ConfigError("command line: unexpected argument '" + s + "' (one CONFIG only)");
  }
  if (a.help) return a;
  if (a.stage != "search" && a.stage != "train" && a.stage != "all")
    throw ConfigError("command line: --stage must be search, train or all, not '" + a.stage + "'");
  if (a.config.empty() && a.resume.empty()) throw ConfigError("command line: a CONFIG file is required");
  if (!a.resume.empty() && !a.out.empty() && fs::path(a.out) != fs::path(a.resume))
    throw ConfigError("command line: --out and --resume name different folders");
  return a;
}

// Epoch time and alive ops per epoch as PNGs, when /usr/bin/python3 has matplotlib. Optional:
// a missing plotter or a failing plot is one line of advice, never an error. Started with an
// argument vector (no shell); the folder is passed absolute so it can never read as an option.
void plot_run(const std::string& out) {
  const std::string script = std::string(ASAP_SOURCE_DIR) + "/benchmarks/plot.py";
  const std::string python = "/usr/bin/python3";
  if (!fs::exists(script) || !program_available(python)) return;
  if (!run_program({python, "-c", "import matplotlib"}).ok()) {
    std::printf("plots: skipped (apt-get install python3-matplotlib for PNGs of epoch time and alive ops)\n");
    return;
  }
  const ProgramResult r = run_program({python, script, "run", fs::absolute(out).string()});
  if (!r.ok()) std::printf("plots: %s failed (%s); the run itself is fine\n", script.c_str(), r.summary().c_str());
}

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

// --resume: the run folder's config.yaml is what runs. A CONFIG or --set may only change the keys
// that do not change what is computed; anything else is refused, listing the keys.
run::RunConfig resume_config(const Args& a) {
  const std::string recorded_path = path_in(a.resume, "config.yaml");
  if (!fs::is_regular_file(recorded_path))
    throw IoError("--resume " + a.resume + ": no config.yaml in it, so it is not an asap_run folder");
  run::RunConfig recorded = run::load_config(recorded_path);
  run::RunConfig asked = run::load_config(a.config.empty() ? recorded_path : a.config, a.sets);
  recorded.run.out = asked.run.out = a.resume;  // --resume names the folder
  // How the ranks are launched and how long a collective may wait do not change what is computed.
  recorded.run.distributed = asked.run.distributed;
  recorded.distributed.timeout_s = asked.distributed.timeout_s;
  std::string refused;
  for (const std::string& k : run::changed_keys(recorded, asked)) {
    const auto& ok = run::resume_changeable_keys();
    if (std::find(ok.begin(), ok.end(), k) == ok.end()) refused += (refused.empty() ? "" : ", ") + k;
  }
  if (!refused.empty())
    throw ConfigError("--resume " + a.resume + ": " + (a.config.empty() ? std::string("--set") : a.config) +
                      " changes " + refused + " of the recorded " + recorded_path +
                      "; a resume runs what the folder recorded (only run.threads, run.progress and run.plots "
                      "may change; run.distributed and distributed.timeout_s too); start a new run with --out for other values");
  recorded.run.threads = asked.run.threads;
  recorded.run.progress = asked.run.progress;
  recorded.run.plots = asked.run.plots;
  return recorded;
}

bool wants_search(const Args& a) { return a.stage == "search" || a.stage == "all"; }
bool wants_train(const Args& a) { return a.stage == "train" || a.stage == "all"; }

// Everything that can be checked before any work: the genotype of the train stage, and the data
// of every stage that will run (train and test sets present, non-empty, of one shape).
void validate_inputs(const run::RunConfig& cfg, const Args& a, const std::string& out) {
  if (wants_train(a) && (!cfg.train.genotype.empty() || a.stage == "train")) run::resolve_genotype(cfg, out);
  const auto train = run::stage_dataset(cfg, data::SplitKind::Train);
  const std::string root = cfg.data.root.empty() ? data::default_dataset_folder(data::parse_dataset_kind(cfg.data.dataset))
                                                 : cfg.data.root;
  if (wants_search(a)) {
    data::TrainValSplit split = data::split_train_val(train->size(), cfg.data.train_portion, false, 0, cfg.data.subset);
    if (split.val.empty())
      throw ConfigError(cfg.source + ": key 'data.train_portion': " + std::to_string(cfg.data.train_portion) +
                        " of " + std::to_string(split.train.size()) + " training images leaves none for the alpha steps");
  }
  if (!wants_train(a)) return;
  if (train->size() == 0) throw IoError("data folder " + root + ": the train set holds no images");
  const auto test = run::stage_dataset(cfg, data::SplitKind::Test);
  if (test->size() == 0)
    throw IoError("data folder " + root + ": the test set holds no images; test accuracy would mean nothing");
  if (test->C != train->C || test->H != train->H || test->W != train->W)
    throw IoError("data folder " + root + ": test images are " + std::to_string(test->C) + "x" +
                  std::to_string(test->H) + "x" + std::to_string(test->W) + " but train images " +
                  std::to_string(train->C) + "x" + std::to_string(train->H) + "x" + std::to_string(train->W));
  if (test->num_classes != train->num_classes)
    throw IoError("data folder " + root + ": the test set has " + std::to_string(test->num_classes) +
                  " classes, the train set " + std::to_string(train->num_classes));
}

struct ResumeState {
  bool search_ckpt = false, search_done = false, train_ckpt = false, train_done = false;
};

// On --resume, before any work: every checkpoint verified (checksum, state schema), and no stage
// may start over while the folder holds its results (that would overwrite them).
ResumeState verify_resume(const run::RunConfig& cfg, const Args& a, const std::string& out) {
  ResumeState r;
  const std::string sc = path_in(out, "checkpoints/search.safetensors");
  const std::string tc = path_in(out, "checkpoints/train.safetensors");
  if (fs::exists(sc)) {
    r.search_ckpt = true;
    r.search_done = run::load_checkpoint(sc, run::search_schema(cfg)).state.at("completed").get<bool>();
    if (r.search_done) run::read_searched_genotype(out);
  }
  nlohmann::json summary = nlohmann::json::object();
  const std::string sp = path_in(out, "summary.json");
  if (fs::exists(sp)) {
    summary = nlohmann::json::parse(run::read_file(sp), nullptr, false);
    if (!summary.is_object()) throw IoError(sp + ": not a JSON object (the run folder is damaged)");
  }
  if (fs::exists(tc)) {
    r.train_ckpt = true;
    const run::Checkpoint t = run::load_checkpoint(tc, run::train_schema(cfg));
    r.train_done = t.state["trainer"]["epoch"].get<int>() == cfg.train.epochs && summary.contains("test_accuracy");
  }
  const bool has_genotype = fs::exists(path_in(out, "genotype.json")) || fs::exists(path_in(out, "genotype.txt"));
  if (wants_search(a) && !r.search_ckpt && (has_genotype || r.train_ckpt || summary.contains("search_seconds")))
    throw IoError(sc + " is missing but " + out +
                  " holds the search's results; a new search would overwrite them (nothing was changed)");
  if (wants_train(a) && !r.train_ckpt && summary.contains("test_accuracy"))
    throw IoError(tc + " is missing but " + out +
                  "/summary.json holds the train stage's results; a new training would overwrite them (nothing was changed)");
  return r;
}

// The CPU kernels' instruction set (kernels/cpu/isa.h): a bad ASAP_CPU_ISA is refused like a bad
// flag, before any work.
const char* checked_cpu_isa() {
  try {
    return cpu::cpu_isa_name(cpu::active_cpu_isa());
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
}

// The ranks of this job when it is data parallel (docs/distributed.md), else null.
std::unique_ptr<run::DataParallel> g_dp;

// Before anything reads the run folder: the launch decides whether this process is one of
// several ranks. Ranks > 0 then run in their own scratch folder (a copy of the run folder on
// --resume, sent by rank 0) with stdout muted; rank 0 alone writes the run folder.
void start_data_parallel(Args& a) {
  double timeout_s = 0;
  const std::string mode = run::peek_distributed_mode(a.config, a.resume, a.sets, &timeout_s);
  std::unique_ptr<dist::Communicator> host = dist::make_host_communicator(mode, dist::detect_launch(), timeout_s);
  if (!host) return;
  g_dp = std::make_unique<run::DataParallel>();
  g_dp->host = std::move(host);
  const std::string folder = run::setup_rank_folder(*g_dp, a.resume);
  if (g_dp->root()) return;
  if (!a.resume.empty()) a.resume = folder;
  a.out = folder;
  if (!std::freopen("/dev/null", "w", stdout)) throw IoError("rank " + std::to_string(g_dp->rank()) + ": cannot mute stdout");
}

// The device side and the options that need the resolved config.
void finish_data_parallel(const run::RunConfig& cfg, Device dev) {
  if (!g_dp) return;
  if (cfg.run.on_nan == "skip_batch")
    throw ConfigError(cfg.source + ": key 'run.on_nan': skip_batch reads each rank's loss on the host and could skip "
                      "a batch on one rank only; data-parallel runs need stop");
  g_dp->device = dist::make_device_communicator(*g_dp->host, dev, cfg.distributed.timeout_s);
  if (cfg.distributed.sync_bn) dist::set_sync_batch_norm(g_dp->host.get());
  std::printf("data parallel: %d ranks over %s, global batch %lld (search) / %lld (train), BN statistics %s\n",
              g_dp->size(), g_dp->device->backend(), (long long)cfg.data.batch_size, (long long)cfg.train.batch_size,
              cfg.distributed.sync_bn ? "over the global batch (sync_bn)" : "per rank");
}

int run_main(Args a, std::string& out_dir) {
  const char* cpu_isa = checked_cpu_isa();
  start_data_parallel(a);
  const bool resume = !a.resume.empty();
  if (resume && !fs::is_directory(a.resume)) throw IoError("--resume " + a.resume + ": no such run folder");
  run::RunConfig cfg = resume ? resume_config(a) : run::load_config(a.config, a.sets);
  const std::string cfg_path = resume ? path_in(a.resume, "config.yaml") : a.config;
  const std::string out = resume ? a.resume : (a.out.empty() ? cfg.run.out : a.out);
  cfg.run.out = out;
  out_dir = out;
  validate_inputs(cfg, a, out);

  run::prepare_out_dir(out);
  run::RunLock lock(out);  // held until the run ends; a second writer is refused
  if (!resume) {
    const std::vector<std::string> held = run::run_files_in(out);
    if (!held.empty()) {
      std::string list;
      for (const auto& f : held) list += (list.empty() ? "" : ", ") + f;
      throw IoError("run folder " + out + " already holds a run (" + list + "); continue it with --resume " + out +
                    " or choose another --out (nothing was changed)");
    }
  }
  for (const std::string& f : run::remove_stale_temporaries(out))
    std::printf("removed %s (a temporary file of an interrupted write)\n", f.c_str());
  ResumeState rs;
  if (resume) {
    rs = verify_resume(cfg, a, out);
    if ((!wants_search(a) || rs.search_done) && (!wants_train(a) || rs.train_done)) {
      std::string acc;
      if (rs.train_done) {
        const nlohmann::json s = nlohmann::json::parse(run::read_file(path_in(out, "summary.json")));
        acc = ", test accuracy " + s["test_accuracy"].dump();
      }
      std::printf("run folder %s is complete (%s); checkpoints verified%s; nothing changed\n", out.c_str(),
                  a.stage.c_str(), acc.c_str());
      return 0;
    }
  } else {
    run::write_file_atomic(path_in(out, "config.yaml"), run::to_yaml(cfg));
  }

  run::apply_threads(cfg.run.threads);
  const Device dev = run::resolve_device(cfg.run.device);
  std::printf("asap_run: %s -> %s on %s (CPU kernels: %s)\n", cfg_path.c_str(), out.c_str(), dev.str().c_str(),
              cpu_isa);
  finish_data_parallel(cfg, dev);

  nlohmann::json summary = {{"config", cfg_path}, {"device", dev.str()}, {"cpu_isa", cpu_isa}, {"seed", cfg.run.seed}};
  const std::string summary_path = path_in(out, "summary.json");
  if (resume && run::file_exists(summary_path)) {
    nlohmann::json old = nlohmann::json::parse(run::read_file(summary_path), nullptr, false);
    if (old.is_object()) summary.update(old);
  }
  if (wants_search(a)) {
    run::SearchOutcome s = run::run_search_stage(cfg, out, dev, resume, g_dp.get());
    summary["search_seconds"] = s.seconds;
    summary["genotype"] = nas::to_text(s.genotype);
    // Genes the derivation took from an edge with no alive non-`none` op (docs/method.md).
    if (s.genotype.fallback_genes >= 0) summary["fallback_genes"] = s.genotype.fallback_genes;
    run::write_file_atomic(summary_path, summary.dump(2) + "\n");
    if (wants_train(a)) run::check_interrupt("train", 0, 0);  // a signal during the last search epoch
  }
  if (wants_train(a)) {
    nas::Genotype g = run::resolve_genotype(cfg, out);
    run::TrainOutcome t = run::run_train_stage(cfg, g, out, dev, resume, g_dp.get());
    summary["genotype"] = nas::to_text(g);
    summary["test_accuracy"] = t.test_accuracy;
    summary["test_loss"] = t.test_loss;
    summary["parameters"] = t.parameters;
    summary["train_seconds"] = t.seconds;
    run::write_file_atomic(summary_path, summary.dump(2) + "\n");
    std::printf("test accuracy %.4f (loss %.4f), %lld parameters\n", t.test_accuracy, t.test_loss,
                (long long)t.parameters);
  }
  if (cfg.run.plots && (!g_dp || g_dp->root())) plot_run(out);
  std::printf("run folder: %s\n", out.c_str());
  return 0;
}

// The end of a process: a rank's scratch folder goes; a failing rank of several ends the whole
// job at once (MPI_Abort), so no peer waits in a collective for it.
int finish(int code) {
  if (!g_dp) return code;
  run::remove_rank_folder(*g_dp);
  if (code != 0 && g_dp->size() > 1) g_dp->host->abort(code);
  g_dp.reset();  // MPI_Finalize
  return code;
}

void print_error(const char* what) {
  if (g_dp && !g_dp->root()) std::fprintf(stderr, "asap_run: rank %d: error: %s\n", g_dp->rank(), what);
  else std::fprintf(stderr, "asap_run: error: %s\n", what);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // live logs when stdout is a file or pipe
  run::install_interrupt_handlers();
  std::string out_dir;
  try {
    Args a = parse_args(argc, argv);
    if (a.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return finish(run_main(a, out_dir));
  } catch (const run::Interrupted& e) {
    std::fprintf(stderr, "asap_run: interrupted at epoch %d step %lld (%s stage); resume with: asap_run --resume %s\n",
                 e.epoch, (long long)e.step, e.stage.c_str(), out_dir.c_str());
    return finish(128 + e.signal);
  } catch (const ConfigError& e) {
    print_error(e.what());
    if (std::strncmp(e.what(), "command line", 12) == 0) std::fputs(kUsage, stderr);
    return finish(2);
  } catch (const IoError& e) {
    print_error(e.what());
    return finish(3);
  } catch (const NumericError& e) {
    print_error(e.what());
    return finish(4);
  } catch (const DeviceError& e) {
    print_error(e.what());
    return finish(5);
  } catch (const dist::DistributedError& e) {
    print_error(e.what());
    return finish(6);
  } catch (const std::exception& e) {
    print_error(e.what());
    return finish(1);
  }
}
