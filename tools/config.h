// The run configuration: one YAML schema for the search and train stages of asap_run.
// Every key, its default and its range is documented in docs/config.md. Unknown keys, wrong
// types and out-of-range values are asap::ConfigError naming the file, the dotted key and its line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nas/search.h"

namespace asap::run {

struct DataConfig {
  std::string dataset = "fashion_mnist";  // fashion_mnist | mnist | cifar10 | cifar100
  std::string root;                       // empty: the dataset's default folder
  double train_portion = 0.5;             // search: first part trains weights, the rest alphas
  int64_t subset = 0;                     // search: > 0 uses only the first N training images
  int64_t test_subset = 0;                // > 0: evaluate on the first N test images
  int64_t batch_size = 64;
  int64_t eval_batch_size = 256;
  int crop_padding = 0;  // random crop with this zero padding; 0 = off
  bool flip = false;     // random horizontal flip
  int cutout = 0;        // cutout square length (train stage only); 0 = off
  bool normalize = true;
  bool prefetch = true;
};

struct TrainConfig {
  std::string genotype;  // empty: the searched one; else DARTS text or a published name (DARTS_V2)
  int64_t C = 36;
  int layers = 20;
  int stem_multiplier = 3;
  bool auxiliary = true;
  double auxiliary_weight = 0.4;
  double drop_path = 0.2;  // maximum; rises linearly from 0 over the epochs
  std::vector<int> reduction_cells;  // resolved by the reader: [layers//3, 2*layers//3] unless given
  int epochs = 600;
  double lr = 0.025;
  double lr_min = 0.0;
  std::string lr_unit = "epoch";  // cosine per `epoch` (DARTS) or per `step` (short schedules)
  double momentum = 0.9;
  double weight_decay = 3e-4;
  double grad_clip = 5.0;
  int64_t batch_size = 96;
  int64_t subset = 0;  // > 0: train on the first N training images only
  int eval_every = 1;  // evaluate on the test set every N epochs (the last epoch always)
};

struct RunSection {
  uint64_t seed = 2;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // CPU threads; 0 = all cores
  std::string out = "runs/default";
  int checkpoint_every = 1;     // epochs between checkpoints
  // stop: a non-finite loss or gradient ends the run naming epoch, step and the last checkpoint;
  // skip_batch: that batch makes no update and is counted in metrics ("skipped").
  std::string on_nan = "stop";
  bool progress = true;         // progress bar on a terminal
  // On a GPU the host reads the device's losses, NaN guard and prune decisions every log_every
  // steps (and at each epoch end) and re-plans then; the CPU reads every step (free).
  int log_every = 20;
  // auto | on | off: replay each step as a captured CUDA graph between re-plans (CUDA only;
  // auto = on for CUDA unless on_nan is skip_batch, which reads the loss every step).
  std::string cuda_graphs = "auto";
  bool plots = true;            // PNG plots at the end when python3 + matplotlib exist
  bool tensorboard = false;     // RUN/tensorboard/ event files (docs/interop.md)
  // auto: data-parallel when started by mpirun/srun with several ranks; off: never (refused
  // under a launcher of several ranks); mpi: always through MPI (docs/distributed.md).
  std::string distributed = "auto";
};

// Data-parallel options (docs/distributed.md); they matter only with more than one rank.
struct DistributedSection {
  bool sync_bn = false;     // BN batch statistics over the global batch instead of per rank
  double timeout_s = 600;   // longest wait in one collective before a rank gives up (exit 6)
};

struct RunConfig {
  DataConfig data;
  nas::SearchConfig search;
  TrainConfig train;
  RunSection run;
  DistributedSection distributed;
  std::string source;  // the file it came from (for messages)
};

// A config file is a regular file of at most this size (a folder, FIFO or device is refused).
constexpr long kMaxConfigBytes = 1 << 20;

// The text of a config file; throws asap::ConfigError when it is not a regular file, is larger
// than kMaxConfigBytes or cannot be read.
std::string read_config_text(const std::string& path);
// Loads `path`, applies `--set` overrides ("dotted.key=value", value parsed as YAML) and validates.
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from YAML text (tests); `name` stands for the file in messages.
RunConfig parse_config(const std::string& yaml_text, const std::string& name,
                       const std::vector<std::string>& overrides = {});
// The fully resolved config as YAML (written to the run folder as config.yaml).
std::string to_yaml(const RunConfig& c);

// Dotted keys whose resolved values differ between two configs (all keys of to_yaml), sorted.
std::vector<std::string> changed_keys(const RunConfig& a, const RunConfig& b);
// The keys a --resume may change (they do not change what is computed): run.threads,
// run.progress, run.plots.
const std::vector<std::string>& resume_changeable_keys();

}  // namespace asap::run
