// IDX (MNIST / Fashion-MNIST) reader. The first byte picks the entry point:
//   0: parse_idx_images, 1: parse_idx_labels (num_classes from the second byte),
//   2: load_idx on two in-memory files (raw or gzip; the split point from bytes 1-2).
// Only asap::Error may escape; what parses must be self-consistent.
#include <cstdint>
#include <vector>

#include "data/idx.h"
#include "engine/error.h"
#include "fuzz_util.h"

using namespace asap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  try {
    if (mode == 0) {
      std::vector<uint8_t> b(data + 1, data + size);
      data::IdxImages im = data::parse_idx_images(b, "fuzz-images");
      FUZZ_ASSERT(im.rows > 0 && im.cols > 0, "image size");
      FUZZ_ASSERT(im.pixels.size() == static_cast<size_t>(im.count) * im.rows * im.cols, "pixel count");
    } else if (mode == 1) {
      if (size < 2) return 0;
      const int classes = 1 + data[1] % 255;
      std::vector<uint8_t> b(data + 2, data + size);
      std::vector<int32_t> l = data::parse_idx_labels(b, "fuzz-labels", classes);
      for (int32_t v : l) FUZZ_ASSERT(v >= 0 && v < classes, "label range");
    } else {
      if (size < 3) return 0;
      const size_t rest = size - 3;
      const size_t cut = rest ? ((size_t(data[1]) << 8 | data[2]) % (rest + 1)) : 0;
      fuzz::MemFile images(data + 3, cut), labels(data + 3 + cut, rest - cut);
      data::Dataset d = data::load_idx(images.path(), labels.path(), 10);
      FUZZ_ASSERT(d.C == 1 && d.H > 0 && d.W > 0, "dataset shape");
      FUZZ_ASSERT(d.images.size() == static_cast<size_t>(d.size()) * d.sample_elems(), "dataset size");
    }
  } catch (const Error&) {
  }
  return 0;
}
