// CUDA graphs ([cuda-step]): a search whose steps are captured once per plan and replayed must
// equal the same search run eagerly, step for step, across device-side prunes and the re-plans
// that follow them (nas/search_step.cpp). Replays run the captured kernels with the captured
// arguments on the same buffers, so the comparison is exact.
#include <catch2/catch.hpp>

#include "engine/storage.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/stats.h"
#include "tests/test_nas_util.h"

using namespace asap;
using namespace asap::nas;

namespace {

struct Run {
  std::vector<PruneEvent> events;
  std::vector<EpochStats> epochs;
  std::vector<float> alphas;
  uint64_t graph_launches = 0, syncs = 0;
  int64_t steps = 0;
};

Run search(bool graphs) {
  SearchConfig c = test::tiny_search_config(3);
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
  test::FixedSource train(5, 2, 1, 4, 4, 100), val(5, 2, 1, 4, 4, 200);
  Run r;
  s.on_prune = [&](const PruneEvent& e) { r.events.push_back(e); };
  const cuda::stats::Snapshot before = cuda::stats::snapshot();
  while (!s.finished()) r.epochs.push_back(s.run_epoch(train.source(), val.source()));
  const cuda::stats::Snapshot d = cuda::stats::diff(cuda::stats::snapshot(), before);
  r.graph_launches = d.graph_launches;
  r.syncs = d.host_syncs;
  r.steps = s.global_step();
  for (CellType t : {CellType::Normal, CellType::Reduce})
    for (float v : s.network().alpha(t).to_vector()) r.alphas.push_back(v);
  return r;
}

}  // namespace

TEST_CASE("cuda graphs: replayed search steps equal eager steps across prunes and re-plans", "[cuda-step]") {
  if (!backend_available(DeviceType::CUDA) || cuda::device_count() == 0) {
    WARN("no CUDA device: skipped");
    return;
  }
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
  // Host reads happen only at log points: every 3 steps and at each epoch end.
  CHECK(graphed.syncs <= static_cast<uint64_t>(graphed.steps / 3 + 2 * graphed.epochs.size() + 2));
}
