// Genotypes: the derived discrete cell (two (op, input) pairs per node), in the DARTS reference
// text format (Python repr of the namedtuple), JSON, and Graphviz DOT/PNG.
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/search_network.h"

namespace asap::nas {

struct PruneEvent;  // nas/annealer.h

using Gene = std::pair<std::string, int>;  // (op name, input index: 0/1 cell inputs, 2.. nodes)

struct Genotype {
  // How many genes the derivation took from a fallback (an edge with no alive non-`none` op);
  // -1 when unknown (parsed, published or random genotypes). Not part of the cell: not compared.
  int fallback_genes = -1;
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

// Published cells by name (docs/method.md, "Named and random genotypes"): DARTS_V1, DARTS_V2
// (alias DARTS), ASAP, NASNet, AmoebaNet as in quark0/darts cnn/genotypes.py and UniNAS; and
// "random:SEED", a cell drawn uniformly from the DARTS space (per node two distinct inputs, each
// op uniform over the seven non-`none` primitives), a pure function of SEED (decimal, 0..2^64-1).
// Returns nullopt for any other name; throws asap::Error for a malformed "random:" seed.
std::optional<Genotype> named_genotype(const std::string& name);
std::vector<std::string> genotype_names();  // the fixed names above, and "random:SEED"
// A name as above, or DARTS Genotype(...) text (parse_genotype); nullopt when `s` is neither.
// Throws asap::Error for malformed text or a malformed "random:" seed.
std::optional<Genotype> genotype_from_name_or_text(const std::string& s);
Genotype random_genotype(uint64_t seed, int nodes = 4);

// What the prune log says about one edge of one cell type (from edge_decisions()).
struct EdgeDecision {
  // Converged edges: the strength of the decision when the last rival was pruned, the smallest
  // alpha(winner) - alpha(rival) over the rivals pruned in that last prune (softmax is
  // shift-invariant per edge, so only alpha differences compare across edges; a decision taken at
  // a high temperature needed a larger gap). NaN: no record (old log, or never had a rival).
  double strength = std::nan("");
  int64_t step = -1;  // global step of that last prune
  // Dead edges (only `none` left): the non-`none` op pruned last, its step and its Phi then.
  int last_op = -1;
  int64_t last_step = -1;
  double last_phi = 0;
};
// Per edge of type t, from the prune log (events of other types are ignored).
std::vector<EdgeDecision> edge_decisions(const std::vector<PruneEvent>& log, CellType t,
                                         const std::vector<std::string>& primitives, int edges);

// One cell type's derivation from host matrices [E][O] (phi over alive ops; raw alphas; alive).
// Per node, each incoming edge offers its alive non-`none` op with the largest Phi; the two
// edges with the largest such Phi are kept. Ties (every converged edge has Phi = 1): the larger
// decision strength from `decisions` (edges with a record first), then the larger alpha, then the
// lower input. Edges with no alive non-`none` op are used only when a node has fewer than two
// candidates (a fallback, counted in *fallback): they offer the non-`none` op pruned last (by
// step, then Phi at its prune) when `decisions` holds a record, else their largest-alpha op.
// Genes are listed by rank, as DARTS does. `decisions` may be null (the raw-alpha rule).
std::vector<Gene> derive_cell(const std::vector<std::vector<double>>& phi,
                              const std::vector<std::vector<double>>& alpha,
                              const std::vector<std::vector<uint8_t>>& alive,
                              const std::vector<std::string>& primitives, int nodes,
                              const std::vector<EdgeDecision>* decisions = nullptr, int* fallback = nullptr);
// With the prune log (Searcher::genotype passes the annealer's): ranks by decision strength and
// sets fallback_genes. Without it: the raw-alpha rule, fallback_genes still counted.
Genotype derive_genotype(const SearchNetwork& net, const std::vector<PruneEvent>* log = nullptr);

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
