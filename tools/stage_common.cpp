#include "tools/stage_common.h"

#include <omp.h>

#include "data/augment.h"
#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "engine/storage.h"

namespace asap::run {

Device resolve_device(const std::string& name) {
  if (name == "auto") {
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

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors,
                     const nlohmann::json& state) {
  save_safetensors(path, tensors, {{"state", state.dump()}, {"format", "asap-checkpoint-v1"}});
}

std::pair<std::map<std::string, Tensor>, nlohmann::json> load_checkpoint(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("state");
  if (it == f.metadata.end() || f.metadata["format"] != "asap-checkpoint-v1")
    throw IoError(path + ": not an asap checkpoint (metadata 'state'/'format' missing)");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IoError(path + ": checkpoint state is not valid JSON");
  return {f.as_map(), j};
}

double peak_memory_mb(Device dev) {
  if (!dev.is_cuda()) return cpu_peak_bytes() / 1048576.0;
  const AllocatorTable& t = allocator_table(DeviceType::CUDA);
  return t.peak_bytes ? t.peak_bytes(dev.index) / 1048576.0 : 0.0;
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
