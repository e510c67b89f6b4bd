#include "tools/search_stage.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/split.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "nas/search.h"
#include "tools/interrupt.h"
#include "tools/progress.h"
#include "tools/run_files.h"
#include "tools/export/run_outputs.h"
#include "tools/data_parallel.h"
#include "tools/stage_common.h"

namespace fs = std::filesystem;

namespace asap::run {
namespace {

std::string path_in(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

// Mean threshold over edges that can still be pruned (what the prune rule compares Phi against).
double current_theta(const nas::Searcher& s) {
  const nas::SearchNetwork& net = s.network();
  double sum = 0;
  int n = 0;
  for (auto t : {nas::CellType::Normal, nas::CellType::Reduce})
    for (int e = 0; e < net.num_edges(); ++e) {
      int alive = net.alive_count(t, e);
      if (alive > 1) {
        sum += s.annealer().threshold_at(s.epoch(), s.global_step(), alive);
        ++n;
      }
    }
  return n ? sum / n : 0.0;
}

int alive_ops(const nas::SearchNetwork& net, nas::CellType t) {
  int n = 0;
  for (int e = 0; e < net.num_edges(); ++e) n += net.alive_count(t, e);
  return n;
}

void write_genotype_files(const nas::Genotype& g, const std::string& out) {
  write_file_atomic(path_in(out, "genotype.txt"), nas::to_text(g) + "\n");
  write_file_atomic(path_in(out, "genotype.json"), nas::to_json(g).dump(2) + "\n");
  std::string warning;
  if (!nas::write_cell_pictures(g, nas::CellType::Normal, path_in(out, "cell_normal"), &warning) ||
      !nas::write_cell_pictures(g, nas::CellType::Reduce, path_in(out, "cell_reduce"), &warning))
    std::printf("cell pictures: DOT files written, no PNGs: %s\n", warning.c_str());
}

}  // namespace

nas::Genotype read_searched_genotype(const std::string& out_dir) {
  const std::string p = path_in(out_dir, "genotype.json");
  nlohmann::json j = nlohmann::json::parse(read_file(p), nullptr, false);
  if (j.is_discarded()) throw IoError(p + ": not valid JSON");
  try {
    return nas::genotype_from_json(j);
  } catch (const Error& e) {
    throw IoError(p + ": " + e.what());
  }
}

SearchOutcome run_search_stage(const RunConfig& c, const std::string& out, Device dev, bool resume,
                               const DataParallel* dp) {
  ASAP_NVTX_RANGE("stage/search");
  const std::string ckpt = path_in(out, "checkpoints/search.safetensors");
  const std::string metrics = path_in(out, "metrics.jsonl");
  const std::string prune_log = path_in(out, "prune_events.jsonl");
  fs::create_directories(path_in(out, "checkpoints"));

  // Data: the train split, halved into weight-train and alpha-validation parts (DARTS).
  const data::DatasetKind kind = data::parse_dataset_kind(c.data.dataset);
  auto train_set = stage_dataset(c, data::SplitKind::Train);
  data::TrainValSplit split = data::split_train_val(train_set->size(), c.data.train_portion, false, 0, c.data.subset);
  data::DataLoader train_loader(train_set, split.train,
                                loader_options(c, kind, c.data.batch_size, c.run.seed * 1000 + 1, dev, true));
  data::DataLoader val_loader(train_set, split.val,
                              loader_options(c, kind, c.data.batch_size, c.run.seed * 1000 + 2, dev, true));

  nas::SearchConfig sc = c.search;
  sc.net.in_channels = train_set->C;
  sc.net.num_classes = train_set->num_classes;
  sc.skip_nonfinite = c.run.on_nan == "skip_batch";
  sc.sync_every = dev.is_cuda() ? c.run.log_every : 1;
  sc.cuda_graphs = dev.is_cuda() && c.run.cuda_graphs != "off" && !sc.skip_nonfinite && !dp;
  nas::Searcher searcher(sc, dev);
  if (dp) searcher.set_data_parallel(dp->device.get());

  double seconds_before = 0;
  if (resume && file_exists(ckpt)) {
    auto [tensors, state] = load_checkpoint(ckpt, search_schema(c));
    load_into_network(ckpt, [&, &tensors = tensors, &state = state] { searcher.load_state(tensors, state.at("searcher")); });
    seconds_before = state.value("seconds", 0.0);
    const int done = searcher.epoch();
    // Drop search metrics of epochs after the checkpoint so the file equals an uninterrupted run's
    // (train-stage lines are the train stage's business); the prune log is rewritten from the
    // restored annealer.
    filter_jsonl(metrics, [done](const nlohmann::json& j) {
      return j.value("stage", "") != "search" || j.value("epoch", 1 << 30) < done;
    });
    std::string log;
    for (const auto& e : searcher.annealer().log()) log += nas::to_json(e).dump() + "\n";
    write_file_atomic(prune_log, log);
    std::printf("resumed search at epoch %d (sparsity %.3f)\n", done, searcher.network().sparsity());
    if (state.value("completed", false)) return {read_searched_genotype(out), seconds_before};
  } else {
    write_file_atomic(metrics, "");
    write_file_atomic(prune_log, "");
  }

  searcher.on_prune = [&](const nas::PruneEvent& e) { append_jsonl(prune_log, nas::to_json(e)); };
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  while (!searcher.finished()) {
    const int epoch = searcher.epoch();
    reset_peak_memory(dev);
    train_loader.start_epoch(epoch);
    val_loader.start_epoch(epoch);
    const int64_t steps = std::min(train_loader.batches_per_epoch(), val_loader.batches_per_epoch());
    char label[64];
    std::snprintf(label, sizeof label, "search %d/%d", epoch + 1, sc.epochs);
    Progress bar(label, steps, c.run.progress);
    int64_t done = 0;
    double loss_sum = 0, acc_sum = 0;
    int64_t counted = 0;
    char f[192] = "";
    searcher.on_step = [&](const nas::StepInfo& s) {
      ++done;  // non-finite values never get here unless run.on_nan is skip_batch
      check_interrupt("search", s.epoch, done);
      if (s.synced) {
        // Device-resident steps report epoch means at log points; host-checked steps each step.
        const bool means = !sc.skip_nonfinite;
        if (!s.skipped && !means) {
          loss_sum += s.train_loss;
          acc_sum += s.train_acc;
          ++counted;
        }
        const double l = means ? s.train_loss : (counted ? loss_sum / counted : 0.0);
        const double a = means ? s.train_acc : (counted ? acc_sum / counted : 0.0);
        std::snprintf(f, sizeof f, "loss %.3f acc %.3f sparsity %.2f T %.3f theta %.3f", l, a, s.sparsity, s.T,
                      current_theta(searcher));
      }
      bar.update(done, f);
    };
    auto next_train = [&](nas::Batch& b) {
      data::Batch db;
      if (!train_loader.next(db)) return false;
      b.x = db.images;
      b.y = db.labels;
      if (dp) take_shard(b, *dp);
      return true;
    };
    auto next_val = [&](nas::Batch& b) {
      data::Batch db;
      if (!val_loader.next(db)) return false;
      b.x = db.images;
      b.y = db.labels;
      if (dp) take_shard(b, *dp);
      return true;
    };
    nas::EpochStats st;
    try {
      st = searcher.run_epoch(next_train, next_val);
    } catch (const NumericError& e) {
      throw NumericError(std::string(e.what()) + " (search epoch " + std::to_string(epoch) +
                         "); the last good checkpoint is " + (file_exists(ckpt) ? ckpt : std::string("(none yet)")));
    }

    if (dp) check_search_agreement(*dp, searcher, epoch);  // never a different cell per rank
    nlohmann::json line = nas::to_json(st);
    line["stage"] = "search";
    line["epoch_seconds"] = st.seconds;
    line["alive_ops"] = {{"normal", alive_ops(searcher.network(), nas::CellType::Normal)},
                         {"reduce", alive_ops(searcher.network(), nas::CellType::Reduce)}};
    line["theta"] = current_theta(searcher);
    line["peak_mem_mb"] = peak_memory_mb(dev);
    line["reserved_mb"] = reserved_memory_mb(dev);
    line["rss_mb"] = resident_memory_mb();
    append_jsonl(metrics, line);
    exporting::after_search_epoch(c, out, searcher, line);  // alphas.jsonl, TensorBoard
    char summary[256];
    std::snprintf(summary, sizeof summary,
                  "done in %s: train loss %.3f acc %.3f | val loss %.3f acc %.3f | sparsity %.3f | T %.3f | %s",
                  format_seconds(st.seconds).c_str(), st.train_loss, st.train_acc, st.val_loss, st.val_acc,
                  st.sparsity, st.T, st.warmup ? "warm-up" : "annealing");
    bar.finish(summary);

    const bool last = searcher.finished();
    if (last || (epoch + 1) % c.run.checkpoint_every == 0) {
      nlohmann::json state = {{"searcher", searcher.state_json()}, {"seconds", elapsed()}, {"completed", false}};
      save_checkpoint(ckpt, searcher.state_tensors(), state);
    }
  }

  SearchOutcome outcome{searcher.genotype(), elapsed()};
  write_genotype_files(outcome.genotype, out);
  nlohmann::json state = {{"searcher", searcher.state_json()}, {"seconds", outcome.seconds}, {"completed", true}};
  save_checkpoint(ckpt, searcher.state_tensors(), state);
  std::printf("genotype: %s\n", nas::to_text(outcome.genotype).c_str());
  return outcome;
}

}  // namespace asap::run
