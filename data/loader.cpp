#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <iostream>

#include "data/seed.h"
#include "data/split.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace asap::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> data, std::vector<int64_t> indices, LoaderOptions opt)
    : data_(std::move(data)), indices_(std::move(indices)), opt_(std::move(opt)) {
  ASAP_CHECK(data_ != nullptr, "DataLoader: no dataset");
  ASAP_CHECK_T(ConfigError, opt_.batch_size > 0, "batch size ", opt_.batch_size, " must be positive");
  for (int64_t i : indices_)
    ASAP_CHECK(i >= 0 && i < data_->size(), "DataLoader: sample index ", i, " outside dataset of ", data_->size());
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = num_samples(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  if (!opt_.shuffle) return indices_;
  std::vector<int64_t> perm = seeded_permutation(num_samples(), mix_seed(opt_.seed, kStreamOrder, epoch));
  std::vector<int64_t> order(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) order[i] = indices_[perm[i]];
  return order;
}

DataLoader::HostBatch DataLoader::build(const std::vector<int64_t>& order, int64_t epoch, int64_t k) const {
  const int64_t begin = k * opt_.batch_size;
  const int64_t b = std::min(opt_.batch_size, num_samples() - begin);
  ASAP_CHECK(b > 0, "DataLoader: batch ", k, " is past the end of the epoch (", batches_per_epoch(), " batches)");
  const Dataset& d = *data_;
  const int64_t elems = d.sample_elems();
  HostBatch hb;
  hb.k = k;
  hb.images.resize(b * elems);
  hb.labels.resize(b);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t idx = order[begin + i];
    // Keyed by the sample, not its slot: the same image gets the same augmentation in an epoch
    // whatever the batch size or order.
    Generator g(mix_seed(opt_.seed, kStreamAugment, epoch, idx));
    augment_sample(d.image(idx), hb.images.data() + i * elems, d.C, d.H, d.W, opt_.augment, g);
    hb.labels[i] = d.labels[idx];
  }
  return hb;
}

Batch DataLoader::to_batch(HostBatch&& hb, int64_t epoch) const {
  const Dataset& d = *data_;
  const int64_t b = static_cast<int64_t>(hb.labels.size());
  Batch out;
  out.epoch = epoch;
  out.index = hb.k;
  out.images = Tensor::from_vector(hb.images, Shape{b, d.C, d.H, d.W});
  out.labels = Tensor::empty(Shape{b}, DType::I32);
  std::memcpy(out.labels.data<int32_t>(), hb.labels.data(), b * sizeof(int32_t));
  if (opt_.device != Device::cpu()) {
    out.images = out.images.to(opt_.device);
    out.labels = out.labels.to(opt_.device);
  }
  return out;
}

Batch DataLoader::batch_at(int64_t epoch, int64_t k) const {
  ASAP_CHECK(k >= 0 && k < batches_per_epoch(), "DataLoader: batch ", k, " outside 0..", batches_per_epoch() - 1);
  return to_batch(build(epoch_order(epoch), epoch, k), epoch);
}

void DataLoader::stop_worker() noexcept {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    try {
      worker_.join();
    } catch (const std::exception& e) {
      std::cerr << "DataLoader: joining the prefetch thread failed: " << e.what() << "\n";
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
  stop_ = false;
}

void DataLoader::worker_loop(std::shared_ptr<const std::vector<int64_t>> order, int64_t epoch, int64_t first,
                             int64_t end) {
  for (int64_t k = first; k < end; ++k) {
    HostBatch hb;
    try {
      hb = build(*order, epoch, k);
    } catch (...) {
      hb.k = k;
      hb.error = std::current_exception();
    }
    const bool failed = hb.error != nullptr;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || queue_.size() < kQueueDepth; });
    if (stop_) return;
    queue_.push_back(std::move(hb));
    lock.unlock();
    cv_.notify_all();
    if (failed) return;  // the consumer rethrows and ends the epoch
  }
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop_worker();
  const int64_t nb = batches_per_epoch();
  ASAP_CHECK(first_batch >= 0 && first_batch <= nb, "DataLoader: cannot start epoch ", epoch, " at batch ",
             first_batch, " of ", nb);
  epoch_ = epoch;
  next_k_ = first_batch;
  end_k_ = nb;
  order_ = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  if (opt_.prefetch && first_batch < nb)
    worker_ = std::thread(&DataLoader::worker_loop, this, order_, epoch, first_batch, nb);
}

bool DataLoader::next(Batch& out) {
  if (next_k_ >= end_k_) return false;
  HostBatch hb;
  if (opt_.prefetch) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty(); });
    hb = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    cv_.notify_all();
    if (hb.error) {
      next_k_ = end_k_;  // the worker has stopped: this epoch yields nothing more
      std::rethrow_exception(hb.error);
    }
  } else {
    hb = build(*order_, epoch_, next_k_);
  }
  ++next_k_;
  out = to_batch(std::move(hb), epoch_);
  return true;
}

Batch DataLoader::next_cycling() {
  Batch b;
  if (next(b)) return b;
  start_epoch(end_k_ == 0 ? 0 : epoch_ + 1);
  ASAP_CHECK(next(b), "DataLoader: an epoch has no batches (", num_samples(), " samples, batch size ",
             opt_.batch_size, ", drop_last)");
  return b;
}

}  // namespace asap::data
