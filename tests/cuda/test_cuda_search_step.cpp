// The whole ASAP search step on Device::cuda() against the CPU ([cuda-step]): a tiny supernet,
// weight steps (SGD with momentum, weight decay, gradient clipping) and alpha steps (Adam), a
// prune and the re-planned network after it. (A whole search on the device deriving the CPU's
// genotype is tests/asap_run_cuda_e2e.sh.) In the emulation build the backend's own counters
// (kernels/cuda/stats.h) must equal what the emulated runtime executed: no launch, sync or copy
// bypasses the helpers.
// Tolerances, after 4 steps: losses 1e-4 relative, accuracies exact; weights and BN buffers 1e-3
// relative L2, alphas 2e-3. Float32 sums run in a different order on the device; momentum
// carries the difference forward, and Adam divides alpha gradients by their own running RMS,
// so an alpha whose gradient is at round-off level moves by up to lr either way. An indexing or
// formula error is O(1). Running means of channels whose batch mean is itself a cancellation
// (avg-pool of zero-mean BN outputs, ~1e-5) are compared against a floor of 1e-3 per element.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/storage.h"
#include "kernels/cuda/device.h"
#include "nas/genotype.h"
#include "tests/test_nas_util.h"

#if defined(ASAP_CUDA_EMU)
#include "kernels/cuda/stats.h"
#include "kernels/cuda_emu/emulator.h"
#endif
#include "tests/cuda/test_cuda_util.h"

using namespace asap;
using asap::test::rel_l2;
using asap::test::cuda_ready;
using namespace asap::nas;
using namespace asap::nas::test;

namespace {

// ||got - ref|| / max(||ref||, floor * sqrt(n)).
double rel_l2_floor(const Tensor& got, const Tensor& ref, double floor) {
  const double n = static_cast<double>(ref.numel());
  const double r = rel_l2(got, ref);
  const std::vector<double> b = ref.to_vector_f64();
  double den = 0;
  for (double v : b) den += v * v;
  den = std::sqrt(den);
  return r * den / std::max(den, floor * std::sqrt(n));
}

double rel(double a, double b) { return std::fabs(a - b) / std::max(1e-12, std::fabs(b)); }

// Every parameter, buffer and both alpha tensors agree within `tol`.
void check_state(const Searcher& gpu, const Searcher& cpu, double tol, double alpha_tol) {
  const auto pg = gpu.network().named_parameters(), pc = cpu.network().named_parameters();
  REQUIRE(pg.size() == pc.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    INFO("parameter " << pc[i].first);
    REQUIRE(pg[i].first == pc[i].first);
    CHECK(pg[i].second.device().is_cuda());
    CHECK(rel_l2(pg[i].second, pc[i].second) <= tol);
  }
  const auto bg = gpu.network().named_buffers(), bc = cpu.network().named_buffers();
  REQUIRE(bg.size() == bc.size());
  for (size_t i = 0; i < bc.size(); ++i) {
    INFO("buffer " << bc[i].first);
    CHECK(rel_l2_floor(bg[i].second, bc[i].second, 1e-3) <= tol);
  }
  for (CellType t : {CellType::Normal, CellType::Reduce}) {
    INFO("alphas " << cell_type_name(t));
    CHECK(rel_l2(gpu.network().alpha(t), cpu.network().alpha(t)) <= alpha_tol);
  }
}

void check_step(const StepInfo& g, const StepInfo& c) {
  CHECK(rel(g.train_loss, c.train_loss) <= 1e-4);
  CHECK(rel(g.val_loss, c.val_loss) <= 1e-4);
  CHECK(g.train_acc == Approx(c.train_acc).margin(1e-9));
  CHECK(g.val_acc == Approx(c.val_acc).margin(1e-9));
}

int op_index(const SearchNetwork& net, const std::string& name) {
  const auto& p = net.primitives();
  return static_cast<int>(std::find(p.begin(), p.end(), name) - p.begin());
}

}  // namespace

TEST_CASE("cuda search step: forward, backward, SGD and Adam steps, a prune and re-plan equal the CPU",
          "[cuda-step]") {
  ASAP_SKIP_WITHOUT_CUDA();
  SearchConfig cfg = tiny_search_config(5);
  Searcher cpu(cfg), gpu(cfg, Device::cuda());
  check_state(gpu, cpu, 1e-6, 1e-6);  // same Philox initialisation on both devices
  FixedSource tr(2, 6, 1, 8, 4, 300), va(2, 6, 1, 8, 4, 400);
  for (int i = 0; i < 2; ++i) {
    INFO("step " << i);
    check_step(gpu.step(tr.batches[i], &va.batches[i]), cpu.step(tr.batches[i], &va.batches[i]));
  }
  check_state(gpu, cpu, 1e-3, 2e-3);
  // Prune a sep conv on one edge and every max pool of the reduce cells: the plan is rebuilt on
  // both devices and the following steps run the smaller network.
  for (Searcher* s : {&cpu, &gpu}) {
    s->prune(CellType::Normal, 0, op_index(s->network(), "sep_conv_3x3"));
    for (int e = 0; e < s->network().num_edges(); ++e)
      s->prune(CellType::Reduce, e, op_index(s->network(), "max_pool_3x3"));
  }
  CHECK(gpu.network().sparsity() == cpu.network().sparsity());
  CHECK(gpu.network().parameter_count() == cpu.network().parameter_count());
  for (int i = 0; i < 2; ++i) {
    INFO("step after prune " << i);
    check_step(gpu.step(tr.batches[i], &va.batches[i]), cpu.step(tr.batches[i], &va.batches[i]));
  }
  check_state(gpu, cpu, 1e-3, 2e-3);
  // Evaluation (BN running statistics, no tape).
  const EvalStats eg = gpu.evaluate(va.source()), ec = cpu.evaluate(va.source());
  CHECK(rel(eg.loss, ec.loss) <= 1e-4);
  CHECK(tape_size() == 0);
}

#if defined(ASAP_CUDA_EMU)
TEST_CASE("cuda search step: the backend's counters equal the emulated runtime's ground truth", "[cuda-step]") {
  SearchConfig cfg = tiny_search_config(5);
  Searcher gpu(cfg, Device::cuda());
  FixedSource tr(2, 6, 1, 8, 4, 300), va(2, 6, 1, 8, 4, 400);
  gpu.step(tr.batches[0], &va.batches[0]);  // warm the caches (handles, allocator)
  const cuda::stats::Snapshot s0 = cuda::stats::snapshot();
  const cuda_emu::Counters e0 = cuda_emu::counters();
  gpu.step(tr.batches[1], &va.batches[1]);
  const cuda::stats::Snapshot d = cuda::stats::diff(cuda::stats::snapshot(), s0);
  const cuda_emu::Counters e1 = cuda_emu::counters();
  INFO("launches " << d.launches << ", host syncs " << d.host_syncs << ", BLAS " << d.blas_calls);
  CHECK(d.launches > 100);
  CHECK(d.launches == e1.launches - e0.launches);
  CHECK(d.host_syncs == e1.host_syncs - e0.host_syncs);
  CHECK(d.bytes_h2d == e1.bytes_h2d - e0.bytes_h2d);
  CHECK(d.bytes_d2h == e1.bytes_d2h - e0.bytes_d2h);
  CHECK(d.bytes_d2d == e1.bytes_d2d - e0.bytes_d2d);
  CHECK(d.blas_calls == e1.blas_calls - e0.blas_calls);
  // Per kernel as well: the emulator counts by the same launch-site expression.
  for (const auto& [name, n] : d.launches_by_kernel) {
    INFO("kernel " << name);
    auto it = e1.launches_by_kernel.find(name);
    const uint64_t before = e0.launches_by_kernel.count(name) ? e0.launches_by_kernel.at(name) : 0;
    REQUIRE(it != e1.launches_by_kernel.end());
    CHECK(n == it->second - before);
  }
}
#endif
