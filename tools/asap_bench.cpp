// asap_bench: the search-step benchmark of BENCHMARK.md. For each sparsity level it builds the
// DARTS search network, prunes `none` and the first round(7*s) ops of the benchmark's order on
// every edge, runs one warm-up step and `steps` timed steps (weight step + alpha step) on two
// fixed random batches, and prints one JSON line.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/op_stats.h"
#include "engine/rng.h"
#include "engine/storage.h"
#include "kernels/cpu/isa.h"
#include "nas/eval_train.h"
#include "nas/search.h"

#if defined(ASAP_WITH_CUDA)
#include "kernels/cuda/stats.h"
#endif

using namespace asap;
using namespace asap::nas;

namespace {

struct Args {
  std::string device = "cpu";
  int64_t C = 8;
  int layers = 5;
  int64_t batch = 32;
  int64_t hw = 28;
  int64_t cin = 1;
  int threads = 1;
  int steps = 5;
  std::vector<double> sparsity = {0.0, 0.43, 0.71, 0.86};
  uint64_t seed = 0;
  bool cuda_graphs = true;           // replay the step as a captured CUDA graph (CUDA only)
  std::string net = "search";        // search | eval (the train stage's step)
  std::string genotype = "DARTS_V2"; // --net eval
  std::vector<int> reduction_cells;  // --net eval; empty: [layers//3, 2*layers//3]
  bool auxiliary = true;             // --net eval: the auxiliary head (weight 0.4)
  double drop_path = 0.1;            // --net eval: drop-path probability (DARTS's 0.2 at mid-training)
  bool share_ops = true;             // --net eval: a repeated stateless op runs once (EvalNetworkConfig)
};

const char* kUsage =
    "usage: asap_bench [--device cpu|cuda[:N]] [--C 8] [--layers 5] [--batch 32] [--hw 28] [--cin 1]\n"
    "                  [--threads 1] [--steps 5] [--sparsity 0,0.43,0.71,0.86] [--seed 0]\n"
    "                  [--cuda-graphs on|off] [--net search|eval] [--genotype DARTS_V2|Genotype(...)]\n"
    "                  [--reduction-cells 1,3] [--auxiliary on|off] [--drop-path 0.1] [--share-ops on|off]\n"
    "                  (the last four: --net eval)\n";

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw ConfigError("flag " + k + " needs a value\n" + kUsage);
    std::string v = argv[++i];
    try {
      if (k == "--device") a.device = v;
      else if (k == "--C") a.C = std::stoll(v);
      else if (k == "--layers") a.layers = std::stoi(v);
      else if (k == "--batch") a.batch = std::stoll(v);
      else if (k == "--hw") a.hw = std::stoll(v);
      else if (k == "--cin") a.cin = std::stoll(v);
      else if (k == "--threads") a.threads = std::stoi(v);
      else if (k == "--steps") a.steps = std::stoi(v);
      else if (k == "--seed") a.seed = std::stoull(v);
      else if (k == "--cuda-graphs") {
        if (v != "on" && v != "off") throw ConfigError("--cuda-graphs: 'on' or 'off', got '" + v + "'");
        a.cuda_graphs = v == "on";
      } else if (k == "--net") {
        if (v != "search" && v != "eval") throw ConfigError("--net: 'search' or 'eval', got '" + v + "'");
        a.net = v;
      } else if (k == "--genotype") a.genotype = v;
      else if (k == "--share-ops") {
        if (v != "on" && v != "off") throw ConfigError("--share-ops: 'on' or 'off', got '" + v + "'");
        a.share_ops = v == "on";
      } else if (k == "--auxiliary") {
        if (v != "on" && v != "off") throw ConfigError("--auxiliary: 'on' or 'off', got '" + v + "'");
        a.auxiliary = v == "on";
      } else if (k == "--drop-path") {
        a.drop_path = std::stod(v);
        if (!(a.drop_path >= 0 && a.drop_path < 1)) throw ConfigError("--drop-path must lie in [0, 1)");
      } else if (k == "--reduction-cells") {
        a.reduction_cells.clear();
        std::stringstream ss(v);
        std::string item;
        while (std::getline(ss, item, ',')) a.reduction_cells.push_back(std::stoi(item));
      }
      else if (k == "--sparsity") {
        a.sparsity.clear();
        std::stringstream ss(v);
        std::string item;
        while (std::getline(ss, item, ',')) a.sparsity.push_back(std::stod(item));
      } else {
        throw ConfigError("unknown flag " + k + "\n" + kUsage);
      }
    } catch (const std::invalid_argument&) {
      throw ConfigError("flag " + k + ": cannot parse '" + v + "'");
    }
  }
  if (a.C < 1 || a.layers < 1 || a.batch < 1 || a.hw < 1 || a.cin < 1 || a.threads < 1 || a.steps < 1)
    throw ConfigError("all sizes, --threads and --steps must be >= 1");
  for (double s : a.sparsity)
    if (!(s >= 0 && s <= 1)) throw ConfigError("--sparsity levels must lie in [0, 1]");
  for (size_t i = 0; i < a.reduction_cells.size(); ++i) {
    const int c = a.reduction_cells[i];
    if (c < 0 || c >= a.layers) throw ConfigError("--reduction-cells: " + std::to_string(c) + " is not a cell index in [0, --layers)");
    for (size_t j = 0; j < i; ++j)
      if (a.reduction_cells[j] == c) throw ConfigError("--reduction-cells: cell " + std::to_string(c) + " is listed twice");
  }
  return a;
}

Batch random_batch(const Args& a, Generator& g) {
  Batch b;
  b.x = Tensor::empty({a.batch, a.cin, a.hw, a.hw});
  g.normal_(b.x, 0.0, 1.0);
  b.y = Tensor::empty({a.batch}, DType::I32);
  for (int64_t i = 0; i < a.batch; ++i) b.y.data<int32_t>()[i] = static_cast<int32_t>(g.randint(10));
  return b;
}

void synchronize(Device dev) {
  if (dev.is_cuda()) {
    auto& t = allocator_table(dev.type);
    if (t.synchronize) t.synchronize(dev.index);
  }
}

void reset_peak(Device dev) {
  if (dev.is_cuda()) {
    auto& t = allocator_table(dev.type);
    if (t.reset_peak) t.reset_peak(dev.index);
  } else {
    cpu_reset_peak();
  }
}

double peak_mb(Device dev) {
  size_t bytes = 0;
  if (dev.is_cuda()) {
    auto& t = allocator_table(dev.type);
    if (t.peak_bytes) bytes = t.peak_bytes(dev.index);
  } else {
    bytes = cpu_peak_bytes();
  }
  return double(bytes) / (1024.0 * 1024.0);
}

#if defined(ASAP_WITH_CUDA)
// Exact counts per step (kernels/cuda/stats.h), the same on a GPU and in the emulator.
void add_device_counts(nlohmann::json& j, Device dev, const cuda::stats::Snapshot& per, int steps) {
  if (dev.is_cuda()) {
    // Exact counts per step (kernels/cuda/stats.h), the same on a GPU and in the emulator.
    // Kernels the device ran: launched directly plus replayed inside graphs; the host's own
    // launch calls are the direct ones plus one per graph launch.
    j["kernel_launches_per_step"] = static_cast<double>(per.launches + per.graph_kernel_nodes) / steps;
    j["host_launch_calls_per_step"] = static_cast<double>(per.launches + per.graph_launches) / steps;
    j["host_syncs_per_step"] = static_cast<double>(per.host_syncs) / steps;
    j["blas_calls_per_step"] = static_cast<double>(per.blas_calls) / steps;
    j["bytes_h2d_per_step"] = static_cast<double>(per.bytes_h2d) / steps;
    j["bytes_d2h_per_step"] = static_cast<double>(per.bytes_d2h) / steps;
    j["cuda_graph"] = per.graph_launches > 0;
    nlohmann::json syncs = nlohmann::json::object();
    for (const auto& [reason, n] : per.syncs_by_reason) syncs[reason] = static_cast<double>(n) / steps;
    j["host_syncs_by_reason"] = syncs;
    nlohmann::json by_kernel = nlohmann::json::object();
    for (const auto& [kernel, n] : per.launches_by_kernel) by_kernel[kernel] = static_cast<double>(n) / steps;
    j["launches_by_kernel_per_step"] = by_kernel;
  }
}
#endif

// The keys every benchmark line carries (BENCHMARK.md), for a mean step time of `ms`.
nlohmann::json step_json(const Args& a, Device dev, double ms, uint64_t ops) {
  nlohmann::json j;
  j["engine"] = "asap";
  j["device"] = dev.str();
  j["cpu_isa"] = cpu::cpu_isa_name(cpu::active_cpu_isa());  // ASAP_CPU_ISA forces one (kernels/cpu/isa.h)
  j["C"] = a.C;
  j["layers"] = a.layers;
  j["batch"] = a.batch;
  j["hw"] = a.hw;
  j["threads"] = a.threads;
  j["step_ms"] = std::round(ms * 100.0) / 100.0;
  j["peak_mem_mb"] = std::round(peak_mb(dev) * 10.0) / 10.0;
  // Engine ops (OpScope) per step, exact: with the per-op host cost of cpu_op_overhead_bench it
  // bounds what host overhead costs a step.
  j["ops_per_step"] = static_cast<double>(ops) / a.steps;
  return j;
}

// BENCHMARK.md: `none` always pruned, then the first round(7*s) ops of this order.
const std::vector<std::string> kPruneOrder = {"sep_conv_5x5", "dil_conv_5x5", "sep_conv_3x3",
                                              "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3",
                                              "skip_connect"};

nlohmann::json run_level(const Args& a, Device dev, double s) {
  reset_peak(dev);
  SearchConfig cfg;
  cfg.net.C = a.C;
  cfg.net.layers = a.layers;
  cfg.net.in_channels = a.cin;
  cfg.net.num_classes = 10;
  cfg.seed = a.seed;
  cfg.cuda_graphs = a.cuda_graphs;
  Searcher searcher(cfg, dev);
  Generator data_gen(a.seed + 1);
  Batch train = random_batch(a, data_gen);
  Batch val = random_batch(a, data_gen);
  train.x = train.x.to(dev);
  train.y = train.y.to(dev);
  val.x = val.x.to(dev);
  val.y = val.y.to(dev);

  SearchNetwork& net = searcher.network();
  const int n_pruned = static_cast<int>(std::lround(7.0 * s));
  std::vector<std::string> victims = {"none"};
  for (int i = 0; i < n_pruned && i < 7; ++i) victims.push_back(kPruneOrder[i]);
  for (const auto& name : victims) {
    int op = -1;
    for (int o = 0; o < net.num_ops(); ++o)
      if (net.primitives()[o] == name) op = o;
    for (int t = 0; t < 2; ++t)
      for (int e = 0; e < net.num_edges(); ++e)
        if (net.alive(static_cast<CellType>(t), e, op) && net.alive_count(static_cast<CellType>(t), e) > 1)
          searcher.prune(static_cast<CellType>(t), e, op);
  }

  searcher.step(train, &val);  // warm-up: caches, lazily created optimizer state
  if (a.cuda_graphs) {  // where graphs are on: a second eager step, then the capture
    searcher.step(train, &val);
    searcher.step(train, &val);
  }
  searcher.sync();             // a log point: the NaN guard and the device's prune decisions
  synchronize(dev);
#if defined(ASAP_WITH_CUDA)
  const cuda::stats::Snapshot before = cuda::stats::snapshot();
#endif
  const uint64_t ops0 = op_count_total();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.steps; ++i) searcher.step(train, &val);
#if defined(ASAP_WITH_CUDA)
  // Counted before the closing synchronize, which belongs to the benchmark, not to the steps.
  const cuda::stats::Snapshot per = cuda::stats::diff(cuda::stats::snapshot(), before);
#endif
  synchronize(dev);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.steps;

  nlohmann::json j = step_json(a, dev, ms, op_count_total() - ops0);
  j["sparsity"] = s;
#if defined(ASAP_WITH_CUDA)
  add_device_counts(j, dev, per, a.steps);
#endif
  return j;
}

// --net eval: one training step of the evaluation network stacked from --genotype (forward with
// the auxiliary head, backward, clip, SGD), as the train stage runs it.
nlohmann::json run_eval(const Args& a, Device dev) {
  reset_peak(dev);
  // A name (DARTS_V2, random:SEED, ...) or a run's genotype.txt text, "Genotype(...)".
  std::optional<Genotype> g;
  try {
    g = genotype_from_name_or_text(a.genotype);
  } catch (const Error& e) {
    throw ConfigError(std::string("--genotype: ") + e.what());
  }
  if (!g) throw ConfigError("--genotype: unknown name '" + a.genotype + "' (a name or Genotype(...) text)");
  TrainConfig cfg;
  cfg.net.C = a.C;
  cfg.net.layers = a.layers;
  cfg.net.in_channels = a.cin;
  cfg.net.num_classes = 10;
  cfg.net.input_size = a.hw;
  cfg.net.reduction_cells = a.reduction_cells;
  cfg.net.auxiliary = a.auxiliary;
  cfg.net.share_stateless_ops = a.share_ops;
  cfg.seed = a.seed;
  cfg.epochs = 10;
  cfg.cuda_graphs = a.cuda_graphs;
  EvalTrainer trainer(*g, cfg, dev);
  trainer.network().set_drop_path_prob(a.drop_path);
  Generator data_gen(a.seed + 1);
  Batch b = random_batch(a, data_gen);
  b.x = b.x.to(dev);
  b.y = b.y.to(dev);
  trainer.step(b);  // warm-up
  if (a.cuda_graphs) {  // where graphs are on: a second eager step, then the capture
    trainer.step(b);
    trainer.step(b);
  }
  synchronize(dev);
#if defined(ASAP_WITH_CUDA)
  const cuda::stats::Snapshot before = cuda::stats::snapshot();
#endif
  const uint64_t ops0 = op_count_total();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.steps; ++i) trainer.step(b);
#if defined(ASAP_WITH_CUDA)
  const cuda::stats::Snapshot per = cuda::stats::diff(cuda::stats::snapshot(), before);
#endif
  synchronize(dev);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.steps;
  nlohmann::json j = step_json(a, dev, ms, op_count_total() - ops0);
  j["net"] = "eval";
  j["genotype"] = a.genotype;
  j["auxiliary"] = a.auxiliary;
  j["drop_path"] = a.drop_path;
  j["share_ops"] = a.share_ops;
  j["reduction_cells"] = trainer.network().config().reduction_cells;
#if defined(ASAP_WITH_CUDA)
  add_device_counts(j, dev, per, a.steps);
#endif
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv);
    Device dev = parse_device(a.device);
    if (!backend_available(dev.type)) throw DeviceError("device " + a.device + " is not available in this build");
    omp_set_num_threads(a.threads);
    if (a.net == "eval") {
      std::cout << run_eval(a, dev).dump() << std::endl;
      return 0;
    }
    for (double s : a.sparsity) {
      std::cout << run_level(a, dev, s).dump() << std::endl;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asap_bench: %s\n", e.what());
    return 1;
  }
}
