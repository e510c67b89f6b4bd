// Genotype derivation on hand-set matrices, DARTS text round trip, JSON, parse errors, DOT.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "engine/error.h"
#include "nas/genotype.h"
#include "nas/primitives.h"

using namespace asap;
using namespace asap::nas;

namespace {

int op_index(const std::string& name) {
  const auto& p = darts_primitives();
  return static_cast<int>(std::find(p.begin(), p.end(), name) - p.begin());
}

struct Mats {
  std::vector<std::vector<double>> phi, alpha;
  std::vector<std::vector<uint8_t>> alive;
  Mats() : phi(14, std::vector<double>(8, 0.0)), alpha(14, std::vector<double>(8, 0.0)),
           alive(14, std::vector<uint8_t>(8, 0)) {}
  void only(int e, const std::string& op, double alpha_v) {
    alive[e][op_index(op)] = 1;
    phi[e][op_index(op)] = 1.0;
    alpha[e][op_index(op)] = alpha_v;
  }
};

}  // namespace

TEST_CASE("genotype derivation on hand-set alphas", "[nas]") {
  Mats m;
  // node 0 (edges 0, 1): both single ops with Phi 1; the larger alpha ranks first.
  m.only(0, "sep_conv_3x3", 0.5);
  m.only(1, "skip_connect", 0.2);
  // node 1 (edges 2, 3, 4): edge 2 dead (only none); edge 3 two alive ops; edge 4 single op.
  m.only(2, "none", 0.0);
  m.alive[3][op_index("max_pool_3x3")] = m.alive[3][op_index("sep_conv_5x5")] = 1;
  m.phi[3][op_index("max_pool_3x3")] = 0.3;
  m.phi[3][op_index("sep_conv_5x5")] = 0.7;
  m.only(4, "dil_conv_3x3", 0.1);
  // node 2 (edges 5..8): a tie in Phi and alpha goes to the lower input; edge 7's best non-none
  // op has Phi 0.2 (none holds 0.8); edge 8 dead.
  m.only(5, "avg_pool_3x3", 0.3);
  m.only(6, "sep_conv_3x3", 0.3);
  m.alive[7][op_index("none")] = m.alive[7][op_index("sep_conv_3x3")] = 1;
  m.phi[7][op_index("none")] = 0.8;
  m.phi[7][op_index("sep_conv_3x3")] = 0.2;
  m.only(8, "none", 0.0);
  // node 3 (edges 9..13): one live edge; the second comes from the dead edges' pruned ops by alpha.
  for (int e = 9; e < 13; ++e) m.only(e, "none", 0.0);
  m.alpha[11][op_index("skip_connect")] = 2.0;
  m.only(13, "dil_conv_5x5", 0.0);

  auto genes = derive_cell(m.phi, m.alpha, m.alive, darts_primitives(), 4);
  Genotype g;
  g.normal = genes;
  g.reduce = genes;
  CHECK(to_text(g) ==
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 2), "
        "('sep_conv_5x5', 1), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4), "
        "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_3x3', 0), "
        "('skip_connect', 1), ('dil_conv_3x3', 2), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0), "
        "('sep_conv_3x3', 1), ('dil_conv_5x5', 4), ('skip_connect', 2)], reduce_concat=[2, 3, 4, 5])");
}

TEST_CASE("DARTS_V2 text round trip", "[nas]") {
  const std::string expected =
      "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
      "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
      "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
      "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
      "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
  CHECK(to_text(darts_v2()) == expected);
  CHECK(parse_genotype(expected) == darts_v2());
  CHECK(parse_genotype(to_text(darts_v2())) == darts_v2());
  // The DARTS source spells concat as range(2, 6); quotes and spacing vary; fields in any order.
  const std::string python_style =
      "Genotype(\n  reduce = [(\"max_pool_3x3\", 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
      "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
      "('max_pool_3x3', 1),],\n  normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
      "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
      "('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce_concat=range(2, 6))";
  CHECK(parse_genotype(python_style) == darts_v2());
}

TEST_CASE("genotype JSON round trip", "[nas]") {
  auto j = to_json(darts_v2());
  CHECK(j["normal"][7][0] == "dil_conv_3x3");
  CHECK(genotype_from_json(j) == darts_v2());
  CHECK(genotype_from_json(nlohmann::json::parse(j.dump())) == darts_v2());
  j["reduce"][0] = {"max_pool_3x3"};
  CHECK_THROWS_AS(genotype_from_json(j), Error);
  // Fuzz regressions (fuzz/fuzz_genotype): a string in a concat list threw nlohmann's type_error
  // (not an asap::Error); an input of 2^32 + 1 wrapped to 1 and loaded as a valid genotype.
  nlohmann::json k = to_json(darts_v2());
  k["normal_concat"][0] = "2";
  CHECK_THROWS_AS(genotype_from_json(k), Error);
  k = to_json(darts_v2());
  k["normal"][1][1] = 4294967297LL;
  CHECK_THROWS_AS(genotype_from_json(k), Error);
  CHECK_THROWS_AS(genotype_from_json(nlohmann::json::array()), Error);
}

TEST_CASE("genotype parse errors name the position", "[nas]") {
  auto msg = [](const std::string& s) {
    try {
      parse_genotype(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = msg("Genotype(normal=[('sep_conv_3x3', 0), ('conv_9x9', 1)], normal_concat=[2], "
                      "reduce=[], reduce_concat=[2])");
  CHECK(m.find("column 39") != std::string::npos);
  CHECK(m.find("conv_9x9") != std::string::npos);
  CHECK(msg("Genotype(normal=[('sep_conv_3x3', 0)").find("expected") != std::string::npos);
  CHECK(msg("Genotype(normal=[], normal_concat=[2], reduce=[])").find("reduce_concat") != std::string::npos);
  CHECK(msg("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 5)], normal_concat=[2], "
            "reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=[2])")
            .find("out of range") != std::string::npos);
  CHECK(msg("Genotipe(normal=[])").find("column 1") != std::string::npos);
}

TEST_CASE("genotype parser rejects huge integers and ranges (fuzz regressions)", "[nas]") {
  // Found by fuzz/fuzz_genotype: std::stoi threw std::out_of_range (not an asap::Error), and
  // range(0, 2000000000) allocated gigabytes before validation could reject it.
  const std::string genes = "normal=[('skip_connect', 0), ('skip_connect', 1)], reduce=[('max_pool_3x3', 0), "
                            "('max_pool_3x3', 1)], reduce_concat=[2]";
  auto msg = [&](const std::string& concat) {
    try {
      parse_genotype("Genotype(" + genes + ", normal_concat=" + concat + ")");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(msg("[2, 99999999999999999999]").find("out of range") != std::string::npos);
  CHECK(msg("[2147483648]").find("out of range") != std::string::npos);
  CHECK(msg("range(0, 2000000000)").find("out of range") != std::string::npos);
  CHECK(msg("range(-1000000, 1000000)").find("range(a, b) spans") != std::string::npos);
  CHECK(msg("range(2, 3)") == "no error");
}

TEST_CASE("genotype DOT pictures", "[nas]") {
  std::string dot = to_dot(darts_v2(), CellType::Reduce);
  CHECK(dot.find("digraph reduce") != std::string::npos);
  CHECK(dot.find("\"c_{k-2}\" -> \"0\" [label=\"max_pool_3x3\"") != std::string::npos);
  CHECK(dot.find("\"3\" -> \"c_{k}\"") != std::string::npos);
  std::string stem = "/tmp/asap_test_nas_cell_" + std::to_string(::getpid());
  bool png = write_cell_pictures(darts_v2(), CellType::Normal, stem);
  std::ifstream f(stem + ".dot");
  CHECK(f.good());
  std::remove((stem + ".dot").c_str());
  if (png) {
    std::ifstream p(stem + ".png", std::ios::binary);
    char magic[4] = {};
    p.read(magic, 4);
    CHECK(magic[1] == 'P');
    std::remove((stem + ".png").c_str());
  }
}
