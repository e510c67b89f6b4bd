// asap_report DIR [DIR ...] [--out FOLDER]
// Finds every asap_run folder at or below each DIR, groups the runs that differ only in their seed,
// and writes FOLDER/report.md, report.csv, report.json (mean and sample standard deviation per
// group) and, when python3 has matplotlib, FOLDER/search_time_vs_sparsity.png (benchmarks/plot.py:
// search epoch time against sparsity, one line per run). FOLDER defaults to the first DIR.
// Exit codes: 0 written, 2 bad command line, 3 a DIR is missing, holds no run folder, or a run
// file cannot be read or written; 1 anything else.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/io/process.h"
#include "tools/report.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;
using namespace asap;

namespace {

const char* kUsage =
    "usage: asap_report DIR [DIR ...] [--out FOLDER]\n"
    "  DIR           a run folder, or a folder holding run folders (e.g. an asap_sweep --out)\n"
    "  --out FOLDER  where report.md, report.csv, report.json and the PNG go (default: the first DIR)\n";

void plot(const std::string& json, const std::string& out) {
  const std::string script = std::string(ASAP_SOURCE_DIR) + "/benchmarks/plot.py";
  const std::string python = "/usr/bin/python3";
  if (!fs::exists(script) || !program_available(python) || !run_program({python, "-c", "import matplotlib"}).ok()) {
    std::printf("plot: skipped (apt-get install python3-matplotlib for search_time_vs_sparsity.png)\n");
    return;
  }
  const ProgramResult r =
      run_program({python, script, "report", fs::absolute(json).string(), "--out", fs::absolute(out).string()});
  if (!r.ok()) std::printf("plot: %s failed (%s); the report itself is fine\n", script.c_str(), r.summary().c_str());
}

int report_main(int argc, char** argv) {
  std::vector<std::string> dirs;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "-h" || s == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (s == "--out") {
      if (i + 1 >= argc) throw ConfigError("command line: --out needs a value");
      out = argv[++i];
    } else if (!s.empty() && s[0] == '-') {
      throw ConfigError("command line: unknown option '" + s + "'");
    } else {
      dirs.push_back(s);
    }
  }
  if (dirs.empty()) throw ConfigError("command line: at least one DIR is required");
  if (out.empty()) out = dirs[0];
  const std::vector<run::RunRecord> runs = run::find_runs(dirs);
  if (runs.empty()) {
    std::string list;
    for (const auto& d : dirs) list += (list.empty() ? "" : ", ") + d;
    throw IoError("no run folder (config.yaml with summary.json or metrics.jsonl) at or below " + list);
  }
  const std::vector<run::RunGroup> groups = run::group_runs(runs);
  fs::create_directories(out);
  const std::string json = (fs::path(out) / "report.json").string();
  run::write_file_atomic((fs::path(out) / "report.md").string(), run::report_markdown(groups));
  run::write_file_atomic((fs::path(out) / "report.csv").string(), run::report_csv(groups));
  run::write_file_atomic(json, run::report_json(groups).dump(2) + "\n");
  std::fputs(run::report_markdown(groups).c_str(), stdout);
  plot(json, out);
  std::printf("asap_report: %zu runs in %zu groups -> %s\n", runs.size(), groups.size(), out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    return report_main(argc, argv);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "asap_report: error: %s\n", e.what());
    if (std::strncmp(e.what(), "command line", 12) == 0) std::fputs(kUsage, stderr);
    return 2;
  } catch (const IoError& e) {
    std::fprintf(stderr, "asap_report: error: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asap_report: error: %s\n", e.what());
    return 1;
  }
}
