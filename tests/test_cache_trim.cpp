// The caching allocators' trim (engine/storage.h): after a mark, a trim frees exactly the cached
// blocks the workload since the mark did not need, per size class, and keeps what it did need, so
// a search's memory follows its shrinking plan (Searcher::step marks and trims at each re-plan).
#include <catch2/catch.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "engine/storage.h"
#include "engine/tensor.h"
#include "kernels/cuda/device.h"
#include "tests/test_nas_util.h"
#include "tests/cuda/test_cuda_util.h"
#include "tools/stage_common.h"

using namespace asap;

namespace {

void trim_case(Device dev) {
  INFO(dev.str());
  // Start from an empty cache: a mark and a trim with nothing in between free every cached block
  // (earlier tests in this process left some).
  mark_memory_cache(dev);
  trim_memory_cache(dev);
  const Shape big{12347}, small{3001};
  {
    std::vector<Tensor> dense;
    for (int i = 0; i < 6; ++i) dense.push_back(Tensor::empty(big, DType::F32, dev));
    for (int i = 0; i < 4; ++i) dense.push_back(Tensor::empty(small, DType::F32, dev));
  }  // the "dense plan": 6 big and 4 small blocks now cached
  const size_t reserved_dense = reserved_bytes(dev);
  mark_memory_cache(dev);
  {
    std::vector<Tensor> sparse;  // the new plan needs 2 big blocks at once and no small one
    for (int i = 0; i < 2; ++i) sparse.push_back(Tensor::empty(big, DType::F32, dev));
  }
  const size_t freed = trim_memory_cache(dev);
  // 4 big + 4 small blocks released (each rounded up by at most 4 KiB), not the 2 big ones the new
  // plan used.
  CHECK(freed >= 4 * 12347 * 4 + 4 * 3001 * 4);
  CHECK(freed <= 4 * 12347 * 4 + 4 * 3001 * 4 + 8 * 4096);
  CHECK(reserved_bytes(dev) == reserved_dense - freed);
  // The 2 kept blocks serve the next step without growing the reservation.
  const size_t before = reserved_bytes(dev);
  {
    Tensor a = Tensor::empty(big, DType::F32, dev), b = Tensor::empty(big, DType::F32, dev);
    CHECK(reserved_bytes(dev) == before);
  }
  // A second trim with nothing new marked keeps them: they were needed since the mark.
  CHECK(trim_memory_cache(dev) == 0);
}

}  // namespace

TEST_CASE("allocator cache trim frees what the workload since the mark did not need (CPU)", "[memory]") {
  trim_case(Device::cpu());
}

// Not under AddressSanitizer: its allocator replaces glibc's and holds freed memory in quarantine.
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
TEST_CASE("a CPU cache trim gives the memory back to the OS: the resident set falls", "[memory]") {
  const Device cpu = Device::cpu();
  mark_memory_cache(cpu);
  trim_memory_cache(cpu);
  // The search's situation, made deterministic: the blocks come from glibc's heap (as they do once
  // its dynamic mmap threshold has risen) and freeing them does not shrink the heap by itself
  // (as when live allocations sit above them). free() alone then keeps every page resident.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  {
    std::vector<Tensor> dense;  // 48 blocks of 4 MB, each written so its pages are resident
    for (int i = 0; i < 48; ++i) {
      dense.push_back(Tensor::empty(Shape{1 << 20}, DType::F32, cpu));
      dense.back().fill_(1.0 + i);
    }
  }
  const double cached_mb = run::resident_memory_mb();
  mark_memory_cache(cpu);
  CHECK(trim_memory_cache(cpu) >= size_t(48) << 22);
  const double trimmed_mb = run::resident_memory_mb();
  mallopt(M_MMAP_THRESHOLD, 128 << 10);  // glibc's defaults
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  INFO("resident " << cached_mb << " MB with the blocks cached, " << trimmed_mb << " MB after the trim");
  CHECK(cached_mb - trimmed_mb >= 150.0);  // of the 192 MB cached
}
#endif

TEST_CASE("allocator cache trim frees what the workload since the mark did not need (CUDA)", "[memory][cuda]") {
  ASAP_SKIP_WITHOUT_CUDA();
  trim_case(Device::cuda());
}

TEST_CASE("a search's reserved memory falls after re-plans", "[memory][nas]") {
  nas::SearchConfig c = nas::test::tiny_search_config(5);
  c.net.C = 4;
  c.net.layers = 2;
  c.epochs = 3;
  c.anneal.warmup_epochs = 0;
  c.anneal.T0 = 0.05;  // cold: most ops are pruned within the first epoch
  c.anneal.beta = 0.9;
  c.stop_when_converged = false;
  nas::Searcher s(c, Device::cpu());
  nas::test::FixedSource train(6, 8, 1, 8, 4, 100), val(6, 8, 1, 8, 4, 200);
  (void)s.run_epoch(train.source(), val.source());
  const double sparsity_after_first = s.network().sparsity();
  const size_t reserved_after_first = reserved_bytes(Device::cpu());
  (void)s.run_epoch(train.source(), val.source());
  (void)s.run_epoch(train.source(), val.source());
  INFO("sparsity " << sparsity_after_first << " -> " << s.network().sparsity());
  REQUIRE(s.network().sparsity() > sparsity_after_first);
  CHECK(reserved_bytes(Device::cpu()) < reserved_after_first);
}
