// safetensors loader (checkpoints): the input is the whole file, read through an in-memory file.
// Only asap::Error may escape. A file that loads must hold readable tensors whose sizes add up to
// the data section, and saving it again then loading the copy must give the same tensors.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "fuzz_util.h"

using namespace asap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::MemFile f(data, size);
  SafetensorsFile st;
  try {
    st = load_safetensors(f.path());
  } catch (const Error&) {
    return 0;
  }
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i) header |= uint64_t(data[i]) << (8 * i);
  uint64_t total = 0;
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : st.tensors) {
    // The declared size, computed without overflow, must be what the tensor really holds.
    unsigned __int128 declared = dtype_size(t.dtype());
    for (int64_t d : t.shape()) declared *= static_cast<unsigned __int128>(d);
    FUZZ_ASSERT(declared == t.nbytes() && declared <= size, "tensor size = shape x dtype, within the file");
    const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
    for (size_t i = 0; i < t.nbytes(); ++i) sink = sink ^ p[i];  // ASan checks every byte is ours
    total += t.nbytes();
    FUZZ_ASSERT(st.has(name), "has()");
  }
  FUZZ_ASSERT(total == size - 8 - header, "tensors cover the data section");

  // Round trip through the writer (atomic save into a tmpfs folder made once per process).
  struct ScratchDir {  // removed at exit, so runs leave nothing behind in /dev/shm
    std::string path;
    ScratchDir() {
      char tmpl[] = "/dev/shm/asap_fuzz_st_XXXXXX";
      if (!::mkdtemp(tmpl)) std::abort();
      path = tmpl;
    }
    ~ScratchDir() {
      ::unlink((path + "/copy.safetensors").c_str());
      ::rmdir(path.c_str());
    }
  };
  static const ScratchDir dir;
  const std::string copy = dir.path + "/copy.safetensors";
  SafetensorsFile back;
  try {
    save_safetensors(copy, st.tensors, st.metadata);
    back = load_safetensors(copy);
  } catch (const Error& e) {
    std::fprintf(stderr, "round trip rejected: %s\n", e.what());
    std::abort();
  }
  FUZZ_ASSERT(back.metadata == st.metadata, "metadata round trip");
  FUZZ_ASSERT(back.tensors.size() == st.tensors.size(), "tensor count round trip");
  for (size_t i = 0; i < st.tensors.size(); ++i) {
    const Tensor &a = st.tensors[i].second, &b = back.tensors[i].second;
    FUZZ_ASSERT(back.tensors[i].first == st.tensors[i].first, "name round trip");
    FUZZ_ASSERT(a.shape() == b.shape() && a.dtype() == b.dtype(), "shape/dtype round trip");
    FUZZ_ASSERT(a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0, "bytes round trip");
  }
  return 0;
}
