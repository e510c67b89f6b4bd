#include "tools/export/run_outputs.h"

#include <filesystem>
#include <map>
#include <memory>

#include "data/dataset.h"
#include "tools/export/model_file.h"
#include "tools/export/tensorboard_writer.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;

namespace asap::exporting {
namespace {

// One writer per run folder for the life of the process (a resumed run starts a new file, which
// TensorBoard merges with the earlier ones).
EventWriter& events_for(const std::string& out) {
  static std::map<std::string, std::unique_ptr<EventWriter>> writers;
  auto& w = writers[out];
  if (!w) w = std::make_unique<EventWriter>((fs::path(out) / "tensorboard").string());
  return *w;
}

nlohmann::json matrix(const std::vector<std::vector<double>>& m) { return m; }

nlohmann::json alive_matrix(const std::vector<std::vector<uint8_t>>& m) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& row : m) {
    nlohmann::json r = nlohmann::json::array();
    for (uint8_t v : row) r.push_back(v != 0);
    j.push_back(r);
  }
  return j;
}

}  // namespace

std::vector<std::pair<std::string, double>> tensorboard_scalars(const nlohmann::json& line) {
  const std::string stage = line.value("stage", "");
  // metrics key -> tag below the stage; the train stage's "val" is the test set.
  const std::vector<std::pair<std::string, std::string>> keys =
      stage == "search"
          ? std::vector<std::pair<std::string, std::string>>{{"train_loss", "train_loss"}, {"train_acc", "train_acc"},
                                                             {"val_loss", "val_loss"},     {"val_acc", "val_acc"},
                                                             {"lr", "lr"},                 {"T", "T"},
                                                             {"theta", "theta"},           {"sparsity", "sparsity"},
                                                             {"epoch_seconds", "epoch_seconds"},
                                                             {"peak_mem_mb", "peak_mem_mb"},
                                                             {"reserved_mb", "reserved_mb"},
                                                             {"rss_mb", "rss_mb"}}
          : std::vector<std::pair<std::string, std::string>>{{"train_loss", "train_loss"}, {"train_acc", "train_acc"},
                                                             {"val_loss", "test_loss"},    {"val_acc", "test_acc"},
                                                             {"lr", "lr"},                 {"drop_path", "drop_path"},
                                                             {"epoch_seconds", "epoch_seconds"},
                                                             {"peak_mem_mb", "peak_mem_mb"},
                                                             {"reserved_mb", "reserved_mb"},
                                                             {"rss_mb", "rss_mb"}};
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [key, tag] : keys)
    if (line.contains(key) && line[key].is_number()) out.emplace_back(stage + "/" + tag, line[key].get<double>());
  return out;
}

void after_search_epoch(const run::RunConfig& c, const std::string& out, const nas::Searcher& s,
                        const nlohmann::json& line) {
  const nas::SearchNetwork& net = s.network();
  const int epoch = line.value("epoch", 0);
  nlohmann::json a = {{"epoch", epoch}, {"step", s.global_step()}, {"T", net.temperature()},
                      {"primitives", net.primitives()}};
  for (auto t : {nas::CellType::Normal, nas::CellType::Reduce}) {
    const char* name = nas::cell_type_name(t);
    a["alpha"][name] = matrix(net.alpha_host(t));
    a["phi"][name] = matrix(net.phi(t));
    a["alive"][name] = alive_matrix(net.alive_mask(t));
  }
  const std::string path = (fs::path(out) / "alphas.jsonl").string();
  run::filter_jsonl(path, [epoch](const nlohmann::json& j) { return j.value("epoch", 1 << 30) < epoch; });
  run::append_jsonl(path, a);

  if (!c.run.tensorboard) return;
  auto scalars = tensorboard_scalars(line);
  for (auto t : {nas::CellType::Normal, nas::CellType::Reduce}) {
    const std::string cell = nas::cell_type_name(t);
    const auto phi = net.phi(t);
    for (int o = 0; o < net.num_ops(); ++o) {
      double sum = 0;
      int alive = 0;
      for (int e = 0; e < net.num_edges(); ++e) {
        sum += phi[e][o];
        alive += net.alive(t, e, o) ? 1 : 0;
      }
      const std::string& op = net.primitives()[o];
      scalars.emplace_back("search/alive_ops/" + cell + "/" + op, alive);
      scalars.emplace_back("search/phi_mean/" + cell + "/" + op, sum / net.num_edges());
    }
  }
  EventWriter& w = events_for(out);
  w.add_scalars(epoch, scalars);
  w.flush();
}

void after_train_epoch(const run::RunConfig& c, const std::string& out, const nlohmann::json& line) {
  if (!c.run.tensorboard) return;
  EventWriter& w = events_for(out);
  w.add_scalars(line.value("epoch", 0), tensorboard_scalars(line));
  w.flush();
}

void after_train(const run::RunConfig& c, const std::string& out, const nas::EvalNetwork& net,
                 const nas::EvalNetworkConfig& net_cfg) {
  const data::DatasetKind kind = data::parse_dataset_kind(c.data.dataset);
  ModelInfo info;
  info.genotype = net.genotype();
  info.net = net_cfg;
  if (c.data.normalize) info.norm = data::default_normalization(kind);
  info.dataset = data::dataset_kind_name(kind);
  write_model_file((fs::path(out) / "model.safetensors").string(), net, info);
}

}  // namespace asap::exporting
