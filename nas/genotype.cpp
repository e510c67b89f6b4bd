#include "nas/genotype.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/error.h"
#include "engine/io/process.h"
#include "nas/annealer.h"
#include "nas/primitives.h"

namespace asap::nas {

const Genotype& darts_v2() {
  static const Genotype g = [] {
    Genotype d;
    d.normal = {{"sep_conv_3x3", 0}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"sep_conv_3x3", 1},
                {"sep_conv_3x3", 1}, {"skip_connect", 0}, {"skip_connect", 0}, {"dil_conv_3x3", 2}};
    d.reduce = {{"max_pool_3x3", 0}, {"max_pool_3x3", 1}, {"skip_connect", 2}, {"max_pool_3x3", 1},
                {"max_pool_3x3", 0}, {"skip_connect", 2}, {"skip_connect", 2}, {"max_pool_3x3", 1}};
    return d;
  }();
  return g;
}

namespace {

Genotype make(std::vector<Gene> normal, std::vector<int> nc, std::vector<Gene> reduce, std::vector<int> rc) {
  Genotype g;
  g.normal = std::move(normal);
  g.normal_concat = std::move(nc);
  g.reduce = std::move(reduce);
  g.reduce_concat = std::move(rc);
  return g;
}

// splitmix64: a fixed, documented generator, so random:SEED is the same cell on every build.
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
// Uniform in [0, n) without modulo bias (rejection).
int uniform_below(uint64_t& s, int n) {
  const uint64_t lim = UINT64_MAX - UINT64_MAX % uint64_t(n);
  for (;;) {
    const uint64_t v = splitmix64(s);
    if (v < lim) return static_cast<int>(v % uint64_t(n));
  }
}

}  // namespace

Genotype random_genotype(uint64_t seed, int nodes) {
  ASAP_CHECK(nodes >= 1, "random genotype: nodes must be >= 1");
  std::vector<std::string> ops;
  for (const auto& p : darts_primitives())
    if (p != "none") ops.push_back(p);
  uint64_t s = seed;
  Genotype g;
  for (int t = 0; t < 2; ++t) {
    std::vector<Gene>& genes = t == 0 ? g.normal : g.reduce;
    for (int i = 0; i < nodes; ++i) {
      const int a = uniform_below(s, 2 + i);
      int b = uniform_below(s, 1 + i);  // distinct from a: draw from the others
      if (b >= a) ++b;
      genes.emplace_back(ops[uniform_below(s, int(ops.size()))], a);
      genes.emplace_back(ops[uniform_below(s, int(ops.size()))], b);
    }
  }
  g.normal_concat.clear();
  for (int i = 0; i < nodes; ++i) g.normal_concat.push_back(2 + i);
  g.reduce_concat = g.normal_concat;
  return g;
}

std::vector<std::string> genotype_names() {
  return {"DARTS_V1", "DARTS_V2", "DARTS", "ASAP", "NASNet", "AmoebaNet", "random:SEED"};
}

std::optional<Genotype> genotype_from_name_or_text(const std::string& s) {
  if (auto named = named_genotype(s)) return named;
  if (s.find("Genotype(") != std::string::npos) return parse_genotype(s);
  return std::nullopt;
}

std::optional<Genotype> named_genotype(const std::string& name) {
  if (name == "DARTS_V2" || name == "DARTS") return darts_v2();
  if (name == "DARTS_V1")
    return make({{"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"skip_connect", 0}, {"sep_conv_3x3", 1},
                 {"skip_connect", 0}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"skip_connect", 2}},
                {2, 3, 4, 5},
                {{"max_pool_3x3", 0}, {"max_pool_3x3", 1}, {"skip_connect", 2}, {"max_pool_3x3", 0},
                 {"max_pool_3x3", 0}, {"skip_connect", 2}, {"skip_connect", 2}, {"avg_pool_3x3", 0}},
                {2, 3, 4, 5});
  if (name == "ASAP")  // Noy et al. 2020, as collected in UniNAS's table of published cells
    return make({{"sep_conv_3x3", 0}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 1}, {"skip_connect", 0},
                 {"skip_connect", 0}, {"skip_connect", 2}, {"skip_connect", 1}, {"skip_connect", 2}},
                {2, 3, 4, 5},
                {{"avg_pool_3x3", 0}, {"sep_conv_3x3", 1}, {"avg_pool_3x3", 0}, {"dil_conv_5x5", 2},
                 {"max_pool_3x3", 1}, {"skip_connect", 2}, {"max_pool_3x3", 0}, {"skip_connect", 2}},
                {2, 3, 4, 5});
  if (name == "NASNet")  // five nodes; concat lists as in genotypes.py
    return make({{"sep_conv_5x5", 1}, {"sep_conv_3x3", 0}, {"sep_conv_5x5", 0}, {"sep_conv_3x3", 0},
                 {"avg_pool_3x3", 1}, {"skip_connect", 0}, {"avg_pool_3x3", 0}, {"avg_pool_3x3", 0},
                 {"sep_conv_3x3", 1}, {"skip_connect", 1}},
                {2, 3, 4, 5, 6},
                {{"sep_conv_5x5", 1}, {"sep_conv_7x7", 0}, {"max_pool_3x3", 1}, {"sep_conv_7x7", 0},
                 {"avg_pool_3x3", 1}, {"sep_conv_5x5", 0}, {"skip_connect", 3}, {"avg_pool_3x3", 2},
                 {"sep_conv_3x3", 2}, {"max_pool_3x3", 1}},
                {4, 5, 6});
  if (name == "AmoebaNet")
    return make({{"avg_pool_3x3", 0}, {"max_pool_3x3", 1}, {"sep_conv_3x3", 0}, {"sep_conv_5x5", 2},
                 {"sep_conv_3x3", 0}, {"avg_pool_3x3", 3}, {"sep_conv_3x3", 1}, {"skip_connect", 1},
                 {"skip_connect", 0}, {"avg_pool_3x3", 1}},
                {4, 5, 6},
                {{"avg_pool_3x3", 0}, {"sep_conv_3x3", 1}, {"max_pool_3x3", 0}, {"sep_conv_7x7", 2},
                 {"sep_conv_7x7", 0}, {"avg_pool_3x3", 1}, {"max_pool_3x3", 0}, {"max_pool_3x3", 1},
                 {"conv_7x1_1x7", 0}, {"sep_conv_3x3", 5}},
                {3, 4, 6});
  if (name.rfind("random:", 0) == 0) {
    const std::string v = name.substr(7);
    ASAP_CHECK(!v.empty() && v.size() <= 20 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }),
               "genotype '", name, "': SEED must be a decimal integer (random:0, random:17, ...)");
    errno = 0;
    const unsigned long long seed = std::strtoull(v.c_str(), nullptr, 10);
    ASAP_CHECK(errno != ERANGE, "genotype '", name, "': SEED is larger than 2^64 - 1");
    return random_genotype(seed);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------- derivation

std::vector<EdgeDecision> edge_decisions(const std::vector<PruneEvent>& log, CellType t,
                                         const std::vector<std::string>& primitives, int edges) {
  std::vector<EdgeDecision> d(static_cast<size_t>(std::max(0, edges)));
  auto index_of = [&](const std::string& op) {
    auto it = std::find(primitives.begin(), primitives.end(), op);
    return it == primitives.end() ? -1 : static_cast<int>(it - primitives.begin());
  };
  for (const PruneEvent& e : log) {
    if (e.cell_type != t || e.edge < 0 || e.edge >= edges) continue;
    EdgeDecision& r = d[e.edge];
    if (e.decided && !e.winner.empty() && std::isfinite(e.alpha_gap)) {
      if (e.step != r.step) {  // a later decision replaces an earlier record
        r.step = e.step;
        r.strength = e.alpha_gap;
      } else {
        r.strength = std::min(r.strength, e.alpha_gap);
      }
    }
    const int o = index_of(e.op);
    if (o >= 0 && e.op != "none" &&
        (e.step > r.last_step || (e.step == r.last_step && e.phi > r.last_phi))) {
      r.last_op = o;
      r.last_step = e.step;
      r.last_phi = e.phi;
    }
  }
  return d;
}

std::vector<Gene> derive_cell(const std::vector<std::vector<double>>& phi,
                              const std::vector<std::vector<double>>& alpha,
                              const std::vector<std::vector<uint8_t>>& alive,
                              const std::vector<std::string>& primitives, int nodes,
                              const std::vector<EdgeDecision>* decisions, int* fallback) {
  const int O = static_cast<int>(primitives.size());
  ASAP_CHECK(static_cast<int>(phi.size()) == num_edges(nodes), "derive: ", phi.size(),
             " edges for ", nodes, " nodes");
  ASAP_CHECK(!decisions || static_cast<int>(decisions->size()) == num_edges(nodes), "derive: ",
             decisions->size(), " decision records for ", num_edges(nodes), " edges");
  struct Cand {
    int input, op;
    bool alive;
    double phi, alpha;
    bool has_record;
    double strength;  // alive: decision strength; dead: step of the last non-none prune
    double tie;       // dead: Phi of that op at its prune
  };
  std::vector<Gene> genes;
  for (int i = 0; i < nodes; ++i) {
    std::vector<Cand> cands;
    for (int j = 0; j < 2 + i; ++j) {
      int e = edge_index(i, j);
      int best = -1, best_pruned = -1;
      for (int o = 0; o < O; ++o) {
        if (primitives[o] == "none") continue;
        if (alive[e][o]) {
          if (best < 0 || phi[e][o] > phi[e][best]) best = o;
        } else if (best_pruned < 0 || alpha[e][o] > alpha[e][best_pruned]) {
          best_pruned = o;
        }
      }
      const EdgeDecision* rec = decisions ? &(*decisions)[e] : nullptr;
      if (best >= 0) {
        const bool has = rec && std::isfinite(rec->strength);
        cands.push_back({j, best, true, phi[e][best], alpha[e][best], has, has ? rec->strength : 0.0, 0.0});
      } else if (rec && rec->last_op >= 0 && primitives[rec->last_op] != "none") {
        cands.push_back({j, rec->last_op, false, 0.0, alpha[e][rec->last_op], true, double(rec->last_step),
                         rec->last_phi});
      } else if (best_pruned >= 0) {
        cands.push_back({j, best_pruned, false, 0.0, alpha[e][best_pruned], false, 0.0, 0.0});
      }
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
      if (a.alive != b.alive) return a.alive;
      if (a.phi != b.phi) return a.phi > b.phi;
      if (a.has_record != b.has_record) return a.has_record;
      if (a.has_record) {
        if (a.strength != b.strength) return a.strength > b.strength;
        if (a.tie != b.tie) return a.tie > b.tie;
      }
      if (a.alpha != b.alpha) return a.alpha > b.alpha;
      return a.input < b.input;
    });
    ASAP_CHECK(cands.size() >= 2, "derive: node ", i, " has fewer than two non-none candidates");
    for (int k = 0; k < 2; ++k) {
      genes.emplace_back(primitives[cands[k].op], cands[k].input);
      if (fallback && !cands[k].alive) ++*fallback;
    }
  }
  return genes;
}

Genotype derive_genotype(const SearchNetwork& net, const std::vector<PruneEvent>* log) {
  Genotype g;
  g.fallback_genes = 0;
  const int nodes = net.config().nodes;
  for (int t = 0; t < 2; ++t) {
    CellType ct = static_cast<CellType>(t);
    std::vector<EdgeDecision> dec;
    if (log) dec = edge_decisions(*log, ct, net.primitives(), net.num_edges());
    auto genes = derive_cell(net.phi(ct), net.alpha_host(ct), net.alive_mask(ct), net.primitives(), nodes,
                             log ? &dec : nullptr, &g.fallback_genes);
    (t == 0 ? g.normal : g.reduce) = genes;
  }
  g.normal_concat.clear();
  for (int i = 0; i < nodes; ++i) g.normal_concat.push_back(2 + i);
  g.reduce_concat = g.normal_concat;
  return g;
}

void validate_genotype(const Genotype& g) {
  for (int t = 0; t < 2; ++t) {
    CellType ct = static_cast<CellType>(t);
    const auto& genes = g.genes(ct);
    const char* name = cell_type_name(ct);
    ASAP_CHECK(!genes.empty() && genes.size() % 2 == 0, "genotype ", name, ": ", genes.size(),
               " genes; need two per node");
    int nodes = static_cast<int>(genes.size() / 2);
    ASAP_CHECK(g.genes(CellType::Normal).size() == g.genes(CellType::Reduce).size(),
               "genotype: normal and reduce cells have different node counts");
    for (size_t k = 0; k < genes.size(); ++k) {
      int node = static_cast<int>(k / 2);
      ASAP_CHECK(is_known_primitive(genes[k].first) && genes[k].first != "none", "genotype ", name,
                 " gene ", k, ": op '", genes[k].first, "' is not a usable primitive");
      ASAP_CHECK(genes[k].second >= 0 && genes[k].second < 2 + node, "genotype ", name, " gene ", k,
                 ": input ", genes[k].second, " out of range for node ", node);
    }
    for (int c : g.concat(ct))
      ASAP_CHECK(c >= 0 && c < 2 + nodes, "genotype ", name, "_concat: ", c, " out of range");
    ASAP_CHECK(!g.concat(ct).empty(), "genotype ", name, "_concat is empty");
  }
}

// ---------------------------------------------------------------------------- text

static std::string genes_text(const std::vector<Gene>& genes) {
  std::string s = "[";
  for (size_t i = 0; i < genes.size(); ++i)
    s += (i ? ", " : "") + std::string("('") + genes[i].first + "', " +
         std::to_string(genes[i].second) + ")";
  return s + "]";
}

static std::string ints_text(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string to_text(const Genotype& g) {
  return "Genotype(normal=" + genes_text(g.normal) + ", normal_concat=" + ints_text(g.normal_concat) +
         ", reduce=" + genes_text(g.reduce) + ", reduce_concat=" + ints_text(g.reduce_concat) + ")";
}

namespace {

// Recursive-descent parser over the Python repr; every error names the 1-based column.
class Parser {
  // Inputs and concat entries index cell nodes: far below this in any real genotype.
  static constexpr long long kMaxIndex = 1 << 20;

 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Genotype parse() {
    Genotype g;
    bool seen[4] = {false, false, false, false};
    skip_ws();
    if (peek_ident()) {
      size_t b = pos_;
      std::string name = ident();
      if (name != "Genotype") fail_at(b, "expected 'Genotype(', found '" + name + "'");
      skip_ws();
    }
    expect('(');
    for (;;) {
      skip_ws();
      if (try_char(')')) break;
      size_t key_pos = pos_;
      std::string key = ident();
      skip_ws();
      expect('=');
      skip_ws();
      int k = key == "normal" ? 0 : key == "normal_concat" ? 1 : key == "reduce" ? 2
              : key == "reduce_concat" ? 3 : -1;
      if (k < 0) fail_at(key_pos, "unknown field '" + key + "' (normal, normal_concat, reduce, reduce_concat)");
      if (seen[k]) fail_at(key_pos, "field '" + key + "' given twice");
      seen[k] = true;
      if (k == 0) g.normal = genes();
      if (k == 1) g.normal_concat = int_list();
      if (k == 2) g.reduce = genes();
      if (k == 3) g.reduce_concat = int_list();
      skip_ws();
      if (try_char(',')) continue;
      skip_ws();
      expect(')');
      break;
    }
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the closing ')'");
    const char* names[4] = {"normal", "normal_concat", "reduce", "reduce_concat"};
    for (int k = 0; k < 4; ++k)
      if (!seen[k]) fail(std::string("missing field '") + names[k] + "'");
    return g;
  }

 private:
  [[noreturn]] void fail_at(size_t pos, const std::string& msg) const {
    std::string ctx = s_.substr(pos, 20);
    throw Error("genotype text, column " + std::to_string(pos + 1) + ": " + msg + " (near \"" + ctx + "\")");
  }
  [[noreturn]] void fail(const std::string& msg) const { fail_at(pos_, msg); }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool try_char(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!try_char(c)) fail(std::string("expected '") + c + "'");
  }
  bool peek_ident() const {
    return pos_ < s_.size() && (std::isalpha(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_');
  }
  std::string ident() {
    if (!peek_ident()) fail("expected a name");
    size_t b = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    return s_.substr(b, pos_ - b);
  }
  int integer() {
    skip_ws();
    size_t b = pos_;
    if (pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) ++pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ == b || (pos_ == b + 1 && !std::isdigit(static_cast<unsigned char>(s_[b])))) fail_at(b, "expected an integer");
    // Not std::stoi: its std::out_of_range would escape as a non-asap error.
    errno = 0;
    const long long v = std::strtoll(s_.c_str() + b, nullptr, 10);
    if (errno == ERANGE || v < -kMaxIndex || v > kMaxIndex)
      fail_at(b, "integer " + s_.substr(b, pos_ - b) + " is out of range");
    return static_cast<int>(v);
  }
  std::string quoted() {
    skip_ws();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) fail("expected a quoted op name");
    char q = s_[pos_++];
    size_t b = pos_;
    while (pos_ < s_.size() && s_[pos_] != q) ++pos_;
    if (pos_ >= s_.size()) fail_at(b - 1, "unterminated string");
    std::string v = s_.substr(b, pos_ - b);
    ++pos_;
    return v;
  }
  // '[' or '(' ... matching close; calls item() per element; trailing comma allowed.
  template <typename F>
  void sequence(F item) {
    skip_ws();
    char close;
    if (try_char('[')) close = ']';
    else if (try_char('(')) close = ')';
    else fail("expected '[' or '('");
    for (;;) {
      skip_ws();
      if (try_char(close)) return;
      item();
      skip_ws();
      if (try_char(',')) continue;
      skip_ws();
      if (!try_char(close)) fail(std::string("expected ',' or '") + close + "'");
      return;
    }
  }
  std::vector<Gene> genes() {
    std::vector<Gene> out;
    sequence([&] {
      skip_ws();
      size_t b = pos_;
      std::string op;
      int input = 0;
      int n = 0;
      sequence([&] {
        if (n == 0) op = quoted();
        else if (n == 1) input = integer();
        else fail("a gene has two entries: ('op', input)");
        ++n;
      });
      if (n != 2) fail_at(b, "a gene has two entries: ('op', input)");
      if (!is_known_primitive(op)) fail_at(b, "unknown op '" + op + "'");
      out.emplace_back(op, input);
    });
    return out;
  }
  std::vector<int> int_list() {
    skip_ws();
    if (peek_ident()) {
      size_t b = pos_;
      if (ident() != "range") fail_at(b, "expected a list or range(a, b)");
      skip_ws();
      expect('(');
      int a = integer();
      skip_ws();
      expect(',');
      int z = integer();
      skip_ws();
      expect(')');
      // Concat lists index nodes; a huge range would only exhaust memory before validation.
      if (static_cast<long long>(z) - a > kMaxIndex) fail_at(b, "range(a, b) spans more than " + std::to_string(kMaxIndex) + " entries");
      std::vector<int> v;
      for (int i = a; i < z; ++i) v.push_back(i);
      return v;
    }
    std::vector<int> v;
    sequence([&] { v.push_back(integer()); });
    return v;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

Genotype parse_genotype(const std::string& text) {
  Genotype g = Parser(text).parse();
  validate_genotype(g);
  return g;
}

// ---------------------------------------------------------------------------- JSON

nlohmann::json to_json(const Genotype& g) {
  auto genes = [](const std::vector<Gene>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& [op, in] : v) a.push_back({op, in});
    return a;
  };
  nlohmann::json j = {{"normal", genes(g.normal)},
                      {"normal_concat", g.normal_concat},
                      {"reduce", genes(g.reduce)},
                      {"reduce_concat", g.reduce_concat}};
  if (g.fallback_genes >= 0) j["fallback_genes"] = g.fallback_genes;
  return j;
}

Genotype genotype_from_json(const nlohmann::json& j) {
  ASAP_CHECK(j.is_object(), "genotype JSON: expected an object");
  // Integers must fit an int as they are: get<int>() would wrap 4294967297 to 1 (and a valid
  // input index), and get<std::vector<int>>() throws nlohmann's type_error on a string.
  auto small_int = [](const nlohmann::json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= -(int64_t{1} << 20) && v.get<int64_t>() <= (int64_t{1} << 20);
  };
  auto genes = [&](const char* key) {
    std::vector<Gene> v;
    ASAP_CHECK(j.contains(key) && j[key].is_array(), "genotype JSON: '", key, "' must be an array");
    for (size_t i = 0; i < j[key].size(); ++i) {
      const auto& e = j[key][i];
      ASAP_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && small_int(e[1]),
                 "genotype JSON: ", key, "[", i, "] must be [\"op\", input]");
      v.emplace_back(e[0].get<std::string>(), e[1].get<int>());
    }
    return v;
  };
  Genotype g;
  g.normal = genes("normal");
  g.reduce = genes("reduce");
  for (const char* key : {"normal_concat", "reduce_concat"}) {
    ASAP_CHECK(j.contains(key) && j[key].is_array(), "genotype JSON: '", key, "' must be an array");
    std::vector<int> v;
    for (const auto& e : j[key]) {
      ASAP_CHECK(small_int(e), "genotype JSON: '", key, "' must hold node indices, found ", e.dump());
      v.push_back(e.get<int>());
    }
    (std::string(key) == "normal_concat" ? g.normal_concat : g.reduce_concat) = v;
  }
  if (j.contains("fallback_genes") && small_int(j["fallback_genes"]) && j["fallback_genes"].get<int>() >= 0)
    g.fallback_genes = j["fallback_genes"].get<int>();
  validate_genotype(g);
  return g;
}

// ---------------------------------------------------------------------------- pictures

std::string to_dot(const Genotype& g, CellType t) {
  // Layout after DARTS visualize.py: inputs left, nodes in the middle, the concat output right.
  const auto& genes = g.genes(t);
  int nodes = static_cast<int>(genes.size() / 2);
  std::ostringstream os;
  os << "digraph " << cell_type_name(t) << " {\n"
     << "  rankdir=LR;\n  node [style=filled, shape=rect, align=center, fontsize=20, height=0.5, "
        "width=0.5, penwidth=2, fontname=\"times\"];\n"
     << "  edge [fontsize=20, fontname=\"times\"];\n"
     << "  \"c_{k-2}\" [fillcolor=darkseagreen2];\n  \"c_{k-1}\" [fillcolor=darkseagreen2];\n";
  for (int i = 0; i < nodes; ++i) os << "  \"" << i << "\" [fillcolor=lightblue];\n";
  os << "  \"c_{k}\" [fillcolor=palegoldenrod];\n";
  auto name = [](int input) {
    return input == 0 ? std::string("c_{k-2}") : input == 1 ? std::string("c_{k-1}") : std::to_string(input - 2);
  };
  for (size_t k = 0; k < genes.size(); ++k)
    os << "  \"" << name(genes[k].second) << "\" -> \"" << k / 2 << "\" [label=\"" << genes[k].first
       << "\", fillcolor=gray];\n";
  for (int c : g.concat(t)) os << "  \"" << name(c) << "\" -> \"c_{k}\" [fillcolor=gray];\n";
  os << "}\n";
  return os.str();
}

bool write_cell_pictures(const Genotype& g, CellType t, const std::string& path_stem, std::string* warning) {
  const std::string dot_path = path_stem + ".dot";
  {
    std::ofstream f(dot_path);
    if (!f) throw IoError("cannot write " + dot_path);
    f << to_dot(g, t);
  }
  auto warn = [&](const std::string& w) {
    if (warning) *warning = w;
    return false;
  };
  if (!program_available("dot")) return warn("dot not found; install graphviz (apt-get install graphviz) for PNGs");
  // An argument vector, never a shell: the run folder may hold any character. A leading '-'
  // would read as an option, so such relative paths get "./" in front.
  auto arg = [](const std::string& p) { return !p.empty() && p[0] == '-' ? "./" + p : p; };
  const ProgramResult r = run_program({"dot", "-Tpng", "-o", arg(path_stem + ".png"), arg(dot_path)});
  if (!r.ok()) return warn("dot -Tpng " + dot_path + " failed (" + r.summary() + ")");
  return true;
}

}  // namespace asap::nas
