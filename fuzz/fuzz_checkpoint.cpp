// The whole asap_run checkpoint loader (safetensors + checksum + state schema), as --resume uses
// it. Input: one mode byte, then the file. Mode bit 0 set: the harness first re-seals the file
// (if it parses as safetensors) with the correct checksum, so mutations reach the state schema
// instead of stopping at the CRC. Only asap::Error may escape; a checkpoint that loads must save
// and load again to the same state and tensors, under both the search and the train schema.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "fuzz_util.h"
#include "tools/checkpoint.h"

using namespace asap;

namespace {

struct ScratchDir {  // a tmpfs folder for the re-sealed and round-trip files, removed at exit
  std::string path;
  ScratchDir() {
    char tmpl[] = "/dev/shm/asap_fuzz_ck_XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path = tmpl;
  }
  ~ScratchDir() {
    ::unlink((path + "/sealed.safetensors").c_str());
    ::unlink((path + "/copy.safetensors").c_str());
    ::rmdir(path.c_str());
  }
};

const run::RunConfig& config() {  // the quick start's network shape: 4 nodes, the DARTS ops
  static const run::RunConfig c = run::parse_config("search:\n  epochs: 50\ntrain:\n  epochs: 20\n", "fuzz.yaml");
  return c;
}

void check(const std::string& path, const run::CheckpointSchema& schema, const std::string& copy) {
  run::Checkpoint ck;
  try {
    ck = run::load_checkpoint(path, schema);
  } catch (const Error&) {
    return;
  }
  run::Checkpoint back;
  try {
    run::save_checkpoint(copy, ck.tensors, ck.state);
    back = run::load_checkpoint(copy, schema);
  } catch (const Error& e) {
    std::fprintf(stderr, "round trip failed: %s\n", e.what());
    FUZZ_ASSERT(false, "a loaded checkpoint saves and loads again");
  }
  FUZZ_ASSERT(back.state == ck.state, "state round trip");
  FUZZ_ASSERT(back.tensors.size() == ck.tensors.size(), "tensor count round trip");
  for (const auto& [name, t] : ck.tensors) {
    auto it = back.tensors.find(name);
    FUZZ_ASSERT(it != back.tensors.end() && it->second.shape() == t.shape() && it->second.dtype() == t.dtype(),
                "tensor names, shapes and dtypes round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const ScratchDir dir;
  const bool reseal = data[0] & 1;
  fuzz::MemFile f(data + 1, size - 1);
  std::string path = f.path();
  if (reseal) {
    SafetensorsFile st;
    try {
      st = load_safetensors(path);
    } catch (const Error&) {
      return 0;
    }
    st.metadata["checksum"] = run::checkpoint_checksum(st.metadata["state"], st.as_map());
    path = dir.path + "/sealed.safetensors";
    try {
      save_safetensors(path, st.tensors, st.metadata);
    } catch (const Error&) {
      return 0;  // e.g. names the writer refuses
    }
  }
  const std::string copy = dir.path + "/copy.safetensors";
  check(path, run::search_schema(config()), copy);
  check(path, run::train_schema(config()), copy);
  return 0;
}
