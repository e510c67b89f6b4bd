#include "tools/export/onnx_export.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "tools/export/darts_names.h"
#include "tools/export/protobuf_writer.h"

namespace asap::exporting {
namespace {

// onnx.proto field numbers and enums used below.
enum : int { kFloat = 1, kInt64 = 7 };                  // TensorProto.DataType
enum : int { kAttrFloat = 1, kAttrInt = 2, kAttrInts = 7 };  // AttributeProto.AttributeType

struct Attr {
  std::string name;
  int type;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
};
Attr attr_i(const std::string& n, int64_t v) { return {n, kAttrInt, v, 0, {}}; }
Attr attr_f(const std::string& n, float v) { return {n, kAttrFloat, 0, v, {}}; }
Attr attr_ints(const std::string& n, std::vector<int64_t> v) { return {n, kAttrInts, 0, 0, std::move(v)}; }

class GraphBuilder {
 public:
  explicit GraphBuilder(std::map<std::string, Tensor> weights) : w_(std::move(weights)) {}

  // A float initializer from the model's tensor `name` (used at most once per name).
  const std::string& weight(const std::string& name) {
    auto it = w_.find(name);
    ASAP_CHECK(it != w_.end(), "onnx export: the model has no tensor '", name, "'");
    if (!emitted_.insert(name).second) return *emitted_.find(name);
    Tensor t = it->second.contiguous();
    ASAP_CHECK(t.dtype() == DType::F32, "onnx export: '", name, "' is not float32");
    PbWriter p;
    for (int d = 0; d < t.ndim(); ++d) p.int64_field(1, t.dim(d));
    p.varint_field(2, kFloat);
    p.bytes_field(8, name);
    p.bytes_field(9, t.raw_data(), t.nbytes());
    init_.push_back(p);
    return *emitted_.find(name);
  }
  std::string int64_const(const std::string& name, const std::vector<int64_t>& v) {
    if (!emitted_.insert(name).second) return name;
    PbWriter p;
    p.int64_field(1, static_cast<int64_t>(v.size()));
    p.varint_field(2, kInt64);
    p.bytes_field(8, name);
    p.bytes_field(9, v.data(), v.size() * sizeof(int64_t));
    init_.push_back(p);
    return name;
  }
  std::string node(const std::string& op, const std::vector<std::string>& in, const std::vector<Attr>& attrs = {},
                   std::string out = "") {
    if (out.empty()) out = "t" + std::to_string(nodes_.size());
    PbWriter n;
    for (const auto& i : in) n.bytes_field(1, i);
    n.bytes_field(2, out);
    n.bytes_field(3, op + "_" + std::to_string(nodes_.size()));
    n.bytes_field(4, op);
    for (const auto& a : attrs) {
      PbWriter pa;
      pa.bytes_field(1, a.name);
      if (a.type == kAttrFloat) pa.float_field(2, a.f);
      if (a.type == kAttrInt) pa.int64_field(3, a.i);
      if (a.type == kAttrInts)
        for (int64_t v : a.ints) pa.int64_field(8, v);
      pa.varint_field(20, a.type);
      n.message_field(5, pa);
    }
    nodes_.push_back(n);
    return out;
  }
  // Everything a GraphProto holds except inputs/outputs, which the caller appends.
  void write(PbWriter& g) const {
    for (const auto& n : nodes_) g.message_field(1, n);
    g.bytes_field(2, "asap_eval_network");
    for (const auto& t : init_) g.message_field(5, t);
  }
  size_t unused_weights(const std::string& skip_prefix) const {
    size_t n = 0;
    for (const auto& kv : w_)
      if (!emitted_.count(kv.first) && kv.first.rfind(skip_prefix, 0) != 0) ++n;
    return n;
  }

 private:
  std::map<std::string, Tensor> w_;
  std::set<std::string> emitted_;
  std::vector<PbWriter> nodes_, init_;
};

struct Net {
  GraphBuilder& g;
  std::string relu(const std::string& x) { return g.node("Relu", {x}); }
  // A conv with a kh x kw kernel and per-axis strides, padding and dilation (ONNX pads are
  // [top, left, bottom, right]).
  std::string conv_hw(const std::string& x, const std::string& w, int kh, int kw, int sh, int sw, int ph, int pw,
                      int dil = 1, int64_t groups = 1) {
    return g.node("Conv", {x, g.weight(w)},
                  {attr_ints("kernel_shape", {kh, kw}), attr_ints("strides", {sh, sw}),
                   attr_ints("pads", {ph, pw, ph, pw}), attr_ints("dilations", {dil, dil}),
                   attr_i("group", groups)});
  }
  std::string conv(const std::string& x, const std::string& w, int k, int stride, int pad, int dil, int64_t groups) {
    return conv_hw(x, w, k, k, stride, stride, pad, pad, dil, groups);
  }
  // Every BN of the evaluation network is affine; eval mode uses the running statistics.
  std::string bn(const std::string& x, const std::string& p) {
    return g.node("BatchNormalization",
                  {x, g.weight(p + "weight"), g.weight(p + "bias"), g.weight(p + "running_mean"),
                   g.weight(p + "running_var")},
                  {attr_f("epsilon", 1e-5f)});
  }
  std::string relu_conv_bn(const std::string& x, const std::string& p) {  // 1x1, stride 1
    return bn(conv(relu(x), p + "op.1.weight", 1, 1, 0, 1, 1), p + "op.2.");
  }
  std::string factorized_reduce(const std::string& x, const std::string& p) {
    const std::string r = relu(x);
    const int64_t big = std::numeric_limits<int64_t>::max();
    const std::string shifted = g.node("Slice", {r, g.int64_const("shift_starts", {1, 1}),
                                                 g.int64_const("shift_ends", {big, big}),
                                                 g.int64_const("shift_axes", {2, 3})});
    const std::string a = conv(r, p + "conv_1.weight", 1, 2, 0, 1, 1);
    const std::string b = conv(shifted, p + "conv_2.weight", 1, 2, 0, 1, 1);
    return bn(g.node("Concat", {a, b}, {attr_i("axis", 1)}), p + "bn.");
  }
  std::string primitive(const std::string& op, const std::string& x, int64_t C, int stride, const std::string& p) {
    const std::vector<Attr> pool = {attr_ints("kernel_shape", {3, 3}), attr_ints("strides", {stride, stride}),
                                    attr_ints("pads", {1, 1, 1, 1})};
    if (op == "max_pool_3x3") return g.node("MaxPool", {x}, pool);
    if (op == "avg_pool_3x3") {
      std::vector<Attr> a = pool;
      a.push_back(attr_i("count_include_pad", 0));
      return g.node("AveragePool", {x}, a);
    }
    if (op == "skip_connect") return stride == 1 ? x : factorized_reduce(x, p);
    const std::map<std::string, std::pair<int, int>> sep = {{"sep_conv_3x3", {3, 1}}, {"sep_conv_5x5", {5, 2}},
                                                            {"sep_conv_7x7", {7, 3}}};
    const std::map<std::string, std::pair<int, int>> dil = {{"dil_conv_3x3", {3, 2}}, {"dil_conv_5x5", {5, 4}}};
    if (auto it = sep.find(op); it != sep.end()) {
      const auto [k, pad] = it->second;
      std::string h = conv(conv(relu(x), p + "op.1.weight", k, stride, pad, 1, C), p + "op.2.weight", 1, 1, 0, 1, 1);
      h = bn(h, p + "op.3.");
      h = conv(conv(relu(h), p + "op.5.weight", k, 1, pad, 1, C), p + "op.6.weight", 1, 1, 0, 1, 1);
      return bn(h, p + "op.7.");
    }
    if (auto it = dil.find(op); it != dil.end()) {
      const auto [k, pad] = it->second;
      std::string h = conv(conv(relu(x), p + "op.1.weight", k, stride, pad, 2, C), p + "op.2.weight", 1, 1, 0, 1, 1);
      return bn(h, p + "op.3.");
    }
    if (op == "conv_7x1_1x7") {
      // DARTS operations.py: ReLU, 1x7 conv with stride (1, s) and padding (0, 3), 7x1 conv with
      // stride (s, 1) and padding (3, 0), BN. The engine pads the rows in the first conv and takes
      // both strides in the second (nas/layers.cpp); the padded rows and skipped columns only ever
      // meet zeros or are dropped, so both forms give the same numbers.
      std::string h = conv_hw(relu(x), p + "op.1.weight", 1, 7, 1, stride, 0, 3);
      h = conv_hw(h, p + "op.2.weight", 7, 1, stride, 1, 3, 0);
      return bn(h, p + "op.3.");
    }
    throw Error("onnx export: no ONNX form for primitive '" + op + "'");
  }
};

PbWriter value_info(const std::string& name, const std::vector<int64_t>& dims, const std::string& batch_param) {
  PbWriter shape;
  for (size_t i = 0; i < dims.size(); ++i) {
    PbWriter d;
    if (i == 0 && !batch_param.empty()) d.bytes_field(2, batch_param);
    else d.int64_field(1, dims[i]);
    shape.message_field(1, d);
  }
  PbWriter tensor;
  tensor.varint_field(1, kFloat);
  tensor.message_field(2, shape);
  PbWriter type;
  type.message_field(1, tensor);
  PbWriter vi;
  vi.bytes_field(1, name);
  vi.message_field(2, type);
  return vi;
}

}  // namespace

std::string export_onnx(const LoadedModel& model, const OnnxOptions& opt) {
  ASAP_CHECK(opt.opset >= 13 && opt.opset <= 17, "onnx export: opset must be 13..17, not ", opt.opset);
  ASAP_CHECK(opt.batch >= 0, "onnx export: the batch size must be >= 0");
  const ModelInfo& info = model.info;
  const nas::EvalNetworkConfig& c = info.net;
  std::map<std::string, Tensor> weights;
  for (const auto& list : {model.net->named_parameters(), model.net->named_buffers()})
    for (const auto& [name, t] : list) weights[darts_name(name, info.genotype, c.reduction_cells)] = t;

  GraphBuilder g(std::move(weights));
  Net n{g};
  const std::string x = "input";
  std::string s0 = n.bn(n.conv(x, "stem.0.weight", 3, 1, 1, 1, 1), "stem.1.");
  std::string s1 = s0;
  int64_t C = c.C;
  bool reduction_prev = false;
  for (int k = 0; k < c.layers; ++k) {
    const bool reduction = std::count(c.reduction_cells.begin(), c.reduction_cells.end(), k) > 0;
    if (reduction) C *= 2;
    const std::string p = "cells." + std::to_string(k) + ".";
    const nas::CellType t = reduction ? nas::CellType::Reduce : nas::CellType::Normal;
    const auto& genes = info.genotype.genes(t);
    std::vector<std::string> states = {
        reduction_prev ? n.factorized_reduce(s0, p + "preprocess0.") : n.relu_conv_bn(s0, p + "preprocess0."),
        n.relu_conv_bn(s1, p + "preprocess1.")};
    for (size_t i = 0; i + 1 < genes.size(); i += 2) {
      std::string h[2];
      for (size_t j = 0; j < 2; ++j) {
        const auto& [op, in] = genes[i + j];
        const int stride = reduction && in < 2 ? 2 : 1;
        h[j] = n.primitive(op, states[in], C, stride, p + "_ops." + std::to_string(i + j) + ".");
      }
      states.push_back(g.node("Add", {h[0], h[1]}));
    }
    std::vector<std::string> cat;
    for (int ci : info.genotype.concat(t)) cat.push_back(states[ci]);
    s0 = s1;
    s1 = cat.size() == 1 ? cat[0] : g.node("Concat", cat, {attr_i("axis", 1)});
    reduction_prev = reduction;
  }
  const std::string pooled = g.node("Flatten", {g.node("GlobalAveragePool", {s1})}, {attr_i("axis", 1)});
  g.node("Gemm", {pooled, g.weight("classifier.weight"), g.weight("classifier.bias")}, {attr_i("transB", 1)}, "logits");
  // Every weight outside the auxiliary head must have been used, or the graph is not the network.
  ASAP_CHECK(g.unused_weights("auxiliary_head.") == 0, "onnx export: ", g.unused_weights("auxiliary_head."),
             " tensors of the model are not in the graph");

  PbWriter graph;
  g.write(graph);
  const std::string batch = opt.batch > 0 ? "" : "batch";
  graph.message_field(11, value_info(x, {opt.batch, c.in_channels, c.input_size, c.input_size}, batch));
  graph.message_field(12, value_info("logits", {opt.batch, c.num_classes}, batch));

  PbWriter m;
  m.int64_field(1, opt.opset <= 14 ? 7 : 8);  // IR version of the opset's ONNX release
  m.bytes_field(2, "asap-engine");
  m.bytes_field(3, "1");
  m.bytes_field(4, "asap.nas");
  m.int64_field(5, 1);
  m.bytes_field(6, "DARTS NetworkCIFAR evaluation network (eval mode); input NCHW float32 = (pixel/255 - mean) / std");
  m.message_field(7, graph);
  PbWriter opset;
  opset.bytes_field(1, "");
  opset.int64_field(2, opt.opset);
  m.message_field(8, opset);
  const std::map<std::string, std::string> props = {
      {"normalization_mean", nlohmann::json(info.norm.mean).dump()},
      {"normalization_std", nlohmann::json(info.norm.stddev).dump()},
      {"num_classes", std::to_string(c.num_classes)},
      {"genotype", nas::to_text(info.genotype)},
      {"dataset", info.dataset}};
  for (const auto& [k, v] : props) {
    PbWriter e;
    e.bytes_field(1, k);
    e.bytes_field(2, v);
    m.message_field(14, e);
  }
  return m.bytes();
}

}  // namespace asap::exporting
