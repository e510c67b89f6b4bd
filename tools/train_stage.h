// The train stage of asap_run: the evaluation network stacked from a genotype, trained with
// cosine LR, drop-path and the auxiliary head, evaluated on the test set; checkpoints and resume.
#pragma once
#include <string>

#include "nas/genotype.h"
#include "tools/config.h"

namespace asap::run {
struct DataParallel;

struct TrainOutcome {
  double test_accuracy = 0, test_loss = 0;
  int64_t parameters = 0;  // without the auxiliary head, as DARTS reports
  double seconds = 0;
};

// The genotype for the train stage: train.genotype as DARTS text, a published name (DARTS_V2), a
// path to a genotype.txt/.json file, or (empty) the one the search wrote to out_dir.
nas::Genotype resolve_genotype(const RunConfig& c, const std::string& out_dir);

// dp: the ranks of a data-parallel run (tools/data_parallel.h), null for one process.
TrainOutcome run_train_stage(const RunConfig& c, const nas::Genotype& g, const std::string& out_dir, Device dev,
                             bool resume, const DataParallel* dp = nullptr);

}  // namespace asap::run
