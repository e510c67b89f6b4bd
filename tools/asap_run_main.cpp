// asap_run CONFIG [--out DIR] [--resume DIR] [--set k=v ...] [--stage search|train|all]
// Runs an ASAP search, derives the cell, trains the evaluation network and evaluates it, all from
// one YAML file. Exit codes: 0 success, 2 bad command line or config, 3 data/file/checkpoint
// problem, 4 non-finite loss, 5 device error, 1 anything else. Errors are one line on stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/error.h"
#include "tools/config.h"
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
// a missing plotter is one line of advice, never an error.
void plot_run(const std::string& out) {
  const std::string script = std::string(ASAP_SOURCE_DIR) + "/benchmarks/plot.py";
  if (!fs::exists(script) || !fs::exists("/usr/bin/python3")) return;
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    std::printf("plots: skipped (apt-get install python3-matplotlib for PNGs of epoch time and alive ops)\n");
    return;
  }
  const std::string cmd = "/usr/bin/python3 '" + script + "' run '" + out + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) std::printf("plots: %s failed (the run itself is fine)\n", script.c_str());
}

int run_main(const Args& a) {
  const bool resume = !a.resume.empty();
  if (resume && !fs::is_directory(a.resume)) throw IoError("--resume " + a.resume + ": no such run folder");
  std::string cfg_path = a.config;
  if (cfg_path.empty()) cfg_path = (fs::path(a.resume) / "config.yaml").string();
  run::RunConfig cfg = run::load_config(cfg_path, a.sets);
  const std::string out = resume ? a.resume : (a.out.empty() ? cfg.run.out : a.out);
  cfg.run.out = out;

  if (!resume && (fs::exists(fs::path(out) / "checkpoints/search.safetensors") ||
                  fs::exists(fs::path(out) / "checkpoints/train.safetensors"))) {
    throw IoError("run folder " + out + " already holds a run; continue it with --resume " + out +
                  " or choose another --out (nothing was changed)");
  }
  run::prepare_out_dir(out);
  if (!resume || !run::file_exists((fs::path(out) / "config.yaml").string()))
    run::write_file_atomic((fs::path(out) / "config.yaml").string(), run::to_yaml(cfg));

  run::apply_threads(cfg.run.threads);
  const Device dev = run::resolve_device(cfg.run.device);
  std::printf("asap_run: %s -> %s on %s\n", cfg_path.c_str(), out.c_str(), dev.str().c_str());

  nlohmann::json summary = {{"config", cfg_path}, {"device", dev.str()}, {"seed", cfg.run.seed}};
  const std::string summary_path = (fs::path(out) / "summary.json").string();
  if (resume && run::file_exists(summary_path)) {
    nlohmann::json old = nlohmann::json::parse(run::read_file(summary_path), nullptr, false);
    if (old.is_object()) summary.update(old);
  }
  if (a.stage == "search" || a.stage == "all") {
    run::SearchOutcome s = run::run_search_stage(cfg, out, dev, resume);
    summary["search_seconds"] = s.seconds;
    summary["genotype"] = nas::to_text(s.genotype);
    run::write_file_atomic(summary_path, summary.dump(2) + "\n");
  }
  if (a.stage == "train" || a.stage == "all") {
    nas::Genotype g = run::resolve_genotype(cfg, out);
    run::TrainOutcome t = run::run_train_stage(cfg, g, out, dev, resume);
    summary["genotype"] = nas::to_text(g);
    summary["test_accuracy"] = t.test_accuracy;
    summary["test_loss"] = t.test_loss;
    summary["parameters"] = t.parameters;
    summary["train_seconds"] = t.seconds;
    run::write_file_atomic(summary_path, summary.dump(2) + "\n");
    std::printf("test accuracy %.4f (loss %.4f), %lld parameters\n", t.test_accuracy, t.test_loss,
                (long long)t.parameters);
  }
  if (cfg.run.plots) plot_run(out);
  std::printf("run folder: %s\n", out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // live logs when stdout is a file or pipe
  try {
    Args a = parse_args(argc, argv);
    if (a.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return run_main(a);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "asap_run: error: %s\n", e.what());
    if (std::strncmp(e.what(), "command line", 12) == 0) std::fputs(kUsage, stderr);
    return 2;
  } catch (const IoError& e) {
    std::fprintf(stderr, "asap_run: error: %s\n", e.what());
    return 3;
  } catch (const NumericError& e) {
    std::fprintf(stderr, "asap_run: error: %s\n", e.what());
    return 4;
  } catch (const DeviceError& e) {
    std::fprintf(stderr, "asap_run: error: %s\n", e.what());
    return 5;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asap_run: error: %s\n", e.what());
    return 1;
  }
}
