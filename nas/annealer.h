// ASAP's annealing and pruning schedule: temperature T_t, threshold theta_t, warm-up, the prune
// rule and its event log. Pure host-side math over the network's alphas and alive masks; the
// search loop decides when to call it. Defaults and their reasons: docs/method.md.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/search_network.h"

namespace asap::nas {

struct AnnealConfig {
  // Temperature: "exponential" T = T0 * beta^t, or "constant" T = T0; t counts epochs or steps.
  std::string temperature_schedule = "exponential";
  double T0 = 1.6;
  double beta = 0.95;
  std::string temperature_unit = "epoch";  // "epoch" | "step" (alpha steps)
  double min_temperature = 1e-3;           // floor, keeps alpha / T finite
  // Threshold: "fraction" theta = c / |alive ops on the edge|, or "exponential" theta0 * gamma^t.
  std::string threshold_policy = "fraction";
  double threshold_c = 0.4;
  double theta0 = 0.05;
  double gamma = 0.95;
  std::string threshold_unit = "epoch";  // for the exponential policy
  // Warm-up (weights only, no alpha steps, no pruning): a fixed number of epochs, or -1 = while
  // the temperature at the epoch's start is >= warmup_temperature.
  int warmup_epochs = -1;
  double warmup_temperature = 1.0;
  // When to apply the prune rule: "step" (after every alpha update) or "epoch" (end of epoch).
  std::string prune_every = "step";
  void validate() const;  // throws asap::ConfigError naming the key
};

struct PruneEvent {
  int epoch = 0;
  int64_t step = 0;
  CellType cell_type = CellType::Normal;
  int edge = 0;
  std::string op;
  double phi = 0, T = 0, theta = 0;
  // The decision record (docs/method.md, "Genotype derivation"): the edge's best op at this prune,
  // its Phi, and alpha(winner) - alpha(op). NaN / empty in prune logs written before these fields
  // existed (such events still load; derivation then falls back to the raw-alpha rule).
  std::string winner;
  double winner_phi = std::nan("");
  double alpha_gap = std::nan("");
  bool decided = false;  // this prune left the edge with one alive op
};
nlohmann::json to_json(const PruneEvent& e);
PruneEvent prune_event_from_json(const nlohmann::json& j);

class Annealer {
 public:
  explicit Annealer(const AnnealConfig& cfg);
  const AnnealConfig& config() const { return cfg_; }

  // Schedule math (pure).
  double temperature_at(int epoch, int64_t step) const;
  double threshold_at(int epoch, int64_t step, int alive_on_edge) const;
  bool is_warmup_epoch(int epoch, int64_t step_at_epoch_start) const;

  // The prune rule at (epoch, step): per edge with more than one alive op, every op whose Phi
  // (softmax over the alive ops at temperature T) is below theta is pruned, except the op with
  // the largest Phi (the last alive op of an edge is never pruned). Sets the network's T first.
  // Returns the events; the caller releases the optimizer state of `released`.
  std::vector<PruneEvent> prune(SearchNetwork& net, int epoch, int64_t step,
                                std::vector<Tensor>* released = nullptr);

  const std::vector<PruneEvent>& log() const { return log_; }
  void set_log(std::vector<PruneEvent> log) { log_ = std::move(log); }

 private:
  AnnealConfig cfg_;
  std::vector<PruneEvent> log_;
};

}  // namespace asap::nas
