// CUDA graphs ([cuda-step]): a search whose steps are captured once per plan and replayed must
// equal the same search run eagerly, step for step, across device-side prunes and the re-plans
// that follow them (nas/search_step.cpp); the train stage's steps likewise, with drop-path masks
// drawn on the device at every replay and the learning rate changing per epoch
// (nas/eval_train.cpp). Replays run the captured kernels with the captured arguments on the same
// buffers, so the comparisons are exact.
#include <catch2/catch.hpp>

#include "engine/storage.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/stats.h"
#include "nas/eval_train.h"
#include "nas/genotype.h"
#include "tests/test_nas_util.h"
#include "tests/cuda/test_cuda_util.h"

using namespace asap;
using namespace asap::nas;

namespace {

struct Run {
  std::vector<PruneEvent> events;
  std::vector<EpochStats> epochs;
  std::vector<float> alphas;
  uint64_t graph_launches = 0, syncs = 0, trims = 0;
  int64_t steps = 0;
};

Run search(bool graphs) {
  SearchConfig c = nas::test::tiny_search_config(3);
  c.net.C = 2;
  c.net.layers = 1;
  c.epochs = 2;
  c.anneal.warmup_epochs = 0;
  c.anneal.T0 = 0.05;  // a cold start: alphas separate after one Adam step, so ops get pruned early
  c.anneal.beta = 0.9;
  c.stop_when_converged = false;
  c.sync_every = 3;
  c.cuda_graphs = graphs;
  Searcher s(c, Device::cuda());
  nas::test::FixedSource train(5, 2, 1, 4, 4, 100), val(5, 2, 1, 4, 4, 200);
  Run r;
  s.on_prune = [&](const PruneEvent& e) { r.events.push_back(e); };
  const cuda::stats::Snapshot before = cuda::stats::snapshot();
  while (!s.finished()) r.epochs.push_back(s.run_epoch(train.source(), val.source()));
  const cuda::stats::Snapshot d = cuda::stats::diff(cuda::stats::snapshot(), before);
  r.graph_launches = d.graph_launches;
  r.syncs = d.host_syncs;
  if (auto it = d.syncs_by_reason.find("cache trim (cudaFree)"); it != d.syncs_by_reason.end()) r.trims = it->second;
  r.steps = s.global_step();
  for (CellType t : {CellType::Normal, CellType::Reduce})
    for (float v : s.network().alpha(t).to_vector()) r.alphas.push_back(v);
  return r;
}

}  // namespace

TEST_CASE("cuda graphs: replayed search steps equal eager steps across prunes and re-plans", "[cuda-step]") {
  ASAP_SKIP_WITHOUT_CUDA();
  const Run eager = search(false), graphed = search(true);
  REQUIRE(eager.events.size() > 5);  // the cold start prunes during the first epoch
  REQUIRE(graphed.events.size() == eager.events.size());
  for (size_t i = 0; i < eager.events.size(); ++i) {
    CAPTURE(i);
    CHECK(graphed.events[i].step == eager.events[i].step);
    CHECK(graphed.events[i].cell_type == eager.events[i].cell_type);
    CHECK(graphed.events[i].edge == eager.events[i].edge);
    CHECK(graphed.events[i].op == eager.events[i].op);
    CHECK(graphed.events[i].phi == eager.events[i].phi);
  }
  REQUIRE(graphed.epochs.size() == eager.epochs.size());
  for (size_t i = 0; i < eager.epochs.size(); ++i) {
    CHECK(graphed.epochs[i].train_loss == eager.epochs[i].train_loss);
    CHECK(graphed.epochs[i].val_loss == eager.epochs[i].val_loss);
    CHECK(graphed.epochs[i].val_acc == eager.epochs[i].val_acc);
  }
  CHECK(graphed.alphas == eager.alphas);
  // Graphs really ran: every plan's third step on is a replay.
  CHECK(eager.graph_launches == 0);
  CHECK(graphed.graph_launches > 0);
  // Host reads happen only at log points: every 3 steps and at each epoch end; so do the cache
  // trims after re-plans (a cudaFree right after the read, while the device is idle).
  const uint64_t log_points = static_cast<uint64_t>(graphed.steps / 3 + 2 * graphed.epochs.size() + 2);
  CHECK(graphed.syncs - graphed.trims <= log_points);
  CHECK(graphed.trims <= log_points);
}

namespace {

struct TrainRun {
  std::vector<TrainEpochStats> epochs;
  std::vector<float> weights;
  nlohmann::json state;
  uint64_t graph_launches = 0;
};

TrainRun train(bool graphs) {
  TrainConfig c;
  c.net.C = 2;
  c.net.layers = 3;  // both reduction cells and the auxiliary head
  c.net.in_channels = 1;
  c.net.num_classes = 4;
  c.net.input_size = 4;
  c.epochs = 3;       // drop-path p: 0, then 0.1, then 0.2 (a re-capture when it turns on)
  c.lr = 0.05;
  c.drop_path_max = 0.3;
  c.sync_every = 2;
  c.cuda_graphs = graphs;
  EvalTrainer tr(*named_genotype("DARTS_V2"), c, Device::cuda());
  nas::test::FixedSource data(5, 4, 1, 4, 4, 300);
  TrainRun r;
  const cuda::stats::Snapshot before = cuda::stats::snapshot();
  while (!tr.finished()) r.epochs.push_back(tr.run_epoch(data.source()));
  r.graph_launches = cuda::stats::diff(cuda::stats::snapshot(), before).graph_launches;
  for (const auto& [name, t] : tr.network().named_parameters())
    for (float v : t.to(Device::cpu()).to_vector()) r.weights.push_back(v);
  r.state = tr.state_json();
  return r;
}

}  // namespace

TEST_CASE("cuda graphs: replayed train steps equal eager steps, with drop-path drawn on the device", "[cuda-step]") {
  ASAP_SKIP_WITHOUT_CUDA();
  const TrainRun eager = train(false), graphed = train(true);
  REQUIRE(graphed.epochs.size() == eager.epochs.size());
  for (size_t i = 0; i < eager.epochs.size(); ++i) {
    CAPTURE(i);
    CHECK(graphed.epochs[i].loss == eager.epochs[i].loss);
    CHECK(graphed.epochs[i].acc == eager.epochs[i].acc);
    CHECK(graphed.epochs[i].steps == eager.epochs[i].steps);
  }
  CHECK(eager.epochs.back().drop_path > 0);
  CHECK(graphed.weights == eager.weights);
  // The host's mirrors of the step and Philox counters followed the replays (checkpoints save them).
  CHECK(graphed.state == eager.state);
  CHECK(graphed.state.at("drop_path_offset").get<uint64_t>() > 0);
  CHECK(eager.graph_launches == 0);
  // 5 steps an epoch. Epoch 0: 2 eager, the capture (replayed once), 2 replays; epoch 1 turns
  // drop-path on, a new step shape: the same again; epoch 2 only changes p and the learning rate,
  // which the graph reads from device memory: 5 replays.
  CHECK(graphed.graph_launches == 3 + 3 + 5);
}
