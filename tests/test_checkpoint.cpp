// asap_run checkpoints: checksum over state and tensors, state schema with types and ranges, and
// a network that does not fit the checkpoint named by file and tensor.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "nas/search.h"
#include "tools/checkpoint.h"

namespace fs = std::filesystem;
using namespace asap;
using namespace asap::run;

namespace {

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("asap_ckpt_" + std::to_string(::getpid()));
  std::string path = (dir / "search.safetensors").string();
  RunConfig cfg = parse_config("search:\n  epochs: 5\n  network: {C: 2, layers: 2}\n", "t.yaml");
  nas::Searcher searcher;
  Fixture() : searcher(net_config(cfg)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Fixture() { fs::remove_all(dir); }
  static nas::SearchConfig net_config(const RunConfig& c) {
    nas::SearchConfig s = c.search;
    s.net.in_channels = 1;
    return s;
  }
  nlohmann::json state() const { return {{"searcher", searcher.state_json()}, {"seconds", 1.5}, {"completed", false}}; }
  std::string error_with(const nlohmann::json& st) {
    save_checkpoint(path, searcher.state_tensors(), st);
    try {
      load_checkpoint(path, search_schema(cfg));
    } catch (const IoError& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace

TEST_CASE("checkpoint: a saved checkpoint loads back verified", "[checkpoint]") {
  Fixture f;
  save_checkpoint(f.path, f.searcher.state_tensors(), f.state());
  Checkpoint c = load_checkpoint(f.path, search_schema(f.cfg));
  CHECK(c.state == f.state());
  CHECK(c.tensors.size() == f.searcher.state_tensors().size());
  CHECK(load_safetensors(f.path).metadata.at("checksum").rfind("crc32:", 0) == 0);
}

TEST_CASE("checkpoint: any flipped byte of header or data fails the checksum", "[checkpoint]") {
  Fixture f;
  save_checkpoint(f.path, f.searcher.state_tensors(), f.state());
  std::string bytes;
  {
    std::ifstream in(f.path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto with = [&](const std::string& b) {
    std::ofstream(f.path, std::ios::binary | std::ios::trunc) << b;
    try {
      load_checkpoint(f.path, search_schema(f.cfg));
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string data_flip = bytes;
  data_flip[bytes.size() - 3] ^= 0x10;  // a tensor's data
  CHECK_THAT(with(data_flip), Catch::Contains(f.path) && Catch::Contains("checksum mismatch"));
  std::string state_edit = bytes;
  const size_t at = state_edit.find("\\\"epoch\\\":0");  // inside the escaped state string
  REQUIRE(at != std::string::npos);
  state_edit[at + 10] = '3';
  CHECK_THAT(with(state_edit), Catch::Contains("checksum mismatch"));
  CHECK(with(bytes).empty());
}

TEST_CASE("checkpoint: the state is validated against its schema", "[checkpoint]") {
  Fixture f;
  auto st = f.state();
  st["searcher"]["epoch"] = 1000000000;
  CHECK_THAT(f.error_with(st), Catch::Contains("key 'searcher.epoch'") && Catch::Contains("out of range [0, 5]"));
  st = f.state();
  st["searcher"]["epoch"] = -1;
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.epoch") && Catch::Contains("out of range"));
  st = f.state();
  st["searcher"]["epoch"] = "two";
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.epoch") && Catch::Contains("expected an integer"));
  st = f.state();
  st["searcher"]["epoch"] = 1.5;
  CHECK_THAT(f.error_with(st), Catch::Contains("expected an integer"));
  st = f.state();
  st["searcher"].erase("step");
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.step") && Catch::Contains("missing"));
  st = f.state();
  st["extra"] = 1;
  CHECK_THAT(f.error_with(st), Catch::Contains("'extra'") && Catch::Contains("unknown key"));
  st = f.state();
  st["searcher"]["primitives"][1] = "sep_conv_3x3";
  CHECK_THAT(f.error_with(st), Catch::Contains("differs from the config"));
  st = f.state();
  st["searcher"]["alive"]["normal"][0].push_back(1);
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.alive.normal") && Catch::Contains("entries"));
  st = f.state();
  st["searcher"]["alive"]["reduce"][2][3] = 7;
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.alive.reduce") && Catch::Contains("[0, 1]"));
  st = f.state();
  st["seconds"] = "later";
  CHECK_THAT(f.error_with(st), Catch::Contains("'seconds'") && Catch::Contains("expected a number"));
  st = f.state();
  st["searcher"]["temperature"] = 0;
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.temperature"));
  st = f.state();
  st["searcher"]["prune_log"] = {{{"epoch", 0}, {"step", 1}, {"cell_type", "normal"}, {"edge", 99}, {"op", "none"},
                                  {"phi", 0.1}, {"T", 1.0}, {"theta", 0.2}}};
  CHECK_THAT(f.error_with(st), Catch::Contains("searcher.prune_log.edge"));
  CHECK(f.error_with(f.state()).empty());
}

TEST_CASE("checkpoint: train state schema and older formats", "[checkpoint]") {
  Fixture f;
  RunConfig c = parse_config("train:\n  epochs: 3\n", "t.yaml");
  const nlohmann::json trainer = {{"format", "asap-train-state-1"}, {"epoch", 3}, {"step", 12},
                                  {"genotype", nas::to_json(nas::darts_v2())}, {"drop_path_offset", 5}};
  auto err = [&](const nlohmann::json& st) {
    save_checkpoint(f.path, {}, st);
    try {
      load_checkpoint(f.path, train_schema(c));
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(err({{"trainer", trainer}, {"seconds", 2.0}, {"test", {{"loss", 0.5}, {"acc", 0.75}}}}).empty());
  CHECK_THAT(err({{"trainer", trainer}, {"seconds", 2.0}, {"test", {{"loss", 0.5}, {"acc", 7}}}}),
             Catch::Contains("test.acc") && Catch::Contains("out of range"));
  auto bad = trainer;
  bad["epoch"] = 4;
  CHECK_THAT(err({{"trainer", bad}, {"seconds", 2.0}}), Catch::Contains("trainer.epoch") && Catch::Contains("[0, 3]"));
  bad = trainer;
  bad["genotype"]["normal"] = "x";
  CHECK_THAT(err({{"trainer", bad}, {"seconds", 2.0}}), Catch::Contains("trainer.genotype"));
  bad = trainer;
  bad["drop_path_offset"] = -1;
  CHECK_THAT(err({{"trainer", bad}, {"seconds", 2.0}}), Catch::Contains("trainer.drop_path_offset"));
  // A file without our format tag (or of the checksum-less v1 format) is refused by name.
  save_safetensors(f.path, std::map<std::string, Tensor>{}, {{"format", "asap-checkpoint-v1"}, {"state", "{}"}});
  CHECK_THROWS_WITH(load_checkpoint(f.path, train_schema(c)),
                    Catch::Contains(f.path) && Catch::Contains("asap-checkpoint-v2"));
}

TEST_CASE("checkpoint: a network that does not fit is an IoError naming file and tensor", "[checkpoint]") {
  Fixture f;
  save_checkpoint(f.path, f.searcher.state_tensors(), f.state());
  Checkpoint c = load_checkpoint(f.path, search_schema(f.cfg));
  RunConfig wider = parse_config("search:\n  epochs: 5\n  network: {C: 4, layers: 2}\n", "w.yaml");
  nas::Searcher other(Fixture::net_config(wider));
  try {
    load_into_network(f.path, [&] { other.load_state(c.tensors, c.state.at("searcher")); });
    FAIL("a checkpoint of C=2 loaded into a C=4 network");
  } catch (const IoError& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains(f.path) && Catch::Contains("weights.") && Catch::Contains("shape"));
  }
  load_into_network(f.path, [&] { f.searcher.load_state(c.tensors, c.state.at("searcher")); });  // fits
}
