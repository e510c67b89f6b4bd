// YAML config: defaults, overrides, and errors that name the key and the line.
#include <catch2/catch.hpp>

#include "engine/error.h"
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
