// Genotype readers: the DARTS repr text parser (train.genotype, genotype.txt) and, for inputs
// that start with '{', genotype_from_json (genotype.json, train.genotype=file.json). Only
// asap::Error may escape. A genotype that loads must round-trip through text and JSON unchanged.
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "fuzz_util.h"
#include "nas/genotype.h"

using namespace asap;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  nas::Genotype g;
  try {
    if (!text.empty() && text[0] == '{') {
      nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return 0;
      g = nas::genotype_from_json(j);
    } else {
      g = nas::parse_genotype(text);
    }
  } catch (const Error&) {
    return 0;
  }
  try {
    FUZZ_ASSERT(nas::parse_genotype(nas::to_text(g)) == g, "text round trip");
    FUZZ_ASSERT(nas::genotype_from_json(nas::to_json(g)) == g, "JSON round trip");
  } catch (const Error& e) {
    std::fprintf(stderr, "round trip rejected: %s\n", e.what());
    std::abort();
  }
  return 0;
}
