// The evaluation network as an ONNX model (eval mode, no auxiliary head), encoded by hand with
// protobuf_writer.h. Ops: Conv (depthwise through `group`, dilations), BatchNormalization with the
// running statistics, Relu, MaxPool, AveragePool (count_include_pad = 0, as DARTS), Slice for
// FactorizedReduce's x[:, :, 1:, 1:], Add, Concat, GlobalAveragePool, Flatten, Gemm.
#pragma once
#include <string>

#include "tools/export/model_file.h"

namespace asap::exporting {

struct OnnxOptions {
  int opset = 13;      // 13..17: every op used has the same inference semantics there
  int64_t batch = 0;   // 0: a dynamic batch dimension ("batch"); > 0: fixed
};

// The serialised ModelProto. Weights come from `net` (named as in model.safetensors);
// metadata_props hold the normalisation (mean, std), num_classes, the genotype and the dataset.
std::string export_onnx(const LoadedModel& model, const OnnxOptions& opt);

}  // namespace asap::exporting
