// Names of the evaluation network's tensors as quark0/darts NetworkCIFAR state_dict keys
// (cnn/model.py, cnn/operations.py), so that PyTorch's load_state_dict(strict=True) takes our
// weights. The engine's modules name their parts (conv, bn, dw1, ...) where DARTS numbers the
// layers of nn.Sequential blocks, and "ops" is DARTS's "_ops".
#pragma once
#include <string>
#include <vector>

#include "nas/genotype.h"

namespace asap::exporting {

// engine_name: a key of EvalNetwork::named_parameters()/named_buffers(). The genotype tells which
// primitive sits at cells.K.ops.I; reduction_cells which cells reduce (so which preprocess0 is a
// FactorizedReduce). Throws asap::Error on a name the mapping does not know.
std::string darts_name(const std::string& engine_name, const nas::Genotype& g,
                       const std::vector<int>& reduction_cells);

}  // namespace asap::exporting
