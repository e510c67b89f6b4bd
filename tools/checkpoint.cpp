#include "tools/checkpoint.h"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "nas/genotype.h"

namespace asap::run {
namespace {

using json = nlohmann::json;
constexpr const char* kFormat = "asap-checkpoint-v2";
constexpr int64_t kMaxStep = int64_t{1} << 53;  // exact in a JSON double

}  // namespace

// CRC-32 (zlib) over the state text and, per tensor in name order, name, dtype, shape and bytes:
// every byte of the header that matters and every byte of the data section.
std::string checkpoint_checksum(const std::string& state, const std::map<std::string, Tensor>& tensors) {
  uLong crc = crc32_z(0L, Z_NULL, 0);
  auto add = [&](const void* p, size_t n) { crc = crc32_z(crc, static_cast<const Bytef*>(p), n); };
  add(state.data(), state.size() + 1);
  for (const auto& [name, t] : tensors) {
    add(name.data(), name.size() + 1);
    const int32_t dt = static_cast<int32_t>(t.dtype());
    add(&dt, sizeof dt);
    const int64_t rank = t.ndim();
    add(&rank, sizeof rank);
    for (int64_t d : t.shape()) add(&d, sizeof d);
    add(t.raw_data(), t.nbytes());
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "crc32:%08lx", static_cast<unsigned long>(crc & 0xffffffffUL));
  return buf;
}

namespace {

// Schema checks over the state JSON: each failure names the dotted key and what was expected.
class Validator {
 public:
  explicit Validator(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw IoError(path_ + ": checkpoint state: key '" + key + "': " + what);
  }
  const json& field(const json& obj, const std::string& parent, const char* key) const {
    if (!obj.contains(key)) fail(join(parent, key), "missing");
    return obj[key];
  }
  void object(const json& j, const std::string& key, const std::set<std::string>& allowed) const {
    if (!j.is_object()) fail(key, "expected an object, got " + type(j));
    for (const auto& [k, v] : j.items())
      if (!allowed.count(k)) fail(join(key, k), "unknown key");
  }
  int64_t integer(const json& j, const std::string& key, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer()) fail(key, "expected an integer, got " + type(j));
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi)) fail(key, range(j, lo, hi));
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi) fail(key, range(j, lo, hi));
    return v;
  }
  double number(const json& j, const std::string& key, double lo, double hi) const {
    if (!j.is_number()) fail(key, "expected a number, got " + type(j));
    const double v = j.get<double>();
    if (!std::isfinite(v) || v < lo || v > hi) fail(key, j.dump() + " is out of range [" + fmt(lo) + ", " + fmt(hi) + "]");
    return v;
  }
  std::string string(const json& j, const std::string& key) const {
    if (!j.is_string()) fail(key, "expected a string, got " + type(j));
    return j.get<std::string>();
  }
  void array(const json& j, const std::string& key, size_t size) const {
    if (!j.is_array()) fail(key, "expected a list, got " + type(j));
    if (size != SIZE_MAX && j.size() != size)
      fail(key, "expected " + std::to_string(size) + " entries, got " + std::to_string(j.size()));
  }
  static std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

 private:
  static std::string type(const json& j) { return j.type_name(); }
  static std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
  }
  static std::string range(const json& j, int64_t lo, int64_t hi) {
    return j.dump() + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  const std::string& path_;
};

void validate_search(const Validator& v, const json& s, const CheckpointSchema& sc) {
  v.object(s, "", {"searcher", "seconds", "completed"});
  v.number(v.field(s, "", "seconds"), "seconds", 0, 1e12);
  if (!v.field(s, "", "completed").is_boolean()) v.fail("completed", "expected true or false");
  const json& j = v.field(s, "", "searcher");
  v.object(j, "searcher", {"format", "epoch", "step", "temperature", "primitives", "sparsity", "alive", "prune_log"});
  if (v.string(v.field(j, "searcher", "format"), "searcher.format") != "asap-search-state-1")
    v.fail("searcher.format", "expected 'asap-search-state-1'");
  v.integer(v.field(j, "searcher", "epoch"), "searcher.epoch", 0, sc.max_epoch);
  v.integer(v.field(j, "searcher", "step"), "searcher.step", 0, kMaxStep);
  v.number(v.field(j, "searcher", "temperature"), "searcher.temperature", 1e-12, 1e12);
  v.number(v.field(j, "searcher", "sparsity"), "searcher.sparsity", 0, 1);
  const json& prims = v.field(j, "searcher", "primitives");
  v.array(prims, "searcher.primitives", sc.primitives.size());
  for (size_t i = 0; i < prims.size(); ++i)
    if (v.string(prims[i], "searcher.primitives") != sc.primitives[i])
      v.fail("searcher.primitives", "differs from the config's space.primitives");
  const json& alive = v.field(j, "searcher", "alive");
  v.object(alive, "searcher.alive", {"normal", "reduce"});
  for (const char* t : {"normal", "reduce"}) {
    const std::string key = std::string("searcher.alive.") + t;
    const json& rows = v.field(alive, "searcher.alive", t);
    v.array(rows, key, static_cast<size_t>(sc.edges));
    for (const json& row : rows) {
      v.array(row, key, sc.primitives.size());
      for (const json& x : row) v.integer(x, key, 0, 1);
    }
  }
  const json& log = v.field(j, "searcher", "prune_log");
  v.array(log, "searcher.prune_log", SIZE_MAX);
  const std::set<std::string> prim_set(sc.primitives.begin(), sc.primitives.end());
  for (const json& e : log) {
    const std::string k = "searcher.prune_log";
    // winner .. decided: the decision record (nas/annealer.h), absent in logs written before it.
    v.object(e, k, {"epoch", "step", "cell_type", "edge", "op", "phi", "T", "theta", "winner", "winner_phi",
                    "alpha_gap", "decided"});
    if (e.contains("winner") && !prim_set.count(v.string(e["winner"], k + ".winner")))
      v.fail(k + ".winner", "not in space.primitives");
    for (const char* f : {"winner_phi", "alpha_gap"})
      if (e.contains(f) && !e[f].is_null()) v.number(e[f], k + "." + f, -1e300, 1e300);
    if (e.contains("decided") && !e["decided"].is_boolean()) v.fail(k + ".decided", "must be true or false");
    v.integer(v.field(e, k, "epoch"), k + ".epoch", 0, sc.max_epoch);
    v.integer(v.field(e, k, "step"), k + ".step", 0, kMaxStep);
    const std::string ct = v.string(v.field(e, k, "cell_type"), k + ".cell_type");
    if (ct != "normal" && ct != "reduce") v.fail(k + ".cell_type", "'" + ct + "' is not normal or reduce");
    v.integer(v.field(e, k, "edge"), k + ".edge", 0, sc.edges - 1);
    if (!prim_set.count(v.string(v.field(e, k, "op"), k + ".op"))) v.fail(k + ".op", "not in space.primitives");
    for (const char* f : {"phi", "T", "theta"}) v.number(v.field(e, k, f), k + "." + f, -1e300, 1e300);
  }
}

void validate_train(const Validator& v, const json& s, const CheckpointSchema& sc) {
  v.object(s, "", {"trainer", "seconds", "test"});
  v.number(v.field(s, "", "seconds"), "seconds", 0, 1e12);
  if (s.contains("test")) {
    v.object(s["test"], "test", {"loss", "acc"});
    v.number(v.field(s["test"], "test", "loss"), "test.loss", 0, 1e300);
    v.number(v.field(s["test"], "test", "acc"), "test.acc", 0, 1);
  }
  const json& j = v.field(s, "", "trainer");
  v.object(j, "trainer", {"format", "epoch", "step", "genotype", "drop_path_offset"});
  if (v.string(v.field(j, "trainer", "format"), "trainer.format") != "asap-train-state-1")
    v.fail("trainer.format", "expected 'asap-train-state-1'");
  v.integer(v.field(j, "trainer", "epoch"), "trainer.epoch", 0, sc.max_epoch);
  v.integer(v.field(j, "trainer", "step"), "trainer.step", 0, kMaxStep);
  const json& off = v.field(j, "trainer", "drop_path_offset");
  if (!off.is_number_unsigned()) v.fail("trainer.drop_path_offset", "expected a non-negative integer");
  try {
    nas::genotype_from_json(v.field(j, "trainer", "genotype"));
  } catch (const Error& e) {
    v.fail("trainer.genotype", e.what());
  }
}

}  // namespace

CheckpointSchema search_schema(const RunConfig& c) {
  CheckpointSchema s;
  s.kind = CheckpointSchema::Kind::Search;
  s.max_epoch = c.search.epochs;
  s.primitives = c.search.net.primitives;
  s.edges = c.search.net.nodes * (c.search.net.nodes + 3) / 2;
  return s;
}

CheckpointSchema train_schema(const RunConfig& c) {
  CheckpointSchema s;
  s.kind = CheckpointSchema::Kind::Train;
  s.max_epoch = c.train.epochs;
  return s;
}

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tensors,
                     const nlohmann::json& state) {
  std::map<std::string, Tensor> host;
  for (const auto& [name, t] : tensors) {
    Tensor h = t.contiguous();
    host.emplace(name, h.device() == Device::cpu() ? h : h.to(Device::cpu()));
  }
  const std::string text = state.dump();
  save_safetensors(path, host, {{"state", text}, {"format", kFormat}, {"checksum", checkpoint_checksum(text, host)}});
}

Checkpoint load_checkpoint(const std::string& path, const CheckpointSchema& schema) {
  SafetensorsFile f = load_safetensors(path);
  auto meta = [&](const char* key) {
    auto it = f.metadata.find(key);
    return it == f.metadata.end() ? std::string() : it->second;
  };
  if (meta("format") != kFormat)
    throw IoError(path + ": not an asap checkpoint of format " + kFormat + " (metadata 'format' is '" +
                  meta("format") + "')");
  Checkpoint c;
  c.tensors = f.as_map();
  if (c.tensors.size() != f.tensors.size()) throw IoError(path + ": duplicate tensor names");
  const std::string state = meta("state");
  const std::string stored = meta("checksum"), actual = checkpoint_checksum(state, c.tensors);
  if (stored != actual)
    throw IoError(path + ": checksum mismatch (stored '" + stored + "', contents give '" + actual +
                  "'): the file is corrupt");
  c.state = json::parse(state, nullptr, /*allow_exceptions=*/false);
  if (c.state.is_discarded()) throw IoError(path + ": checkpoint state is not valid JSON");
  const Validator v(path);
  if (schema.kind == CheckpointSchema::Kind::Search) validate_search(v, c.state, schema);
  else validate_train(v, c.state, schema);
  return c;
}

}  // namespace asap::run
