#include "tools/export/model_file.h"

#include <set>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "tools/export/darts_names.h"

namespace asap::exporting {
namespace {

// Parameters then buffers, each under its DARTS name.
NamedTensorList darts_tensors(const nas::EvalNetwork& net, const ModelInfo& info) {
  NamedTensorList out;
  for (const auto& list : {net.named_parameters(), net.named_buffers()})
    for (const auto& [name, t] : list)
      out.emplace_back(darts_name(name, info.genotype, info.net.reduction_cells), t);
  return out;
}

}  // namespace

nas::EvalNetworkConfig resolved(nas::EvalNetworkConfig c) {
  if (c.reduction_cells.empty()) c.reduction_cells = {c.layers / 3, 2 * c.layers / 3};
  return c;
}

void write_model_file(const std::string& path, const nas::EvalNetwork& net, const ModelInfo& in) {
  ModelInfo info = in;
  info.net = resolved(in.net);
  const nas::EvalNetworkConfig& c = info.net;
  nlohmann::json network = {{"C", c.C},
                            {"layers", c.layers},
                            {"stem_multiplier", c.stem_multiplier},
                            {"in_channels", c.in_channels},
                            {"num_classes", c.num_classes},
                            {"auxiliary", c.auxiliary},
                            {"input_size", c.input_size},
                            {"reduction_cells", c.reduction_cells}};
  nlohmann::json norm = {{"mean", info.norm.mean}, {"std", info.norm.stddev}};
  std::map<std::string, std::string> meta = {{"format", kModelFormat},
                                             {"genotype", nas::to_text(info.genotype)},
                                             {"network", network.dump()},
                                             {"normalization", norm.dump()},
                                             {"dataset", info.dataset}};
  save_safetensors(path, darts_tensors(net, info), meta);
}

LoadedModel load_model_file(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto meta = [&](const std::string& k) -> const std::string& {
    auto it = f.metadata.find(k);
    if (it == f.metadata.end()) throw IoError(path + ": not an asap-engine model file (no metadata '" + k + "')");
    return it->second;
  };
  if (meta("format") != kModelFormat)
    throw IoError(path + ": model format '" + meta("format") + "', expected '" + kModelFormat + "'");
  LoadedModel m;
  try {
    m.info.genotype = nas::parse_genotype(meta("genotype"));
    const nlohmann::json n = nlohmann::json::parse(meta("network"));
    nas::EvalNetworkConfig& c = m.info.net;
    c.C = n.at("C");
    c.layers = n.at("layers");
    c.stem_multiplier = n.at("stem_multiplier");
    c.in_channels = n.at("in_channels");
    c.num_classes = n.at("num_classes");
    c.auxiliary = n.at("auxiliary");
    c.input_size = n.at("input_size");
    c.reduction_cells = n.at("reduction_cells").get<std::vector<int>>();
    const nlohmann::json norm = nlohmann::json::parse(meta("normalization"));
    m.info.norm.mean = norm.at("mean").get<std::vector<float>>();
    m.info.norm.stddev = norm.at("std").get<std::vector<float>>();
    m.info.dataset = meta("dataset");
  } catch (const IoError&) {
    throw;
  } catch (const std::exception& e) {
    throw IoError(path + ": bad model metadata: " + e.what());
  }
  Generator gen(0);  // the initial values are all overwritten below
  m.net = std::make_unique<nas::EvalNetwork>(m.info.genotype, m.info.net, gen);
  std::set<std::string> used;
  for (auto& [name, t] : darts_tensors(*m.net, m.info)) {
    if (!f.has(name)) throw IoError(path + ": missing tensor '" + name + "'");
    const Tensor& src = f.get(name);
    if (src.shape() != t.shape() || src.dtype() != t.dtype())
      throw IoError(path + ": tensor '" + name + "' has the wrong shape or dtype");
    Tensor dst = t;
    dst.copy_(src);
    used.insert(name);
  }
  for (const auto& [name, t] : f.tensors)
    if (!used.count(name)) throw IoError(path + ": tensor '" + name + "' does not belong to the network");
  m.net->eval();
  return m;
}

}  // namespace asap::exporting
