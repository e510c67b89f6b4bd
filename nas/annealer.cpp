#include "nas/annealer.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace asap::nas {

void AnnealConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& why) {
    throw ConfigError("anneal." + key + ": " + why);
  };
  if (temperature_schedule != "exponential" && temperature_schedule != "constant")
    bad("temperature_schedule", "'" + temperature_schedule + "' (exponential, constant)");
  if (!(T0 > 0)) bad("T0", "must be > 0");
  if (!(beta > 0 && beta <= 1)) bad("beta", "must be in (0, 1]");
  if (temperature_unit != "epoch" && temperature_unit != "step")
    bad("temperature_unit", "'" + temperature_unit + "' (epoch, step)");
  if (threshold_policy != "fraction" && threshold_policy != "exponential")
    bad("threshold_policy", "'" + threshold_policy + "' (fraction, exponential)");
  if (!(threshold_c >= 0 && threshold_c < 1))
    bad("threshold_c", "must be in [0, 1) so that the best op of an edge is never below theta");
  if (!(theta0 >= 0) || !(gamma > 0)) bad("theta0/gamma", "must be >= 0 / > 0");
  if (threshold_unit != "epoch" && threshold_unit != "step")
    bad("threshold_unit", "'" + threshold_unit + "' (epoch, step)");
  if (prune_every != "step" && prune_every != "epoch")
    bad("prune_every", "'" + prune_every + "' (step, epoch)");
  if (warmup_epochs < -1) bad("warmup_epochs", "must be >= -1 (-1 = while T >= warmup_temperature)");
}

nlohmann::json to_json(const PruneEvent& e) {
  nlohmann::json j = {{"epoch", e.epoch}, {"step", e.step}, {"cell_type", cell_type_name(e.cell_type)},
                      {"edge", e.edge},   {"op", e.op},     {"phi", e.phi},
                      {"T", e.T},         {"theta", e.theta}};
  if (!e.winner.empty()) {
    j["winner"] = e.winner;
    j["winner_phi"] = e.winner_phi;
    j["alpha_gap"] = e.alpha_gap;
    j["decided"] = e.decided;
  }
  return j;
}

PruneEvent prune_event_from_json(const nlohmann::json& j) {
  PruneEvent e;
  e.epoch = j.at("epoch").get<int>();
  e.step = j.at("step").get<int64_t>();
  e.cell_type = parse_cell_type(j.at("cell_type").get<std::string>());
  e.edge = j.at("edge").get<int>();
  e.op = j.at("op").get<std::string>();
  e.phi = j.at("phi").get<double>();
  e.T = j.at("T").get<double>();
  e.theta = j.at("theta").get<double>();
  // Optional: absent in logs written before the decision record existed.
  if (j.contains("winner") && j["winner"].is_string() && j.contains("alpha_gap") && j["alpha_gap"].is_number()) {
    e.winner = j["winner"].get<std::string>();
    e.winner_phi = j.value("winner_phi", std::nan(""));
    e.alpha_gap = j["alpha_gap"].get<double>();
    e.decided = j.value("decided", false);
  }
  return e;
}

Annealer::Annealer(const AnnealConfig& cfg) : cfg_(cfg) { cfg_.validate(); }

double Annealer::temperature_at(int epoch, int64_t step) const {
  if (cfg_.temperature_schedule == "constant") return cfg_.T0;
  double t = cfg_.temperature_unit == "epoch" ? double(epoch) : double(step);
  return std::max(cfg_.min_temperature, cfg_.T0 * std::pow(cfg_.beta, t));
}

double Annealer::threshold_at(int epoch, int64_t step, int alive_on_edge) const {
  if (cfg_.threshold_policy == "fraction") return cfg_.threshold_c / std::max(1, alive_on_edge);
  double t = cfg_.threshold_unit == "epoch" ? double(epoch) : double(step);
  return cfg_.theta0 * std::pow(cfg_.gamma, t);
}

bool Annealer::is_warmup_epoch(int epoch, int64_t step_at_epoch_start) const {
  if (cfg_.warmup_epochs >= 0) return epoch < cfg_.warmup_epochs;
  return temperature_at(epoch, step_at_epoch_start) >= cfg_.warmup_temperature;
}

std::vector<PruneEvent> Annealer::prune(SearchNetwork& net, int epoch, int64_t step,
                                        std::vector<Tensor>* released) {
  const double T = temperature_at(epoch, step);
  net.set_temperature(T);
  std::vector<PruneEvent> events;
  for (int ti = 0; ti < 2; ++ti) {
    CellType t = static_cast<CellType>(ti);
    const auto alpha = net.alpha_host(t);
    const auto phi = net.phi(t, alpha);
    for (int e = 0; e < net.num_edges(); ++e) {
      int alive = net.alive_count(t, e);
      if (alive <= 1) continue;
      double theta = threshold_at(epoch, step, alive);
      // The best op is protected; ties go to the lower index so the choice is deterministic.
      int best = -1;
      for (int o = 0; o < net.num_ops(); ++o)
        if (net.alive(t, e, o) && (best < 0 || phi[e][o] > phi[e][best])) best = o;
      const size_t first = events.size();
      for (int o = 0; o < net.num_ops(); ++o) {
        if (o == best || !net.alive(t, e, o) || !(phi[e][o] < theta)) continue;
        auto r = net.prune(t, e, o);
        if (released) released->insert(released->end(), r.begin(), r.end());
        PruneEvent ev;
        ev.epoch = epoch;
        ev.step = step;
        ev.cell_type = t;
        ev.edge = e;
        ev.op = net.primitives()[o];
        ev.phi = phi[e][o];
        ev.T = T;
        ev.theta = theta;
        ev.winner = net.primitives()[best];
        ev.winner_phi = phi[e][best];
        ev.alpha_gap = alpha[e][best] - alpha[e][o];
        events.push_back(ev);
      }
      const bool decided = events.size() > first && net.alive_count(t, e) == 1;
      for (size_t k = first; k < events.size(); ++k) {
        events[k].decided = decided;
        log_.push_back(events[k]);
      }
    }
  }
  return events;
}

}  // namespace asap::nas
