#include "tools/stage_common.h"

#include <unistd.h>

#include <fstream>

#include <omp.h>

#include <mutex>

#include "data/augment.h"
#include "engine/error.h"
#include "engine/storage.h"

namespace asap::run {

Device resolve_device(const std::string& name) {
  if (name == "auto") {
#if defined(ASAP_CUDA_EMU)
    // The emulated device is for checking the CUDA code, hundreds of times slower than the CPU
    // backend: only an explicit run.device: cuda selects it.
    return Device::cpu();
#endif
    if (backend_available(DeviceType::CUDA)) {
      try {
        Tensor probe = Tensor::empty(Shape{1}, DType::F32, Device::cuda(0));
        return Device::cuda(0);
      } catch (const Error&) {
        // Built with CUDA but no usable device here: fall back to the CPU.
      }
    }
    return Device::cpu();
  }
  Device d = parse_device(name);
  if (d.is_cuda() && !backend_available(DeviceType::CUDA))
    throw ConfigError("run.device is '" + name + "' but this build has no CUDA backend (configure with -DASAP_CUDA=ON)");
  return d;
}

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

std::shared_ptr<const data::Dataset> stage_dataset(const RunConfig& c, data::SplitKind split) {
  static std::map<std::string, std::shared_ptr<const data::Dataset>> cache;
  static std::mutex mu;
  const std::string key = c.data.dataset + "\n" + c.data.root + "\n" + (split == data::SplitKind::Train ? "train" : "test");
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[key];
  if (!slot)
    slot = std::make_shared<const data::Dataset>(
        data::load_dataset(data::parse_dataset_kind(c.data.dataset), c.data.root, split));
  return slot;
}

data::LoaderOptions loader_options(const RunConfig& c, data::DatasetKind kind, int64_t batch_size, uint64_t seed,
                                   Device dev, bool train_augment, bool cutout) {
  data::LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = train_augment;
  o.drop_last = false;
  o.prefetch = c.data.prefetch;
  o.seed = seed;
  o.device = dev;
  if (c.data.normalize) o.augment.norm = data::default_normalization(kind);
  if (train_augment) {
    o.augment.crop_pad = c.data.crop_padding;
    o.augment.hflip = c.data.flip;
    if (cutout) o.augment.cutout = c.data.cutout;
  }
  return o;
}

double peak_memory_mb(Device dev) {
  if (!dev.is_cuda()) return cpu_peak_bytes() / 1048576.0;
  const AllocatorTable& t = allocator_table(DeviceType::CUDA);
  return t.peak_bytes ? t.peak_bytes(dev.index) / 1048576.0 : 0.0;
}

double reserved_memory_mb(Device dev) { return reserved_bytes(dev) / 1048576.0; }

double resident_memory_mb() {
  std::ifstream f("/proc/self/statm");
  long long pages_total = 0, pages_resident = 0;
  if (!(f >> pages_total >> pages_resident)) return 0.0;
  return double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

void reset_peak_memory(Device dev) {
  if (!dev.is_cuda()) {
    cpu_reset_peak();
    return;
  }
  const AllocatorTable& t = allocator_table(DeviceType::CUDA);
  if (t.reset_peak) t.reset_peak(dev.index);
}

}  // namespace asap::run
