#include "tools/train_stage.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/split.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "nas/eval_train.h"
#include "tools/interrupt.h"
#include "tools/progress.h"
#include "tools/run_files.h"
#include "tools/search_stage.h"
#include "tools/export/run_outputs.h"
#include "tools/data_parallel.h"
#include "tools/stage_common.h"

namespace fs = std::filesystem;

namespace asap::run {
namespace {

std::string path_in(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

// dp: each rank takes its shard of every batch (the test set is evaluated whole on every rank).
nas::BatchSource source_of(data::DataLoader& loader, const DataParallel* dp = nullptr) {
  return [&loader, dp](nas::Batch& b) {
    data::Batch db;
    if (!loader.next(db)) return false;
    b.x = db.images;
    b.y = db.labels;
    if (dp) take_shard(b, *dp);
    return true;
  };
}

}  // namespace

nas::Genotype resolve_genotype(const RunConfig& c, const std::string& out_dir) {
  const std::string& g = c.train.genotype;
  if (g.empty()) return read_searched_genotype(out_dir);
  try {
    // DARTS_V1/V2, ASAP, NASNet, AmoebaNet, random:SEED or Genotype(...) text.
    if (auto named = nas::genotype_from_name_or_text(g)) return *named;
    if (!file_exists(g))
      throw ConfigError(c.source + ": key 'train.genotype': '" + g +
                        "' is neither Genotype(...) text, a known name (DARTS_V1, DARTS_V2, ASAP, NASNet, AmoebaNet, random:SEED) nor an existing file");
    const std::string text = read_file(g);
    if (g.size() > 5 && g.substr(g.size() - 5) == ".json") {
      nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
      if (j.is_discarded()) throw IoError(g + ": not valid JSON");
      return nas::genotype_from_json(j);
    }
    return nas::parse_genotype(text);
  } catch (const ConfigError&) {
    throw;
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    throw ConfigError(c.source + ": key 'train.genotype': " + e.what());
  }
}

TrainOutcome run_train_stage(const RunConfig& c, const nas::Genotype& g, const std::string& out, Device dev,
                             bool resume, const DataParallel* dp) {
  ASAP_NVTX_RANGE("stage/train");
  const std::string ckpt = path_in(out, "checkpoints/train.safetensors");
  const std::string metrics = path_in(out, "metrics.jsonl");
  fs::create_directories(path_in(out, "checkpoints"));

  const data::DatasetKind kind = data::parse_dataset_kind(c.data.dataset);
  auto train_set = stage_dataset(c, data::SplitKind::Train);
  auto test_set = stage_dataset(c, data::SplitKind::Test);
  data::DataLoader train_loader(train_set, data::first_indices(train_set->size(), c.train.subset),
                                loader_options(c, kind, c.train.batch_size, c.run.seed * 1000 + 3, dev, true, true));
  data::DataLoader test_loader(test_set, data::first_indices(test_set->size(), c.data.test_subset),
                               loader_options(c, kind, c.data.eval_batch_size, 0, dev, false));

  nas::TrainConfig tc;
  tc.net.C = c.train.C;
  tc.net.layers = c.train.layers;
  tc.net.stem_multiplier = c.train.stem_multiplier;
  tc.net.reduction_cells = c.train.reduction_cells;
  tc.net.in_channels = train_set->C;
  tc.net.num_classes = train_set->num_classes;
  tc.net.auxiliary = c.train.auxiliary;
  tc.net.input_size = train_set->H;
  tc.epochs = c.train.epochs;
  tc.lr = c.train.lr;
  tc.lr_min = c.train.lr_min;
  tc.lr_per_step = c.train.lr_unit == "step";
  tc.steps_per_epoch = train_loader.batches_per_epoch();
  tc.momentum = c.train.momentum;
  tc.weight_decay = c.train.weight_decay;
  tc.grad_clip = c.train.grad_clip;
  tc.aux_weight = c.train.auxiliary_weight;
  tc.drop_path_max = c.train.drop_path;
  tc.seed = c.run.seed;
  tc.skip_nonfinite = c.run.on_nan == "skip_batch";
  tc.sync_every = dev.is_cuda() ? c.run.log_every : 1;
  tc.cuda_graphs = dev.is_cuda() && c.run.cuda_graphs != "off" && !tc.skip_nonfinite && !dp;
  nas::EvalTrainer trainer(g, tc, dev);
  if (dp) trainer.set_data_parallel(dp->device.get());

  TrainOutcome result;
  result.parameters = trainer.network().parameter_count_without_aux();
  std::printf("evaluation network: C=%lld layers=%d, %.3f M parameters (without the auxiliary head)\n",
              (long long)tc.net.C, tc.net.layers, result.parameters / 1e6);

  double seconds_before = 0;
  nas::EvalStats last_eval;
  bool have_eval = false;
  if (resume && file_exists(ckpt)) {
    auto [tensors, state] = load_checkpoint(ckpt, train_schema(c));
    load_into_network(ckpt, [&, &tensors = tensors, &state = state] { trainer.load_state(tensors, state.at("trainer")); });
    seconds_before = state.value("seconds", 0.0);
    if (state.contains("test")) {
      last_eval.loss = state["test"].value("loss", 0.0);
      last_eval.acc = state["test"].value("acc", 0.0);
      have_eval = true;
    }
    const int done = trainer.epoch();
    filter_jsonl(metrics, [done](const nlohmann::json& j) {
      return j.value("stage", "") != "train" || j.value("epoch", 1 << 30) < done;
    });
    std::printf("resumed training at epoch %d\n", done);
  } else {
    filter_jsonl(metrics, [](const nlohmann::json& j) { return j.value("stage", "") != "train"; });
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  while (!trainer.finished()) {
    const int epoch = trainer.epoch();
    reset_peak_memory(dev);
    train_loader.start_epoch(epoch);
    char label[64];
    std::snprintf(label, sizeof label, "train %d/%d", epoch + 1, tc.epochs);
    Progress bar(label, train_loader.batches_per_epoch(), c.run.progress);
    int64_t done = 0;
    double loss_sum = 0;
    trainer.on_step = [&](int ep, int64_t step, double loss) {
      (void)step;
      ++done;  // non-finite losses only get here with run.on_nan: skip_batch (skipped batches)
      check_interrupt("train", ep, done);
      // Device-resident steps pass the epoch's mean so far; host-checked steps (skip_batch) their own loss.
      if (std::isfinite(loss)) loss_sum += loss;
      char f[96];
      std::snprintf(f, sizeof f, "loss %.3f", tc.skip_nonfinite ? loss_sum / done : loss);
      bar.update(done, f);
    };
    nas::TrainEpochStats st;
    try {
      st = trainer.run_epoch(source_of(train_loader, dp));
    } catch (const NumericError& e) {
      throw NumericError(std::string(e.what()) + " (train epoch " + std::to_string(epoch) +
                         "); the last good checkpoint is " + (file_exists(ckpt) ? ckpt : std::string("(none yet)")));
    }
    if (dp) check_train_agreement(*dp, trainer, epoch);
    const bool last = trainer.finished();
    nlohmann::json line = nas::to_json(st);
    line["stage"] = "train";
    line["epoch_seconds"] = st.seconds;
    line["train_loss"] = st.loss;
    line["train_acc"] = st.acc;
    if (last || (epoch + 1) % c.train.eval_every == 0) {
      test_loader.start_epoch(0);
      last_eval = trainer.evaluate(source_of(test_loader));
      have_eval = true;
      line["val_loss"] = last_eval.loss;
      line["val_acc"] = last_eval.acc;
    }
    line["peak_mem_mb"] = peak_memory_mb(dev);
    line["reserved_mb"] = reserved_memory_mb(dev);
    line["rss_mb"] = resident_memory_mb();
    append_jsonl(metrics, line);
    exporting::after_train_epoch(c, out, line);  // TensorBoard
    char test_part[64] = "";
    if (line.contains("val_acc"))
      std::snprintf(test_part, sizeof test_part, " | test loss %.3f acc %.4f", last_eval.loss, last_eval.acc);
    char summary[200];
    std::snprintf(summary, sizeof summary, "done in %s: train loss %.3f acc %.3f | lr %.4f | drop-path %.3f%s",
                  format_seconds(st.seconds).c_str(), st.loss, st.acc, st.lr, st.drop_path, test_part);
    bar.finish(summary);
    if (last || (epoch + 1) % c.run.checkpoint_every == 0) {
      nlohmann::json state = {{"trainer", trainer.state_json()}, {"seconds", elapsed()}};
      if (have_eval) state["test"] = {{"loss", last_eval.loss}, {"acc", last_eval.acc}};
      save_checkpoint(ckpt, trainer.state_tensors(), state);
    }
  }
  if (!have_eval) {  // resumed after the last epoch's checkpoint without an evaluation
    test_loader.start_epoch(0);
    last_eval = trainer.evaluate(source_of(test_loader));
  }
  exporting::after_train(c, out, trainer.network(), tc.net);  // RUN/model.safetensors
  result.test_accuracy = last_eval.acc;
  result.test_loss = last_eval.loss;
  result.seconds = elapsed();
  return result;
}

}  // namespace asap::run
