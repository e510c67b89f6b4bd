// The primitive registry: DARTS operations built by name (tiny-cuda-nn style: a registry of named
// components created from config that throws, listing the known names, on an unknown one).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nas/module.h"

namespace asap::nas {

// The DARTS order (index = position in the alpha matrices unless a config gives another list).
const std::vector<std::string>& darts_primitives();
// Every name the registry can build.
std::vector<std::string> known_primitives();
bool is_known_primitive(const std::string& name);

struct PrimitiveArgs {
  int64_t C = 16;
  int stride = 1;
  bool affine = false;   // BN affine: off in the search network, on in the evaluation network
  bool pool_bn = true;   // BN after pooling: the search network's MixedOp adds it, DARTS eval does not
  Device device = Device::cpu();
};

// Builds one operation; throws asap::Error naming the known primitives on an unknown name.
std::unique_ptr<Module> make_primitive(const std::string& name, const PrimitiveArgs& a, Generator& gen);

// Throws unless every name is known, there are no duplicates, and `none` (if present) is allowed.
void validate_primitive_list(const std::vector<std::string>& names);

}  // namespace asap::nas
