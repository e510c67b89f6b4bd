// Every shipped config (configs/*.yaml) loads, and the CIFAR-10 ones hold the keys the DARTS/ASAP
// paper recipe fixes (docs/method.md, "What is the paper's"). A config added later is loaded too.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "tools/config.h"

namespace fs = std::filesystem;
using asap::run::RunConfig;

namespace {

fs::path configs_dir() { return fs::path(ASAP_SOURCE_DIR) / "configs"; }  // set by tests/CMakeLists.txt

// The search recipe of DARTS (Liu et al. 2019, section A.1.1) that ASAP (Noy et al. 2020) keeps.
void check_paper_search(const RunConfig& c) {
  CHECK(c.data.train_portion == 0.5);
  CHECK(c.data.batch_size == 64);
  CHECK(c.search.epochs == 50);
  CHECK(c.search.net.C == 16);
  CHECK(c.search.net.layers == 8);
  CHECK(c.search.net.nodes == 4);
  CHECK(c.search.w_lr == Approx(0.025));
  CHECK(c.search.w_lr_min == Approx(0.001));
  CHECK(c.search.w_momentum == Approx(0.9));
  CHECK(c.search.w_weight_decay == Approx(3e-4));
  CHECK(c.search.grad_clip == Approx(5));
  CHECK(c.search.a_lr == Approx(3e-4));
  CHECK(c.search.a_beta1 == Approx(0.5));
  CHECK(c.search.a_beta2 == Approx(0.999));
  CHECK(c.search.a_weight_decay == Approx(1e-3));
  CHECK(c.search.anneal.prune_every == "step");  // ASAP: prune after each update
}

// The evaluation recipe of DARTS (section A.2) used by ASAP's CIFAR-10 results.
void check_paper_train(const RunConfig& c) {
  CHECK(c.data.crop_padding == 4);
  CHECK(c.data.flip);
  CHECK(c.data.cutout == 16);
  CHECK(c.train.epochs == 600);
  CHECK(c.train.batch_size == 96);
  CHECK(c.train.C == 36);
  CHECK(c.train.layers == 20);
  CHECK(c.train.auxiliary);
  CHECK(c.train.auxiliary_weight == Approx(0.4));
  CHECK(c.train.drop_path == Approx(0.2));
  CHECK(c.train.lr == Approx(0.025));
  CHECK(c.train.lr_min == Approx(0.0));
  CHECK(c.train.lr_unit == "epoch");  // DARTS anneals per epoch (the per-step cosine is the quick start's)
  CHECK(c.train.reduction_cells == std::vector<int>{6, 13});
  CHECK(c.train.momentum == Approx(0.9));
  CHECK(c.train.weight_decay == Approx(3e-4));
  CHECK(c.train.grad_clip == Approx(5));
}

}  // namespace

TEST_CASE("every shipped config loads, and the CIFAR-10 configs hold the paper recipe", "[config]") {
  std::set<std::string> seen;
  for (const auto& f : fs::directory_iterator(configs_dir())) {
    if (f.path().extension() != ".yaml") continue;
    const std::string name = f.path().filename().string();
    CAPTURE(name);
    seen.insert(name);
    RunConfig c;
    REQUIRE_NOTHROW(c = asap::run::load_config(f.path().string()));
    if (c.data.dataset == "cifar10") {
      CHECK(c.data.flip);
      CHECK(c.data.crop_padding == 4);
    }
  }
  REQUIRE(seen.count("cifar10_search.yaml"));
  REQUIRE(seen.count("cifar10_train.yaml"));
  REQUIRE(seen.count("quickstart.yaml"));

  const RunConfig search = asap::run::load_config((configs_dir() / "cifar10_search.yaml").string());
  check_paper_search(search);
  check_paper_train(search);  // its comment promises that --stage all trains with the paper's recipe
  const RunConfig train = asap::run::load_config((configs_dir() / "cifar10_train.yaml").string());
  check_paper_train(train);

  // The quick start searches (no train.genotype) on Fashion-MNIST on the CPU.
  const RunConfig quick = asap::run::load_config((configs_dir() / "quickstart.yaml").string());
  CHECK(quick.data.dataset == "fashion_mnist");
  CHECK(quick.run.device == "cpu");
  CHECK(quick.train.genotype.empty());
  // Three epochs only reach 0.92 when the last one anneals (docs/method.md, the quick start's recipe).
  CHECK(quick.train.lr_unit == "step");
}
