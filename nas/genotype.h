// Genotypes: the derived discrete cell (two (op, input) pairs per node), in the DARTS reference
// text format (Python repr of the namedtuple), JSON, and Graphviz DOT/PNG.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/search_network.h"

namespace asap::nas {

using Gene = std::pair<std::string, int>;  // (op name, input index: 0/1 cell inputs, 2.. nodes)

struct Genotype {
  std::vector<Gene> normal;
  std::vector<int> normal_concat = {2, 3, 4, 5};
  std::vector<Gene> reduce;
  std::vector<int> reduce_concat = {2, 3, 4, 5};
  bool operator==(const Genotype& o) const {
    return normal == o.normal && normal_concat == o.normal_concat && reduce == o.reduce &&
           reduce_concat == o.reduce_concat;
  }
  bool operator!=(const Genotype& o) const { return !(*this == o); }
  const std::vector<Gene>& genes(CellType t) const { return t == CellType::Normal ? normal : reduce; }
  const std::vector<int>& concat(CellType t) const {
    return t == CellType::Normal ? normal_concat : reduce_concat;
  }
  int nodes() const { return static_cast<int>(normal.size() / 2); }
};

// The published DARTS (second order) cell, genotypes.py DARTS_V2.
const Genotype& darts_v2();

// One cell type's derivation from host matrices [E][O] (phi over alive ops; raw alphas; alive).
// Per node, each incoming edge offers its alive non-`none` op with the largest Phi; the two
// edges with the largest such Phi are kept (ties: larger alpha, then lower edge index). Edges
// with no alive non-`none` op are used only when a node has fewer than two candidates, with
// their best non-`none` op by alpha. Genes are listed by rank, as DARTS does.
std::vector<Gene> derive_cell(const std::vector<std::vector<double>>& phi,
                              const std::vector<std::vector<double>>& alpha,
                              const std::vector<std::vector<uint8_t>>& alive,
                              const std::vector<std::string>& primitives, int nodes);
Genotype derive_genotype(const SearchNetwork& net);

// Checks ops are known primitives (not `none`), 2 genes per node, inputs < 2 + node, concat in range.
void validate_genotype(const Genotype& g);

std::string to_text(const Genotype& g);
// Accepts the DARTS repr: keyword order free, ' or " quotes, lists or tuples, range(a, b) for
// concat, optional "Genotype" prefix. Throws asap::Error naming the position (1-based column).
Genotype parse_genotype(const std::string& text);

nlohmann::json to_json(const Genotype& g);
Genotype genotype_from_json(const nlohmann::json& j);

std::string to_dot(const Genotype& g, CellType t);
// Writes <path_stem>.dot and, when the `dot` binary is on PATH, <path_stem>.png (Graphviz started
// with an argument vector, no shell). Returns true when the PNG was written; otherwise *warning
// (when given) says why: dot missing, or its exit status and last output line.
bool write_cell_pictures(const Genotype& g, CellType t, const std::string& path_stem,
                         std::string* warning = nullptr);

}  // namespace asap::nas
