#include "nas/primitives.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "engine/error.h"
#include "nas/layers.h"

namespace asap::nas {

namespace {

using Factory = std::function<std::unique_ptr<Module>(const PrimitiveArgs&, Generator&)>;

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> r = {
      {"none", [](const PrimitiveArgs& a, Generator&) -> std::unique_ptr<Module> {
         return std::make_unique<Zero>(a.stride);
       }},
      {"max_pool_3x3", [](const PrimitiveArgs& a, Generator&) -> std::unique_ptr<Module> {
         return std::make_unique<Pool>(true, a.C, a.stride, a.pool_bn, a.device);
       }},
      {"avg_pool_3x3", [](const PrimitiveArgs& a, Generator&) -> std::unique_ptr<Module> {
         return std::make_unique<Pool>(false, a.C, a.stride, a.pool_bn, a.device);
       }},
      {"skip_connect", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         if (a.stride == 1) return std::make_unique<Identity>();
         return std::make_unique<FactorizedReduce>(a.C, a.C, a.affine, g, a.device);
       }},
      {"sep_conv_3x3", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         return std::make_unique<SepConv>(a.C, a.C, 3, a.stride, 1, a.affine, g, a.device);
       }},
      {"sep_conv_5x5", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         return std::make_unique<SepConv>(a.C, a.C, 5, a.stride, 2, a.affine, g, a.device);
       }},
      {"sep_conv_7x7", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         return std::make_unique<SepConv>(a.C, a.C, 7, a.stride, 3, a.affine, g, a.device);
       }},
      {"conv_7x1_1x7", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         return std::make_unique<Conv7x1_1x7>(a.C, a.stride, a.affine, g, a.device);
       }},
      {"dil_conv_3x3", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         return std::make_unique<DilConv>(a.C, a.C, 3, a.stride, 2, 2, a.affine, g, a.device);
       }},
      {"dil_conv_5x5", [](const PrimitiveArgs& a, Generator& g) -> std::unique_ptr<Module> {
         return std::make_unique<DilConv>(a.C, a.C, 5, a.stride, 4, 2, a.affine, g, a.device);
       }},
  };
  return r;
}

std::string known_list() {
  std::string s;
  for (auto& n : known_primitives()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

const std::vector<std::string>& darts_primitives() {
  static const std::vector<std::string> p = {"none",         "max_pool_3x3", "avg_pool_3x3",
                                             "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                                             "dil_conv_3x3", "dil_conv_5x5"};
  return p;
}

std::vector<std::string> known_primitives() {
  std::vector<std::string> out;
  for (auto& kv : registry()) out.push_back(kv.first);
  return out;
}

bool is_known_primitive(const std::string& name) { return registry().count(name) > 0; }

std::unique_ptr<Module> make_primitive(const std::string& name, const PrimitiveArgs& a,
                                       Generator& gen) {
  auto it = registry().find(name);
  ASAP_CHECK(it != registry().end(), "unknown primitive '", name, "'; known: ", known_list());
  return it->second(a, gen);
}

void validate_primitive_list(const std::vector<std::string>& names) {
  ASAP_CHECK(!names.empty(), "the primitive list is empty");
  std::set<std::string> seen;
  for (auto& n : names) {
    ASAP_CHECK(is_known_primitive(n), "unknown primitive '", n, "'; known: ", known_list());
    ASAP_CHECK(seen.insert(n).second, "primitive '", n, "' is listed twice");
  }
  ASAP_CHECK(names.size() > 1 || names[0] != "none", "the primitive list holds only 'none'");
}

}  // namespace asap::nas
