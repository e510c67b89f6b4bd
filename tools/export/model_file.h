// RUN/model.safetensors: the trained evaluation network's parameters and BN running statistics
// under quark0/darts NetworkCIFAR state_dict names (darts_names.h), plus what is needed to rebuild
// it in the safetensors metadata: "genotype" (DARTS text), "network" (JSON: C, layers,
// stem_multiplier, in_channels, num_classes, auxiliary, input_size, reduction_cells),
// "normalization" (JSON: mean, std per channel of pixel/255) and "dataset". PyTorch
// (tools/pytorch/asap_torch.py), asap_export and asap_predict all read this one file.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"
#include "nas/eval_network.h"
#include "nas/genotype.h"

namespace asap::exporting {

struct ModelInfo {
  nas::Genotype genotype;
  nas::EvalNetworkConfig net;   // reduction_cells resolved (never empty)
  data::Normalization norm;     // empty: inputs are pixel/255
  std::string dataset;
};

inline constexpr const char* kModelFormat = "asap-engine/darts-NetworkCIFAR/1";

// Resolves the default reduction cells ({layers/3, 2*layers/3}) as EvalNetwork does.
nas::EvalNetworkConfig resolved(nas::EvalNetworkConfig c);

// Writes atomically; throws asap::IoError.
void write_model_file(const std::string& path, const nas::EvalNetwork& net, const ModelInfo& info);

struct LoadedModel {
  ModelInfo info;
  std::unique_ptr<nas::EvalNetwork> net;  // CPU, eval mode
};
// Rebuilds the network and loads every tensor; throws asap::IoError when the file is not a model
// file, a tensor is missing, has the wrong shape, or the file holds a tensor the network lacks.
LoadedModel load_model_file(const std::string& path);

}  // namespace asap::exporting
