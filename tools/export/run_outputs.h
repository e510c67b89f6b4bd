// The interop files of a run folder, written from small hooks in the stage drivers:
//   alphas.jsonl         one line per search epoch: alpha, Phi and alive masks of both cell types
//   tensorboard/         event files when run.tensorboard is on (tags in docs/interop.md)
//   model.safetensors    the trained evaluation network under quark0/darts names (model_file.h)
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "nas/eval_network.h"
#include "nas/genotype.h"
#include "nas/search.h"
#include "tools/config.h"

namespace asap::exporting {

// After the search epoch whose metrics line is `line` (already appended to metrics.jsonl).
// Lines of alphas.jsonl for this epoch or later are dropped first, so a resumed run's file equals
// an uninterrupted one's.
void after_search_epoch(const run::RunConfig& c, const std::string& out, const nas::Searcher& s,
                        const nlohmann::json& line);
// After a train epoch (its metrics line; "val_*" there are test-set figures).
void after_train_epoch(const run::RunConfig& c, const std::string& out, const nlohmann::json& line);
// At the end of the train stage: RUN/model.safetensors.
void after_train(const run::RunConfig& c, const std::string& out, const nas::EvalNetwork& net,
                 const nas::EvalNetworkConfig& net_cfg);

// The TensorBoard scalars of one metrics line (stage "search" or "train"), without the per-op ones.
std::vector<std::pair<std::string, double>> tensorboard_scalars(const nlohmann::json& line);

}  // namespace asap::exporting
