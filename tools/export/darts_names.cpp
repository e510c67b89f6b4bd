#include "tools/export/darts_names.h"

#include <algorithm>
#include <map>

#include "engine/error.h"

namespace asap::exporting {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Replaces the first dotted component(s) of `rest` through a table {engine prefix -> DARTS prefix};
// BN tensors (weight, bias, running_mean, running_var) follow their module's prefix.
std::string map_rest(const std::string& rest, const std::map<std::string, std::string>& table,
                     const std::string& where) {
  for (const auto& [from, to] : table)
    if (starts_with(rest, from)) return to + rest.substr(from.size());
  throw Error("darts names: no DARTS name for '" + rest + "' in " + where);
}

// ReLUConvBN = Sequential(ReLU, Conv2d, BatchNorm2d) under ".op".
const std::map<std::string, std::string> kReluConvBn = {{"conv.", "op.1."}, {"bn.", "op.2."}};
// FactorizedReduce keeps its attribute names (conv_1, conv_2, bn) in DARTS.
const std::map<std::string, std::string> kFactorizedReduce = {
    {"conv_1.", "conv_1."}, {"conv_2.", "conv_2."}, {"bn.", "bn."}};
// SepConv = Sequential(ReLU, dw, pw, BN, ReLU, dw, pw, BN); DilConv = Sequential(ReLU, dw, pw, BN).
const std::map<std::string, std::string> kSepConv = {{"dw1.", "op.1."}, {"pw1.", "op.2."}, {"bn1.", "op.3."},
                                                     {"dw2.", "op.5."}, {"pw2.", "op.6."}, {"bn2.", "op.7."}};
const std::map<std::string, std::string> kDilConv = {{"dw.", "op.1."}, {"pw.", "op.2."}, {"bn.", "op.3."}};
// conv_7x1_1x7 = Sequential(ReLU, Conv2d (1x7), Conv2d (7x1), BatchNorm2d).
const std::map<std::string, std::string> kConv7x1 = {{"conv1.", "op.1."}, {"conv2.", "op.2."}, {"bn.", "op.3."}};
// AuxiliaryHeadCIFAR.features = Sequential(ReLU, AvgPool, Conv, BN, ReLU, Conv, BN, ReLU).
const std::map<std::string, std::string> kAux = {{"conv1.", "features.2."}, {"bn1.", "features.3."},
                                                  {"conv2.", "features.5."}, {"bn2.", "features.6."},
                                                  {"classifier.", "classifier."}};

std::string cell_name(const std::string& rest, int cell, const nas::Genotype& g,
                      const std::vector<int>& reduction_cells) {
  auto is_red = [&](int k) { return std::count(reduction_cells.begin(), reduction_cells.end(), k) > 0; };
  const std::string where = "cell " + std::to_string(cell);
  if (starts_with(rest, "preprocess0."))
    return "preprocess0." + map_rest(rest.substr(12), is_red(cell - 1) ? kFactorizedReduce : kReluConvBn, where);
  if (starts_with(rest, "preprocess1.")) return "preprocess1." + map_rest(rest.substr(12), kReluConvBn, where);
  if (starts_with(rest, "ops.")) {
    const size_t dot = rest.find('.', 4);
    ASAP_CHECK(dot != std::string::npos, "darts names: bad op name '", rest, "'");
    const int i = std::stoi(rest.substr(4, dot - 4));
    const auto& genes = g.genes(is_red(cell) ? nas::CellType::Reduce : nas::CellType::Normal);
    ASAP_CHECK(i >= 0 && i < static_cast<int>(genes.size()), "darts names: op ", i, " not in the genotype");
    const std::string& op = genes[i].first;
    const std::string tail = rest.substr(dot + 1);
    const std::string prefix = "_ops." + std::to_string(i) + ".";
    if (starts_with(op, "sep_conv_")) return prefix + map_rest(tail, kSepConv, where + " " + op);
    if (starts_with(op, "dil_conv_")) return prefix + map_rest(tail, kDilConv, where + " " + op);
    if (op == "conv_7x1_1x7") return prefix + map_rest(tail, kConv7x1, where + " " + op);
    if (op == "skip_connect") return prefix + map_rest(tail, kFactorizedReduce, where + " " + op);
    throw Error("darts names: primitive '" + op + "' has no tensors in DARTS, yet the engine has '" + rest + "'");
  }
  throw Error("darts names: unknown cell tensor '" + rest + "' in " + where);
}

}  // namespace

std::string darts_name(const std::string& n, const nas::Genotype& g, const std::vector<int>& reduction_cells) {
  if (n == "stem.conv.weight") return "stem.0.weight";
  if (starts_with(n, "stem.bn.")) return "stem.1." + n.substr(8);
  if (starts_with(n, "classifier.")) return n;
  if (starts_with(n, "auxiliary_head.")) return "auxiliary_head." + map_rest(n.substr(15), kAux, "auxiliary_head");
  if (starts_with(n, "cells.")) {
    const size_t dot = n.find('.', 6);
    ASAP_CHECK(dot != std::string::npos, "darts names: bad cell name '", n, "'");
    const int k = std::stoi(n.substr(6, dot - 6));
    return n.substr(0, dot + 1) + cell_name(n.substr(dot + 1), k, g, reduction_cells);
  }
  throw Error("darts names: unknown tensor '" + n + "'");
}

}  // namespace asap::exporting
