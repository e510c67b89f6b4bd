#include "tools/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "engine/error.h"
#include "nas/primitives.h"
#include "tools/config_reader.h"

namespace asap::run {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

// --set a.b.c=value: value is parsed as YAML so lists and numbers work ("[1, 2]", "0.1").
void apply_override(YAML::Node& root, const std::string& file, const std::string& kv,
                    std::set<std::string>& overridden) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(file + ": --set '" + kv + "': expected dotted.key=value (from --set)");
  const std::string key = kv.substr(0, eq);
  // "key=" would parse as YAML null, which every reader takes as "absent": the built-in default
  // would come back silently.
  if (kv.find_first_not_of(" \t", eq + 1) == std::string::npos)
    throw ConfigError(file + ": key '" + key + "': --set '" + kv + "' gives no value (from --set)");
  overridden.insert(key);
  YAML::Node value;
  try {
    value = YAML::Load(kv.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ": key '" + key + "': --set value is not valid YAML: " + e.msg + " (from --set)");
  }
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty()) throw ConfigError(file + ": --set '" + kv + "': empty key segment (from --set)");
    parts.push_back(p);
  }
  // Walk with fresh handles: assigning to a yaml-cpp Node handle would rebind, not descend.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (next.IsDefined() && !next.IsNull() && !next.IsMap())
      throw ConfigError(file + ": --set '" + kv + "': '" + parts[i] + "' is not a mapping (from --set)");
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
}

// yaml-cpp keeps the first of two equal keys and drops the second without a word; a repeated
// key or section is almost always a merge mistake, so it is an error naming both lines.
void reject_duplicate_keys(const YAML::Node& n, const std::string& path, const std::string& file) {
  if (n.IsSequence())
    for (const auto& e : n) reject_duplicate_keys(e, path, file);
  if (!n.IsMap()) return;
  std::map<std::string, int> lines;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) continue;  // complex keys: SectionReader::finish() reports them
    const std::string key = path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar();
    const int line = kv.first.Mark().line + 1;
    auto [it, fresh] = lines.emplace(kv.first.Scalar(), line);
    if (!fresh)
      throw ConfigError(file + ":" + std::to_string(line) + ": key '" + key + "' appears twice (lines " +
                        std::to_string(it->second) + " and " + std::to_string(line) + ")");
    reject_duplicate_keys(kv.second, key, file);
  }
}

// Dotted key -> scalar text (lists in flow form) of a config's YAML, for comparing two configs.
void flatten(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) flatten(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out);
    return;
  }
  YAML::Emitter e;
  e << YAML::Flow << n;
  out[path] = e.c_str();
}

void read_data(SectionReader r, DataConfig& d) {
  r.get("dataset", d.dataset, {"fashion_mnist", "mnist", "cifar10", "cifar100"});
  r.get("root", d.root);
  r.get("train_portion", d.train_portion, 0.01, 0.99);
  r.get("subset", d.subset, 0, kMaxI64);
  r.get("test_subset", d.test_subset, 0, kMaxI64);
  r.get("batch_size", d.batch_size, 1, 1 << 20);
  r.get("eval_batch_size", d.eval_batch_size, 1, 1 << 20);
  r.get("crop_padding", d.crop_padding, 0, 64);
  r.get("flip", d.flip);
  r.get("cutout", d.cutout, 0, 1024);
  r.get("normalize", d.normalize);
  r.get("prefetch", d.prefetch);
  r.finish();
}

void read_space(SectionReader r, nas::SearchNetworkConfig& n) {
  r.get("primitives", n.primitives);
  r.get("nodes", n.nodes, 1, 16);
  r.finish();
  if (n.primitives.empty()) n.primitives = nas::darts_primitives();
  try {
    nas::validate_primitive_list(n.primitives);
  } catch (const Error& e) {
    r.fail_key("primitives", e.what());
  }
}

// network.reduction_cells of the search or train network: default [layers//3, 2*layers//3]
// (DARTS); each a cell index, none twice.
void read_reduction_cells(SectionReader& n, const char* section, int layers, std::vector<int>& rc) {
  n.get("reduction_cells", rc);
  if (rc.empty()) rc = {layers / 3, 2 * layers / 3};
  std::set<int> seen;
  for (int i : rc) {
    if (i < 0 || i >= layers)
      n.fail_key("reduction_cells", std::to_string(i) + " is not a cell index in [0, " + std::to_string(layers) +
                                        ") (" + section + ".network.layers is " + std::to_string(layers) + ")");
    if (!seen.insert(i).second) n.fail_key("reduction_cells", "cell " + std::to_string(i) + " is listed twice");
  }
}

void read_search(SectionReader r, nas::SearchConfig& s) {
  r.get("epochs", s.epochs, 1, 100000);
  r.get("stop_when_converged", s.stop_when_converged);
  r.get("alpha_step_skips_weight_grads", s.alpha_step_skips_weight_grads);
  {
    SectionReader n = r.section("network");
    n.get("C", s.net.C, 1, 4096);
    n.get("layers", s.net.layers, 1, 1000);
    n.get("stem_multiplier", s.net.stem_multiplier, 1, 16);
    read_reduction_cells(n, "search", s.net.layers, s.net.reduction_cells);
    n.finish();
  }
  {
    SectionReader w = r.section("weights");
    w.get("lr", s.w_lr, 0, 10);
    w.get("lr_min", s.w_lr_min, 0, 10);
    w.get("momentum", s.w_momentum, 0, 0.9999);
    w.get("weight_decay", s.w_weight_decay, 0, 1);
    w.get("grad_clip", s.grad_clip, 0, kInf);
    w.finish();
  }
  {
    SectionReader a = r.section("alphas");
    a.get("lr", s.a_lr, 0, 10);
    a.get("beta1", s.a_beta1, 0, 0.9999);
    a.get("beta2", s.a_beta2, 0, 0.99999);
    a.get("eps", s.a_eps, 1e-12, 1);
    a.get("weight_decay", s.a_weight_decay, 0, 1);
    a.get("freeze_decided", s.net.freeze_decided_alphas);
    a.finish();
  }
  {
    SectionReader a = r.section("annealer");
    nas::AnnealConfig& c = s.anneal;
    a.get("temperature_schedule", c.temperature_schedule, {"exponential", "constant"});
    a.get("T0", c.T0, 1e-6, 1e6);
    a.get("beta", c.beta, 1e-6, 1.0);
    a.get("temperature_unit", c.temperature_unit, {"epoch", "step"});
    a.get("min_temperature", c.min_temperature, 1e-9, 1e6);
    a.get("threshold_policy", c.threshold_policy, {"fraction", "exponential"});
    a.get("threshold_c", c.threshold_c, 0, 1);
    a.get("theta0", c.theta0, 0, 1);
    a.get("gamma", c.gamma, 0, 10);
    a.get("threshold_unit", c.threshold_unit, {"epoch", "step"});
    a.get("warmup_epochs", c.warmup_epochs, -1, 100000);
    a.get("warmup_temperature", c.warmup_temperature, 0, 1e6);
    a.get("prune_every", c.prune_every, {"step", "epoch"});
    a.finish();
  }
  r.finish();
}

void read_train(SectionReader r, TrainConfig& t) {
  r.get("genotype", t.genotype);
  r.get("epochs", t.epochs, 1, 100000);
  r.get("batch_size", t.batch_size, 1, 1 << 20);
  r.get("eval_every", t.eval_every, 1, 100000);
  r.get("subset", t.subset, 0, kMaxI64);
  {
    SectionReader n = r.section("network");
    n.get("C", t.C, 1, 4096);
    n.get("layers", t.layers, 1, 1000);
    n.get("stem_multiplier", t.stem_multiplier, 1, 16);
    n.get("auxiliary", t.auxiliary);
    n.get("auxiliary_weight", t.auxiliary_weight, 0, 10);
    n.get("drop_path", t.drop_path, 0, 0.95);
    read_reduction_cells(n, "train", t.layers, t.reduction_cells);
    n.finish();
  }
  {
    SectionReader o = r.section("optimizer");
    o.get("lr", t.lr, 0, 10);
    o.get("lr_min", t.lr_min, 0, 10);
    o.get("lr_unit", t.lr_unit, {"epoch", "step"});
    o.get("momentum", t.momentum, 0, 0.9999);
    o.get("weight_decay", t.weight_decay, 0, 1);
    o.get("grad_clip", t.grad_clip, 0, kInf);
    o.finish();
  }
  r.finish();
}

void read_run(SectionReader r, RunSection& s) {
  r.get("seed", s.seed);
  r.get("device", s.device);
  r.get("threads", s.threads, 0, 4096);
  r.get("out", s.out);
  r.get("checkpoint_every", s.checkpoint_every, 1, kMaxInt);
  r.get("on_nan", s.on_nan, {"stop", "skip_batch"});
  r.get("progress", s.progress);
  r.get("log_every", s.log_every, 1, kMaxInt);
  r.get("cuda_graphs", s.cuda_graphs, {"auto", "on", "off"});
  r.get("plots", s.plots);
  r.get("tensorboard", s.tensorboard);
  r.get("distributed", s.distributed, {"auto", "off", "mpi"});
  r.finish();
}

void read_distributed(SectionReader r, DistributedSection& d) {
  r.get("sync_bn", d.sync_bn);
  r.get("timeout_s", d.timeout_s, 1, 86400);
  r.finish();
}

}  // namespace

RunConfig parse_config(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(name + ": the top level must be a mapping of sections");
  reject_duplicate_keys(root, "", name);
  std::set<std::string> overridden;
  for (const auto& o : overrides) apply_override(root, name, o, overridden);

  RunConfig c;
  c.source = name;
  try {
    SectionReader top(root, "", c.source, &overridden);
    read_data(top.section("data"), c.data);
    read_space(top.section("space"), c.search.net);
    read_search(top.section("search"), c.search);
    read_train(top.section("train"), c.train);
    read_run(top.section("run"), c.run);
    read_distributed(top.section("distributed"), c.distributed);
    top.finish();
  } catch (const YAML::Exception& e) {
    // The readers turn every expected problem into a ConfigError; this keeps the contract (and
    // the exit code 2) for whatever yaml-cpp throws beyond them.
    throw ConfigError(name + ": " + e.what());
  }

  if (c.run.device != "auto") {
    try {
      parse_device(c.run.device);
    } catch (const Error& e) {
      throw ConfigError(name + ": key 'run.device': " + e.what());
    }
  }
  if (c.search.w_lr_min > c.search.w_lr)
    throw ConfigError(name + ": key 'search.weights.lr_min': larger than search.weights.lr");
  c.search.seed = c.run.seed;
  try {
    c.search.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(name + ": " + e.what());
  }
  return c;
}

std::string read_config_text(const std::string& path) {
  // O_NONBLOCK: a FIFO given as CONFIG must not hang the open; it is refused just below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw ConfigError(path + ": cannot open the config file: " + std::strerror(errno));
  struct stat st;
  std::string text;
  try {
    if (::fstat(fd, &st) != 0) throw ConfigError(path + ": cannot stat the config file: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode))
      throw ConfigError(path + ": is a folder, not a config file (to continue a run in it: asap_run --resume " +
                        path + ")");
    if (!S_ISREG(st.st_mode)) throw ConfigError(path + ": not a regular file (a config must be a YAML file)");
    if (st.st_size > kMaxConfigBytes)
      throw ConfigError(path + ": " + std::to_string(st.st_size) + " bytes; a config is at most " +
                        std::to_string(kMaxConfigBytes) + " bytes (1 MiB)");
    text.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::read(fd, &text[done], text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw ConfigError(path + ": cannot read the config file: " + std::strerror(errno));
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    text.resize(done);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return text;
}

RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(read_config_text(path), path, overrides);
}

std::vector<std::string> changed_keys(const RunConfig& a, const RunConfig& b) {
  std::map<std::string, std::string> fa, fb;
  flatten(YAML::Load(to_yaml(a)), "", fa);
  flatten(YAML::Load(to_yaml(b)), "", fb);
  std::vector<std::string> changed;
  for (const auto& [k, v] : fa) {
    auto it = fb.find(k);
    if (it == fb.end() || it->second != v) changed.push_back(k);
  }
  // Keys written only when set (the distributed ones) may exist on one side only.
  for (const auto& kv : fb)
    if (!fa.count(kv.first)) changed.push_back(kv.first);
  std::sort(changed.begin(), changed.end());
  return changed;
}

const std::vector<std::string>& resume_changeable_keys() {
  static const std::vector<std::string> keys{"run.threads", "run.progress", "run.plots"};
  return keys;
}

std::string to_yaml(const RunConfig& c) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "dataset" << YAML::Value << c.data.dataset;
  e << YAML::Key << "root" << YAML::Value << c.data.root;
  e << YAML::Key << "train_portion" << YAML::Value << c.data.train_portion;
  e << YAML::Key << "subset" << YAML::Value << c.data.subset;
  e << YAML::Key << "test_subset" << YAML::Value << c.data.test_subset;
  e << YAML::Key << "batch_size" << YAML::Value << c.data.batch_size;
  e << YAML::Key << "eval_batch_size" << YAML::Value << c.data.eval_batch_size;
  e << YAML::Key << "crop_padding" << YAML::Value << c.data.crop_padding;
  e << YAML::Key << "flip" << YAML::Value << c.data.flip;
  e << YAML::Key << "cutout" << YAML::Value << c.data.cutout;
  e << YAML::Key << "normalize" << YAML::Value << c.data.normalize;
  e << YAML::Key << "prefetch" << YAML::Value << c.data.prefetch;
  e << YAML::EndMap;

  const nas::SearchConfig& s = c.search;
  e << YAML::Key << "space" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "primitives" << YAML::Value << YAML::Flow << s.net.primitives;
  e << YAML::Key << "nodes" << YAML::Value << s.net.nodes;
  e << YAML::EndMap;

  e << YAML::Key << "search" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "epochs" << YAML::Value << s.epochs;
  e << YAML::Key << "stop_when_converged" << YAML::Value << s.stop_when_converged;
  e << YAML::Key << "alpha_step_skips_weight_grads" << YAML::Value << s.alpha_step_skips_weight_grads;
  e << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "C" << YAML::Value << s.net.C;
  e << YAML::Key << "layers" << YAML::Value << s.net.layers;
  e << YAML::Key << "stem_multiplier" << YAML::Value << s.net.stem_multiplier;
  e << YAML::Key << "reduction_cells" << YAML::Value << YAML::Flow << s.net.reduction_cells;
  e << YAML::EndMap;
  e << YAML::Key << "weights" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "lr" << YAML::Value << s.w_lr << YAML::Key << "lr_min" << YAML::Value << s.w_lr_min;
  e << YAML::Key << "momentum" << YAML::Value << s.w_momentum;
  e << YAML::Key << "weight_decay" << YAML::Value << s.w_weight_decay;
  e << YAML::Key << "grad_clip" << YAML::Value << s.grad_clip;
  e << YAML::EndMap;
  e << YAML::Key << "alphas" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "lr" << YAML::Value << s.a_lr << YAML::Key << "beta1" << YAML::Value << s.a_beta1;
  e << YAML::Key << "beta2" << YAML::Value << s.a_beta2 << YAML::Key << "eps" << YAML::Value << s.a_eps;
  e << YAML::Key << "weight_decay" << YAML::Value << s.a_weight_decay;
  e << YAML::Key << "freeze_decided" << YAML::Value << s.net.freeze_decided_alphas;
  e << YAML::EndMap;
  const nas::AnnealConfig& a = s.anneal;
  e << YAML::Key << "annealer" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "temperature_schedule" << YAML::Value << a.temperature_schedule;
  e << YAML::Key << "T0" << YAML::Value << a.T0 << YAML::Key << "beta" << YAML::Value << a.beta;
  e << YAML::Key << "temperature_unit" << YAML::Value << a.temperature_unit;
  e << YAML::Key << "min_temperature" << YAML::Value << a.min_temperature;
  e << YAML::Key << "threshold_policy" << YAML::Value << a.threshold_policy;
  e << YAML::Key << "threshold_c" << YAML::Value << a.threshold_c;
  e << YAML::Key << "theta0" << YAML::Value << a.theta0 << YAML::Key << "gamma" << YAML::Value << a.gamma;
  e << YAML::Key << "threshold_unit" << YAML::Value << a.threshold_unit;
  e << YAML::Key << "warmup_epochs" << YAML::Value << a.warmup_epochs;
  e << YAML::Key << "warmup_temperature" << YAML::Value << a.warmup_temperature;
  e << YAML::Key << "prune_every" << YAML::Value << a.prune_every;
  e << YAML::EndMap;
  e << YAML::EndMap;

  const TrainConfig& t = c.train;
  e << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "genotype" << YAML::Value << t.genotype;
  e << YAML::Key << "epochs" << YAML::Value << t.epochs;
  e << YAML::Key << "batch_size" << YAML::Value << t.batch_size;
  e << YAML::Key << "eval_every" << YAML::Value << t.eval_every;
  e << YAML::Key << "subset" << YAML::Value << t.subset;
  e << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "C" << YAML::Value << t.C << YAML::Key << "layers" << YAML::Value << t.layers;
  e << YAML::Key << "stem_multiplier" << YAML::Value << t.stem_multiplier;
  e << YAML::Key << "auxiliary" << YAML::Value << t.auxiliary;
  e << YAML::Key << "auxiliary_weight" << YAML::Value << t.auxiliary_weight;
  e << YAML::Key << "drop_path" << YAML::Value << t.drop_path;
  e << YAML::Key << "reduction_cells" << YAML::Value << YAML::Flow << t.reduction_cells;
  e << YAML::EndMap;
  e << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "lr" << YAML::Value << t.lr << YAML::Key << "lr_min" << YAML::Value << t.lr_min;
  e << YAML::Key << "lr_unit" << YAML::Value << t.lr_unit;
  e << YAML::Key << "momentum" << YAML::Value << t.momentum;
  e << YAML::Key << "weight_decay" << YAML::Value << t.weight_decay;
  e << YAML::Key << "grad_clip" << YAML::Value << t.grad_clip;
  e << YAML::EndMap;
  e << YAML::EndMap;

  e << YAML::Key << "run" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "seed" << YAML::Value << c.run.seed;
  e << YAML::Key << "device" << YAML::Value << c.run.device;
  e << YAML::Key << "threads" << YAML::Value << c.run.threads;
  e << YAML::Key << "out" << YAML::Value << c.run.out;
  e << YAML::Key << "checkpoint_every" << YAML::Value << c.run.checkpoint_every;
  e << YAML::Key << "on_nan" << YAML::Value << c.run.on_nan;
  e << YAML::Key << "progress" << YAML::Value << c.run.progress;
  e << YAML::Key << "log_every" << YAML::Value << c.run.log_every;
  e << YAML::Key << "cuda_graphs" << YAML::Value << c.run.cuda_graphs;
  e << YAML::Key << "plots" << YAML::Value << c.run.plots;
  e << YAML::Key << "tensorboard" << YAML::Value << c.run.tensorboard;
  // The data-parallel keys appear only when set away from their defaults, so a single-process
  // run writes the config.yaml it wrote before distribution existed.
  const DistributedSection dd;
  if (c.run.distributed != "auto") e << YAML::Key << "distributed" << YAML::Value << c.run.distributed;
  e << YAML::EndMap;
  if (c.distributed.sync_bn != dd.sync_bn || c.distributed.timeout_s != dd.timeout_s) {
    e << YAML::Key << "distributed" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "sync_bn" << YAML::Value << c.distributed.sync_bn;
    e << YAML::Key << "timeout_s" << YAML::Value << c.distributed.timeout_s;
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace asap::run
