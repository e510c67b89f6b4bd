// asap_run's side of data parallelism (docs/distributed.md): the ranks of this job, the batch
// shard each one trains on, the per-epoch agreement checks, and the run folder, which rank 0
// alone writes. Every other rank runs the very same code against a private scratch folder (so no
// rank can take a branch the others do not), muted, and removed when it ends; on --resume rank 0
// broadcasts the folder's files into it, so no rank needs to read the run folder itself.
#pragma once
#include <memory>
#include <string>

#include "engine/distributed/communicator.h"
#include "engine/distributed/world.h"
#include "nas/batch.h"

namespace asap::nas {
class Searcher;
class EvalTrainer;
}

namespace asap::run {

struct DataParallel {
  std::unique_ptr<dist::Communicator> host;    // MPI
  std::unique_ptr<dist::Communicator> device;  // host itself on the CPU, NCCL on CUDA
  std::string scratch;                          // ranks > 0: their private folder
  int rank() const { return host->rank(); }
  int size() const { return host->size(); }
  bool root() const { return host->rank() == 0; }
};

// The mode a launch asks for before the config is fully read (rank > 0 may not see the run folder
// on --resume): --set run.distributed=..., else CONFIG's key, else the folder's config.yaml, else auto.
std::string peek_distributed_mode(const std::string& config, const std::string& resume_dir,
                                  const std::vector<std::string>& sets, double* timeout_s);

// Ranks > 0: creates the scratch folder, and on --resume receives rank 0's copy of `resume_dir`
// into it (rank 0 sends). Returns the folder this rank runs in.
std::string setup_rank_folder(DataParallel& dp, const std::string& resume_dir);
void remove_rank_folder(const DataParallel& dp) noexcept;

// This rank's part of a global batch (dist::shard_of); throws DistributedError when the batch
// has fewer samples than there are ranks.
void take_shard(nas::Batch& b, const DataParallel& dp);

// The per-epoch agreement checks: alphas + alive masks (search), weights (train).
void check_search_agreement(const DataParallel& dp, const nas::Searcher& s, int epoch);
void check_train_agreement(const DataParallel& dp, nas::EvalTrainer& t, int epoch);

}  // namespace asap::run
