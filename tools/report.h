// asap_report's pieces: find run folders, group runs that differ only in their seed, and the
// statistics and files of docs/study.md (report.md, report.csv, report.json).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asap::run {

struct RunRecord {
  std::string dir;
  uint64_t seed = 0;
  std::string group_key;  // the resolved config with run.seed, run.out and the run.* keys that
                          // do not change results (threads, progress, plots, tensorboard) blanked
  std::optional<double> test_accuracy, search_seconds, train_seconds;
  std::optional<int64_t> parameters, fallback_genes;
  std::string genotype;
  std::vector<std::pair<double, double>> search_epochs;  // (sparsity, epoch seconds) per epoch
};

// Every run folder (holding config.yaml and summary.json or metrics.jsonl) at or below each root,
// sorted by path; a run folder's own subfolders are not searched. Throws asap::IoError naming a
// root that is not a folder or a run file that cannot be read.
std::vector<RunRecord> find_runs(const std::vector<std::string>& roots);

struct Stat {
  int n = 0;
  double mean = 0;
  std::optional<double> std;  // sample standard deviation (n - 1); none for n < 2
};
Stat stat_of(const std::vector<double>& v);

struct RunGroup {
  std::string name;
  std::vector<const RunRecord*> runs;
};
// Runs with equal group_key form one group, named after their common parent folder (unique).
std::vector<RunGroup> group_runs(const std::vector<RunRecord>& runs);

// {"groups": [{"name", "runs", "test_accuracy": {"mean", "std", "n"}, "parameters",
//   "search_seconds": {...}, "train_seconds": {...}, "distinct_genotypes", "fallback_genes",
//   "seeds", "run_dirs"}], "runs": [{"dir", "group", "seed", "test_accuracy", ...,
//   "search_epochs": [[sparsity, seconds], ...]}]}
nlohmann::json report_json(const std::vector<RunGroup>& groups);
std::string report_markdown(const std::vector<RunGroup>& groups);
std::string report_csv(const std::vector<RunGroup>& groups);

}  // namespace asap::run
