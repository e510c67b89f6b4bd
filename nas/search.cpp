#include "nas/search.h"

#include <chrono>
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "engine/optim/clip.h"
#include "engine/optim/lr_schedule.h"

namespace asap::nas {

void SearchConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& why) {
    throw ConfigError("search." + key + ": " + why);
  };
  if (epochs < 1) bad("epochs", "must be >= 1");
  if (!(w_lr > 0) || w_lr_min < 0) bad("w_lr", "must be > 0 (w_lr_min >= 0)");
  if (w_momentum < 0 || w_weight_decay < 0) bad("w_momentum", "momentum/weight decay must be >= 0");
  if (!(a_lr > 0)) bad("a_lr", "must be > 0");
  if (a_beta1 < 0 || a_beta1 >= 1 || a_beta2 < 0 || a_beta2 >= 1) bad("a_beta1", "betas must be in [0, 1)");
  if (net.C < 1 || net.layers < 1 || net.nodes < 1) bad("C", "C, layers and nodes must be >= 1");
  if (sync_every < 1) bad("sync_every", "must be >= 1");
  anneal.validate();
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  std::vector<float> l = logits.to_vector();
  std::vector<float> y = labels.to(Device::cpu()).to(DType::F32).to_vector();
  const int64_t n = logits.dim(0), k = logits.dim(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (l[i * k + j] > l[i * k + best]) best = j;
    correct += best == static_cast<int64_t>(y[i]);
  }
  return n ? double(correct) / double(n) : 0.0;
}

BatchSource shard_batches(BatchSource src, int shard, int shards) {
  ASAP_CHECK(shards >= 1 && shard >= 0 && shard < shards, "shard_batches: shard ", shard, " of ", shards);
  if (shards == 1) return src;
  auto next = std::make_shared<int64_t>(0);
  return [src = std::move(src), next, shard, shards](Batch& b) {
    while (src(b))
      if ((*next)++ % shards == shard) return true;
    return false;
  };
}

EvalStats evaluate_classifier(Module& net, const BatchSource& src, Device dev) {
  NoGradGuard ng;
  net.eval();
  EvalStats es;
  Batch b;
  double loss = 0, correct = 0;
  while (src(b)) {
    Tensor x = b.x.device() == dev ? b.x : b.x.to(dev);
    Tensor y = b.y.device() == dev ? b.y : b.y.to(dev);
    Tensor logits = net.forward(x);
    const int64_t n = x.dim(0);
    loss += ops::cross_entropy(logits, y).item() * n;
    correct += accuracy(logits, y) * n;
    es.samples += n;
  }
  net.train(true);
  if (es.samples) {
    es.loss = loss / es.samples;
    es.acc = correct / es.samples;
  }
  return es;
}

nlohmann::json to_json(const EpochStats& s) {
  return {{"epoch", s.epoch},       {"steps", s.steps},         {"warmup", s.warmup},
          {"train_loss", s.train_loss}, {"train_acc", s.train_acc}, {"val_loss", s.val_loss},
          {"val_acc", s.val_acc},   {"T", s.T},                 {"lr", s.lr},
          {"sparsity", s.sparsity}, {"seconds", s.seconds},     {"pruned", s.pruned},
          {"converged", s.converged}, {"skipped", s.skipped},
          {"step_seconds", s.step_seconds}, {"data_seconds", s.data_seconds}};
}

namespace {

std::vector<std::string> names_of(const std::vector<NamedTensor>& v) {
  std::vector<std::string> out;
  for (auto& nt : v) out.push_back(nt.first);
  return out;
}
std::vector<Tensor> tensors_of(const std::vector<NamedTensor>& v) {
  std::vector<Tensor> out;
  for (auto& nt : v) out.push_back(nt.second);
  return out;
}

}  // namespace

Searcher::Searcher(const SearchConfig& cfg, Device dev)
    : cfg_(cfg), dev_(dev), gen_(cfg.seed), annealer_(cfg.anneal) {
  cfg_.validate();
  net_ = std::make_unique<SearchNetwork>(cfg_.net, gen_, dev_);
  auto named = net_->named_parameters();
  w_opt_ = std::make_unique<SGD>(tensors_of(named), cfg_.w_lr, cfg_.w_momentum, cfg_.w_weight_decay,
                                 false, names_of(named));
  a_opt_ = std::make_unique<Adam>(net_->arch_parameters(), cfg_.a_lr, cfg_.a_beta1, cfg_.a_beta2,
                                  cfg_.a_eps, cfg_.a_weight_decay,
                                  std::vector<std::string>{"alphas.normal", "alphas.reduce"});
  if (!cfg_.skip_nonfinite) {
    state_ = std::make_unique<StepState>(dev_, net_->num_edges(), net_->num_ops(), cfg_.anneal);
    net_->bind_temperature(state_->tensor());
    w_opt_->use_device_scalars();
    a_opt_->use_device_scalars();
    step_graphs_ = cfg_.cuda_graphs && StepGraph::supported(dev_);
  }
  net_->set_temperature(annealer_.temperature_at(0, 0));
  rebuild_weight_list();
}

void Searcher::set_data_parallel(dist::Communicator* comm) {
  ASAP_CHECK(!comm || state_, "search: data parallel needs device-resident steps (run.on_nan: stop)");
  ASAP_CHECK(!comm || !step_graphs_, "search: data parallel steps are not captured as CUDA graphs");
  comm_ = comm;
  w_sync_ = comm ? std::make_unique<dist::GradAllReduce>(*comm) : nullptr;
  a_sync_ = comm ? std::make_unique<dist::GradAllReduce>(*comm) : nullptr;
}

void Searcher::rebuild_weight_list() { weights_ = net_->weights(); }

bool Searcher::is_warmup_epoch() const { return annealer_.is_warmup_epoch(epoch_, step_); }

bool Searcher::finished() const {
  return epoch_ >= cfg_.epochs || (cfg_.stop_when_converged && net_->converged());
}

void Searcher::prune(CellType t, int edge, int op) {
  for (const Tensor& p : net_->prune(t, edge, op)) w_opt_->release_state(p);
  rebuild_weight_list();
}

// Memory follows the plan (engine/cache_trim.h): the first step after a re-plan marks the
// allocator's cache, and the next host wait (the step itself on the host-checked path, else the
// next log point: sync_point) trims every cached block the new plan did not use.
StepInfo Searcher::step(const Batch& train, const Batch* val) {
  cache_trim_.before_step(dev_, net_->plan_version());
  if (state_) return step_device_resident(train, val);
  StepInfo info = step_host_checked(train, val);
  cache_trim_.trim_if_pending(dev_);
  return info;
}

StepInfo Searcher::step_device_resident(const Batch& train, const Batch* val) {
  ASAP_NVTX_RANGE("search/step");
  StepInfo info;
  info.epoch = epoch_;
  info.step = step_;
  info.warmup = val == nullptr;
  info.T = net_->temperature();
  info.lr = w_opt_->lr();
  info.synced = false;
  if (step_graphs_) {
    run_step_graphed(train, val);
  } else {
    const Tensor x = train.x.to(dev_), y = train.y.to(dev_);
    if (val) {
      const Tensor vx = val->x.to(dev_), vy = val->y.to(dev_);
      step_on_device(x, y, &vx, &vy);
    } else {
      step_on_device(x, y, nullptr, nullptr);
    }
  }
  ++step_;
  return info;
}

StepInfo Searcher::step_host_checked(const Batch& train, const Batch* val) {
  ASAP_NVTX_RANGE("search/step");
  StepInfo info;
  info.epoch = epoch_;
  info.step = step_;
  info.warmup = val == nullptr;
  info.T = net_->temperature();
  info.lr = w_opt_->lr();
  net_->train(true);
  {
    // Weight step: alphas frozen so the Phi gather and weighted-sum alpha gradients are skipped.
    ASAP_NVTX_RANGE("search/weight_step");
    for (auto& a : net_->arch_parameters()) a.impl()->requires_grad = false;
    Tensor x = train.x.to(dev_), y = train.y.to(dev_);
    const std::vector<Tensor> bn_stats = cfg_.skip_nonfinite ? net_->snapshot_buffers() : std::vector<Tensor>();
    w_opt_->zero_grad();
    Tensor logits = net_->forward(x);
    Tensor loss = ops::cross_entropy(logits, y);
    info.train_loss = loss.item();
    bool finite = std::isfinite(info.train_loss);
    if (finite) {
      backward(loss);
      const double norm = cfg_.grad_clip > 0 ? clip_grad_norm(weights_, cfg_.grad_clip) : grad_norm(weights_);
      finite = std::isfinite(norm);
      if (!finite && !cfg_.skip_nonfinite)
        throw NumericError("search: non-finite weight gradient norm at step " + std::to_string(step_));
    } else {
      clear_tape();
      if (!cfg_.skip_nonfinite)
        throw NumericError("search: non-finite training loss at step " + std::to_string(step_));
    }
    if (finite) w_opt_->step();
    else net_->restore_buffers(bn_stats);
    info.skipped = !finite;
    w_opt_->zero_grad();
    info.train_acc = accuracy(logits.detach(), y);
    for (auto& a : net_->arch_parameters()) a.impl()->requires_grad = true;
  }
  if (val) {
    ASAP_NVTX_RANGE("search/alpha_step");
    const bool freeze = cfg_.alpha_step_skips_weight_grads;
    if (freeze)
      for (auto& w : weights_) w.impl()->requires_grad = false;
    Tensor x = val->x.to(dev_), y = val->y.to(dev_);
    const std::vector<Tensor> bn_stats = cfg_.skip_nonfinite ? net_->snapshot_buffers() : std::vector<Tensor>();
    a_opt_->zero_grad();
    Tensor logits = net_->forward(x);
    Tensor loss = ops::cross_entropy(logits, y);
    info.val_loss = loss.item();
    bool finite = std::isfinite(info.val_loss);
    if (finite) {
      backward(loss);
      finite = std::isfinite(grad_norm(net_->arch_parameters()));
    } else {
      clear_tape();
    }
    if (freeze)
      for (auto& w : weights_) w.impl()->requires_grad = true;
    else
      w_opt_->zero_grad();  // first order: the weight gradients of the val batch are discarded
    if (!finite && !cfg_.skip_nonfinite)
      throw NumericError("search: non-finite validation loss or alpha gradient at step " + std::to_string(step_));
    if (finite) net_->keep_decided_alphas([&] { a_opt_->step(); });  // weight decay leaves decided alphas
    else net_->restore_buffers(bn_stats);
    info.skipped = info.skipped || !finite;
    a_opt_->zero_grad();
    info.val_acc = accuracy(logits.detach(), y);
  }
  ++step_;
  return info;
}

void Searcher::prune_by_policy(std::vector<PruneEvent>& out) {
  std::vector<Tensor> released;
  auto ev = annealer_.prune(*net_, epoch_, step_, &released);
  for (const Tensor& p : released) w_opt_->release_state(p);
  released.clear();
  if (!ev.empty()) rebuild_weight_list();
  for (auto& e : ev) {
    if (on_prune) on_prune(e);
    out.push_back(e);
  }
}

EpochStats Searcher::run_epoch(const BatchSource& train, const BatchSource& val) {
  ASAP_NVTX_RANGE("search/epoch");
  ASAP_CHECK(!finished(), "search: run_epoch called after the search finished");
  auto t0 = std::chrono::steady_clock::now();
  EpochStats st;
  st.epoch = epoch_;
  st.warmup = warmup_now_ = is_warmup_epoch();
  CosineAnnealingLR(cfg_.w_lr, cfg_.epochs, cfg_.w_lr_min).apply(*w_opt_, epoch_);
  st.lr = w_opt_->lr();
  const bool per_step_T = cfg_.anneal.temperature_unit == "step";
  const bool prune_each_step = cfg_.anneal.prune_every == "step";
  net_->set_temperature(annealer_.temperature_at(epoch_, step_));
  if (state_) state_->begin_epoch(epoch_, step_, net_->temperature());
  last_report_ = StepReport();
  prune_in_step_ = state_ && !warmup_now_ && prune_each_step;
  std::vector<PruneEvent> events;
  Batch tb, vb;
  int64_t since_sync = 0;
  StepInfo last;
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  for (;;) {
    const auto t_data = Clock::now();
    if (!train(tb)) break;
    if (!warmup_now_ && !val(vb)) break;
    st.data_seconds += since(t_data);
    if (per_step_T && !state_) net_->set_temperature(annealer_.temperature_at(epoch_, step_));
    size_t before = events.size();
    const auto t_step = Clock::now();
    StepInfo info = step(tb, warmup_now_ ? nullptr : &vb);
    st.step_seconds += since(t_step);
    st.steps++;
    if (state_) {
      // Device-resident: the host looks only at log points.
      if (++since_sync >= cfg_.sync_every) {
        since_sync = 0;
        sync_point(info, events);
      }
    } else {
      if (!warmup_now_ && prune_each_step) prune_by_policy(events);
      info.sparsity = net_->sparsity();
      if (info.skipped) {
        st.skipped++;
      } else {
        st.train_loss += info.train_loss;
        st.train_acc += info.train_acc;
        st.val_loss += info.val_loss;
        st.val_acc += info.val_acc;
      }
    }
    info.pruned = static_cast<int>(events.size() - before);
    last = info;
    if (on_step) on_step(info);
    // Convergence is known at log points on the device path (every sync_every steps).
    if (cfg_.stop_when_converged && net_->converged()) break;
  }
  prune_in_step_ = false;
  if (state_) {
    if (since_sync > 0) sync_point(last, events);
    st.train_loss = last_report_.mean_loss(0);
    st.train_acc = last_report_.mean_acc(0);
    st.val_loss = last_report_.mean_loss(1);
    st.val_acc = last_report_.mean_acc(1);
  }
  if (!warmup_now_ && !prune_each_step) prune_by_policy(events);
  if (const int64_t counted = st.steps - st.skipped; !state_ && counted > 0) {
    st.train_loss /= counted;
    st.train_acc /= counted;
    st.val_loss /= counted;
    st.val_acc /= counted;
  }
  st.T = net_->temperature();
  st.sparsity = net_->sparsity();
  st.pruned = static_cast<int>(events.size());
  st.converged = net_->converged();
  ++epoch_;
  // The next epoch's temperature, so that genotype() and checkpoints see the annealed value.
  if (!per_step_T) net_->set_temperature(annealer_.temperature_at(epoch_, step_));
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (on_epoch) on_epoch(st);
  return st;
}

EvalStats Searcher::evaluate(const BatchSource& src) {
  ASAP_NVTX_RANGE("search/evaluate");
  return evaluate_classifier(*net_, src, dev_);
}

// ---------------------------------------------------------------------------- checkpoint state

std::map<std::string, Tensor> Searcher::state_tensors() const {
  std::map<std::string, Tensor> m;
  m["alphas.normal"] = net_->alpha(CellType::Normal);
  m["alphas.reduce"] = net_->alpha(CellType::Reduce);
  for (auto& [n, t] : net_->named_parameters()) m["weights." + n] = t;
  for (auto& [n, t] : net_->named_buffers()) m["buffers." + n] = t;
  for (auto& kv : w_opt_->export_state()) m[kv.first] = kv.second;
  for (auto& kv : a_opt_->export_state()) m[kv.first] = kv.second;
  return m;
}

nlohmann::json Searcher::state_json() const {
  nlohmann::json j;
  j["format"] = "asap-search-state-1";
  j["epoch"] = epoch_;
  j["step"] = step_;
  j["temperature"] = net_->temperature();
  j["primitives"] = net_->primitives();
  j["sparsity"] = net_->sparsity();
  for (int t = 0; t < 2; ++t) {
    CellType ct = static_cast<CellType>(t);
    nlohmann::json rows = nlohmann::json::array();
    for (auto& row : net_->alive_mask(ct)) {
      std::vector<int> r(row.begin(), row.end());
      rows.push_back(r);
    }
    j["alive"][cell_type_name(ct)] = rows;
  }
  nlohmann::json log = nlohmann::json::array();
  for (auto& e : annealer_.log()) log.push_back(to_json(e));
  j["prune_log"] = log;
  return j;
}

void Searcher::load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& j) {
  ASAP_CHECK(j.value("format", "") == "asap-search-state-1", "search state: unknown format");
  ASAP_CHECK(j.at("primitives").get<std::vector<std::string>>() == net_->primitives(),
             "search state: the primitive list differs from the config's");
  // 1. Structure: re-apply prunes so the network and optimizers hold exactly the saved params.
  for (int t = 0; t < 2; ++t) {
    CellType ct = static_cast<CellType>(t);
    const auto& rows = j.at("alive").at(cell_type_name(ct));
    ASAP_CHECK(static_cast<int>(rows.size()) == net_->num_edges(), "search state: alive mask of ",
               cell_type_name(ct), " has ", rows.size(), " edges");
    for (int e = 0; e < net_->num_edges(); ++e) {
      auto r = rows[e].get<std::vector<int>>();
      ASAP_CHECK(static_cast<int>(r.size()) == net_->num_ops(), "search state: bad alive row");
      for (int o = 0; o < net_->num_ops(); ++o)
        if (!r[o] && net_->alive(ct, e, o)) prune(ct, e, o);
        else if (r[o] && !net_->alive(ct, e, o))
          throw Error("search state: op already pruned here is alive in the checkpoint");
    }
  }
  // 2. Tensors.
  auto get = [&](const std::string& name) -> const Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error("search state: missing tensor '" + name + "'");
    return it->second;
  };
  auto load_into = [&](const std::string& name, Tensor& dst) {
    const Tensor& src = get(name);
    ASAP_CHECK(src.shape() == dst.shape(), "search state: '", name, "' has shape ", src.shape().str(),
               ", expected ", dst.shape().str());
    dst.copy_(src.dtype() == dst.dtype() ? src : src.to(Device::cpu()).to(dst.dtype()));
  };
  load_into("alphas.normal", net_->alpha(CellType::Normal));
  load_into("alphas.reduce", net_->alpha(CellType::Reduce));
  for (auto& [n, t] : net_->named_parameters()) load_into("weights." + n, t);
  for (auto& [n, t] : net_->named_buffers()) load_into("buffers." + n, t);
  w_opt_->import_state(tensors);
  a_opt_->import_state(tensors);
  // 3. Counters.
  epoch_ = j.at("epoch").get<int>();
  step_ = j.at("step").get<int64_t>();
  net_->set_temperature(j.at("temperature").get<double>());
  std::vector<PruneEvent> log;
  for (auto& e : j.at("prune_log")) log.push_back(prune_event_from_json(e));
  annealer_.set_log(std::move(log));
}

}  // namespace asap::nas
