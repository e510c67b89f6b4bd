// YAML config: defaults, overrides, and errors that name the key and the line.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/error.h"
#include "nas/primitives.h"
#include "tools/config.h"

using asap::ConfigError;
using asap::run::parse_config;

namespace {
std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    parse_config(yaml, "cfg.yaml", sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("config defaults and values", "[config]") {
  auto c = parse_config("", "empty.yaml");
  CHECK(c.search.epochs == 50);
  CHECK(c.search.anneal.T0 == Approx(1.6));
  CHECK(c.data.batch_size == 64);
  c = parse_config(
      "data:\n  dataset: cifar10\n  batch_size: 32\nsearch:\n  epochs: 7\n  network: {C: 8, layers: 5}\n"
      "  annealer:\n    T0: 2.0\n    prune_every: epoch\nrun:\n  seed: 11\n  device: cpu\n",
      "a.yaml");
  CHECK(c.data.dataset == "cifar10");
  CHECK(c.data.batch_size == 32);
  CHECK(c.search.epochs == 7);
  CHECK(c.search.net.C == 8);
  CHECK(c.search.net.layers == 5);
  CHECK(c.search.anneal.T0 == 2.0);
  CHECK(c.search.anneal.prune_every == "epoch");
  CHECK(c.search.seed == 11);  // run.seed drives the search
}

TEST_CASE("config: --set overrides any key, including new sections", "[config]") {
  auto c = parse_config("search:\n  epochs: 7\n", "a.yaml",
                        {"search.epochs=3", "search.network.C=4", "space.primitives=[none, skip_connect]",
                         "run.out=/tmp/x"});
  CHECK(c.search.epochs == 3);
  CHECK(c.search.net.C == 4);
  CHECK(c.search.net.primitives == std::vector<std::string>{"none", "skip_connect"});
  CHECK(c.run.out == "/tmp/x");
  CHECK_THAT(error_of("", {"search.epochs"}), Catch::Contains("expected dotted.key=value"));
  CHECK_THAT(error_of("", {"search.nope=1"}), Catch::Contains("search.nope") && Catch::Contains("--set"));
  CHECK_THAT(error_of("search:\n  epochs: 3\n", {"search.epochs.x=1"}), Catch::Contains("not a mapping"));
}

TEST_CASE("config errors name the file, key and line", "[config]") {
  CHECK_THAT(error_of("data:\n  batch_sise: 3\n"),
             Catch::Contains("cfg.yaml:2") && Catch::Contains("data.batch_sise") && Catch::Contains("unknown key"));
  CHECK_THAT(error_of("search:\n  epochs: many\n"),
             Catch::Contains("cfg.yaml:2") && Catch::Contains("search.epochs") && Catch::Contains("integer"));
  CHECK_THAT(error_of("run:\n  seed: 1\n  threads: -2\n"),
             Catch::Contains("cfg.yaml:3") && Catch::Contains("run.threads") && Catch::Contains("out of range"));
  CHECK_THAT(error_of("data:\n  dataset: imagenet\n"),
             Catch::Contains("data.dataset") && Catch::Contains("not one of"));
  CHECK_THAT(error_of("search:\n  annealer:\n    beta: 1.5\n"),
             Catch::Contains("cfg.yaml:3") && Catch::Contains("search.annealer.beta"));
  CHECK_THAT(error_of("data: [1, 2]\n"), Catch::Contains("data") && Catch::Contains("mapping"));
  CHECK_THAT(error_of("data:\n  flip: maybe\n"), Catch::Contains("data.flip") && Catch::Contains("true or false"));
  CHECK_THAT(error_of("run:\n  device: tpu\n"), Catch::Contains("run.device"));
  CHECK_THAT(error_of("bogus: 1\n"), Catch::Contains("cfg.yaml:1") && Catch::Contains("'bogus'"));
  // YAML syntax errors carry line and column.
  CHECK_THAT(error_of("data:\n  batch_size: [1, 2\n"), Catch::Contains("cfg.yaml:") && Catch::Contains("YAML syntax"));
  CHECK_THROWS_AS(asap::run::load_config("/nonexistent/x.yaml"), ConfigError);
}

TEST_CASE("the resolved config round-trips through YAML", "[config]") {
  auto c = parse_config("search:\n  epochs: 9\n  network: {C: 4}\ntrain:\n  genotype: DARTS_V2\n", "a.yaml");
  auto d = parse_config(asap::run::to_yaml(c), "resolved.yaml");
  CHECK(asap::run::to_yaml(d) == asap::run::to_yaml(c));
  CHECK(d.search.epochs == 9);
  CHECK(d.train.genotype == "DARTS_V2");
}

TEST_CASE("complex YAML keys are a ConfigError, not a yaml-cpp exception (fuzz regression)", "[config]") {
  // Found by fuzz/fuzz_config: "? [a, b]\n: 1" made SectionReader::finish() call as<std::string>()
  // on a sequence key; YAML::TypedBadConversion escaped parse_config (asap_run exit 1, not 2).
  CHECK_THAT(error_of("? [a, b]\n: 1\n"), Catch::Contains("cfg.yaml:1") && Catch::Contains("keys must be names"));
  CHECK_THAT(error_of("data:\n  ? {x: 1}\n  : 2\n"), Catch::Contains("data") && Catch::Contains("keys must be names"));
}

TEST_CASE("config: repeated keys and sections are errors naming both lines", "[config]") {
  CHECK_THAT(error_of("search:\n  epochs: 3\n  epochs: 4\n"),
             Catch::Contains("cfg.yaml:3") && Catch::Contains("'search.epochs' appears twice (lines 2 and 3)"));
  CHECK_THAT(error_of("run:\n  seed: 1\ndata:\n  flip: true\nrun:\n  seed: 2\n"),
             Catch::Contains("cfg.yaml:5") && Catch::Contains("'run' appears twice (lines 1 and 5)"));
  CHECK_THAT(error_of("search:\n  network: {C: 4, C: 8}\n"), Catch::Contains("'search.network.C' appears twice"));
}

TEST_CASE("config: --set errors say (from --set) and never blame a line of the file", "[config]") {
  const std::string bad_type = error_of("search:\n  epochs: 3\n", {"search.epochs=zero"});
  CHECK_THAT(bad_type, Catch::Contains("key 'search.epochs' (from --set)") && Catch::Contains("integer"));
  CHECK_THAT(bad_type, !Catch::Contains("cfg.yaml:1") && !Catch::Contains("cfg.yaml:2"));
  CHECK_THAT(error_of("", {"search.network={C: x}"}), Catch::Contains("search.network.C' (from --set)"));
  CHECK_THAT(error_of("", {"space.primitives=[none, bogus_op]"}),
             Catch::Contains("space.primitives' (from --set)") && Catch::Contains("bogus_op"));
  // "key=" is not "back to the default": it is refused.
  CHECK_THAT(error_of("search:\n  epochs: 3\n", {"search.epochs="}),
             Catch::Contains("'search.epochs'") && Catch::Contains("gives no value (from --set)"));
  CHECK_THAT(error_of("", {"run.out=  "}), Catch::Contains("gives no value"));
  CHECK_THAT(error_of("", {"=3"}), Catch::Contains("expected dotted.key=value (from --set)"));
  CHECK_THAT(error_of("", {"search.epochs=[1"}), Catch::Contains("not valid YAML") && Catch::Contains("(from --set)"));
}

TEST_CASE("config: primitive lists, reduction cells and train epochs are validated", "[config]") {
  CHECK_THAT(error_of("space:\n  primitives: []\n"),
             Catch::Contains("cfg.yaml:2") && Catch::Contains("space.primitives") && Catch::Contains("empty list"));
  CHECK_THAT(error_of("space:\n  primitives: [none, sep_conv_9x9]\n"),
             Catch::Contains("cfg.yaml:2") && Catch::Contains("space.primitives") && Catch::Contains("sep_conv_9x9"));
  CHECK_THAT(error_of("space:\n  primitives: [skip_connect, skip_connect]\n"), Catch::Contains("listed twice"));
  CHECK_THAT(error_of("space:\n  primitives: [none]\n"), Catch::Contains("only 'none'"));
  CHECK_THAT(error_of("search:\n  network:\n    layers: 3\n    reduction_cells: [-5, 99]\n"),
             Catch::Contains("cfg.yaml:4") && Catch::Contains("search.network.reduction_cells") &&
                 Catch::Contains("-5 is not a cell index in [0, 3)"));
  CHECK_THAT(error_of("search:\n  network: {layers: 3, reduction_cells: [1, 3]}\n"), Catch::Contains("3 is not a cell index"));
  CHECK_THAT(error_of("search:\n  network: {reduction_cells: [2, 2]}\n"), Catch::Contains("listed twice"));
  CHECK_THAT(error_of("search:\n  network: {reduction_cells: []}\n"), Catch::Contains("empty list"));
  CHECK_THAT(error_of("train:\n  epochs: 0\n"), Catch::Contains("train.epochs") && Catch::Contains("out of range [1,"));
  // Defaults are resolved, so config.yaml records what ran.
  auto c = parse_config("search:\n  network: {layers: 8}\n", "a.yaml");
  CHECK(c.search.net.primitives == asap::nas::darts_primitives());
  CHECK(c.search.net.reduction_cells == std::vector<int>{2, 5});
  CHECK(parse_config(asap::run::to_yaml(c), "r.yaml").search.net.reduction_cells == std::vector<int>{2, 5});
  // The train network has its own list, checked against train.network.layers.
  CHECK_THAT(error_of("train:\n  network:\n    layers: 4\n    reduction_cells: [0, 4]\n"),
             Catch::Contains("cfg.yaml:4") && Catch::Contains("train.network.reduction_cells") &&
                 Catch::Contains("4 is not a cell index in [0, 4) (train.network.layers is 4)"));
  CHECK_THAT(error_of("train:\n  network: {reduction_cells: [3, 3]}\n"), Catch::Contains("listed twice"));
  CHECK(c.train.reduction_cells == std::vector<int>{6, 13});  // default 20 layers
  auto t = parse_config("train:\n  network: {layers: 4, reduction_cells: [0, 2]}\n  optimizer: {lr_unit: step}\n", "t.yaml");
  CHECK(t.train.reduction_cells == std::vector<int>{0, 2});
  CHECK(t.train.lr_unit == "step");
  auto rt = parse_config(asap::run::to_yaml(t), "r.yaml");
  CHECK(rt.train.reduction_cells == std::vector<int>{0, 2});
  CHECK(rt.train.lr_unit == "step");
  CHECK_THAT(error_of("train:\n  optimizer: {lr_unit: batch}\n"), Catch::Contains("train.optimizer.lr_unit"));
}

TEST_CASE("config: the file must be a regular file of at most 1 MiB", "[config]") {
  namespace fs = std::filesystem;
  const fs::path d = fs::temp_directory_path() / ("asap_cfgfile_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "run");
  auto load_error = [](const fs::path& p) {
    try {
      asap::run::load_config(p.string());
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(load_error(d / "run"), Catch::Contains("is a folder") && Catch::Contains("--resume"));
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  CHECK_THAT(load_error(d / "fifo"), Catch::Contains("not a regular file"));  // and does not hang
  { std::ofstream((d / "big.yaml").string()) << "# " << std::string(asap::run::kMaxConfigBytes, 'x') << "\n"; }
  CHECK_THAT(load_error(d / "big.yaml"), Catch::Contains("at most 1048576 bytes"));
  { std::ofstream((d / "ok.yaml").string()) << "search:\n  epochs: 4\n"; }
  CHECK(asap::run::load_config((d / "ok.yaml").string()).search.epochs == 4);
  CHECK_THAT(load_error(d / "absent.yaml"), Catch::Contains("cannot open"));
  fs::remove_all(d);
}

TEST_CASE("config: changed_keys lists what a resume would change", "[config]") {
  auto a = parse_config("run:\n  seed: 1\n", "a.yaml");
  CHECK(asap::run::changed_keys(a, a).empty());
  auto b = parse_config("run:\n  seed: 99\n  threads: 3\nsearch:\n  network: {C: 8}\n", "b.yaml");
  CHECK(asap::run::changed_keys(a, b) == std::vector<std::string>{"run.seed", "run.threads", "search.network.C"});
  const auto& ok = asap::run::resume_changeable_keys();
  CHECK(ok == std::vector<std::string>{"run.threads", "run.progress", "run.plots"});
}
