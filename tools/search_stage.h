// The search stage of asap_run: ASAP search epochs with progress, metrics, prune log, checkpoints
// and resume; then the genotype (text, JSON) and the cell pictures.
#pragma once
#include <string>

#include "nas/genotype.h"
#include "tools/config.h"

namespace asap::run {
struct DataParallel;

struct SearchOutcome {
  nas::Genotype genotype;
  double seconds = 0;  // search wall time, summed over resumed sessions
};

// Runs (or resumes, when `resume` and a search checkpoint exists) the search stage in out_dir.
// dp: the ranks of a data-parallel run (tools/data_parallel.h), null for one process.
SearchOutcome run_search_stage(const RunConfig& c, const std::string& out_dir, Device dev, bool resume,
                               const DataParallel* dp = nullptr);

// The genotype a finished search wrote to out_dir (genotype.json); throws asap::IoError.
nas::Genotype read_searched_genotype(const std::string& out_dir);

}  // namespace asap::run
