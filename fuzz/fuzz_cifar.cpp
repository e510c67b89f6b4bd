// CIFAR-10/100 binary reader. First byte: 0 parse_cifar10, 1 parse_cifar100, 2 both files
// appended to one data set (the split point from bytes 1-2), 3 load_cifar10 on an in-memory file.
// Only asap::Error may escape; what parses must be self-consistent.
#include <cstdint>
#include <vector>

#include "data/cifar.h"
#include "engine/error.h"
#include "fuzz_util.h"

using namespace asap;

namespace {
void check(const data::Dataset& d) {
  FUZZ_ASSERT(d.C == 3 && d.H == 32 && d.W == 32, "shape");
  FUZZ_ASSERT(d.images.size() == static_cast<size_t>(d.size()) * data::kCifarPixels, "size");
  for (int32_t v : d.labels) FUZZ_ASSERT(v >= 0 && v < d.num_classes, "label range");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int mode = data[0] % 4;
  const size_t rest = size - 3;
  const uint8_t* body = data + 3;
  data::Dataset d;
  try {
    if (mode == 0) {
      data::parse_cifar10(std::vector<uint8_t>(body, body + rest), "fuzz.bin", d);
    } else if (mode == 1) {
      data::parse_cifar100(std::vector<uint8_t>(body, body + rest), "fuzz.bin", d);
    } else if (mode == 2) {
      const size_t cut = rest ? ((size_t(data[1]) << 8 | data[2]) % (rest + 1)) : 0;
      data::parse_cifar10(std::vector<uint8_t>(body, body + cut), "a.bin", d);
      data::parse_cifar10(std::vector<uint8_t>(body + cut, body + rest), "b.bin", d);
    } else {
      fuzz::MemFile f(body, rest);
      d = data::load_cifar10({f.path()});
    }
    check(d);
  } catch (const Error&) {
  }
  return 0;
}
