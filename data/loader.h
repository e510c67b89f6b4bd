// Batches of (images [B,C,H,W] float32, labels [B] int32) from a Dataset and an index list.
// A batch is a pure function of (seed, epoch, batch index): the epoch order comes from a seed
// derived from (seed, epoch), each sample's augmentation from (seed, epoch, sample index). So
// prefetching, thread timing and resuming at batch k of epoch e never change what is produced.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "engine/tensor.h"

namespace asap::data {

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;     // a fresh seeded order every epoch; false: index-list order
  bool drop_last = false;  // drop the final short batch
  bool prefetch = true;    // build the next batches on a background thread (queue of 2)
  uint64_t seed = 0;
  Device device = Device::cpu();  // batches are moved here (Tensor::to) before next() returns
  AugmentConfig augment;          // set augment.norm even when no augmentation is wanted
};

struct Batch {
  Tensor images;  // [B, C, H, W] float32 on options.device
  Tensor labels;  // [B] int32 on options.device
  int64_t epoch = 0, index = 0;
};

class DataLoader {
 public:
  // `indices` selects and orders the samples (a split half, a subset, or first_indices(n)).
  DataLoader(std::shared_ptr<const Dataset> data, std::vector<int64_t> indices, LoaderOptions opt);
  ~DataLoader();  // stops and joins the worker; never throws
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_samples() const { return static_cast<int64_t>(indices_.size()); }
  int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return opt_; }

  // Begins epoch `epoch` at batch `first_batch` (resume); cancels any epoch in progress.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch; false when the epoch is done (or none was started).
  // An exception thrown while building a batch on the worker is rethrown here.
  bool next(Batch& out);
  // Like next(), but at the end of an epoch starts the next one: for a loader consumed in lockstep
  // with another (DARTS's validation batches for the architecture step).
  Batch next_cycling();
  int64_t epoch() const { return epoch_; }
  int64_t next_batch_index() const { return next_k_; }

  // Synchronous, stateless: batch k of epoch e exactly as next() would give it.
  Batch batch_at(int64_t epoch, int64_t k) const;
  // Sample indices of epoch e in the order batches take them.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  struct HostBatch {
    std::vector<float> images;
    std::vector<int32_t> labels;
    int64_t k = 0;
    std::exception_ptr error;
  };
  HostBatch build(const std::vector<int64_t>& order, int64_t epoch, int64_t k) const;
  Batch to_batch(HostBatch&& hb, int64_t epoch) const;
  void stop_worker() noexcept;
  void worker_loop(std::shared_ptr<const std::vector<int64_t>> order, int64_t epoch, int64_t first, int64_t end);

  std::shared_ptr<const Dataset> data_;
  std::vector<int64_t> indices_;
  LoaderOptions opt_;

  int64_t epoch_ = 0, next_k_ = 0, end_k_ = 0;  // end_k_ == 0: no epoch started
  std::shared_ptr<const std::vector<int64_t>> order_;

  // Prefetch worker state, guarded by mu_. Batches are built on the worker as plain host vectors
  // and become Tensors on the consumer thread, so the engine's allocator and device copies are
  // only ever called from the thread that owns the training loop.
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HostBatch> queue_;
  bool stop_ = false;
  static constexpr size_t kQueueDepth = 2;
};

}  // namespace asap::data
