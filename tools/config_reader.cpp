#include "tools/config_reader.h"

#include <cmath>
#include <sstream>

#include "engine/error.h"

namespace asap::run {

SectionReader::SectionReader(const YAML::Node& node, std::string path, const std::string& file,
                             const std::set<std::string>* overridden)
    : node_(node), path_(std::move(path)), file_(file), overridden_(overridden) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    fail(node_, path_, "expected a mapping of keys");
}

bool SectionReader::from_set(const std::string& key) const {
  if (!overridden_) return false;
  // The key itself or a section above it was set on the command line.
  for (size_t dot = 0;; ++dot) {
    dot = key.find('.', dot);
    if (overridden_->count(key.substr(0, dot))) return true;
    if (dot == std::string::npos) return false;
  }
}

std::string SectionReader::where(const YAML::Node& n, const std::string& key) const {
  std::ostringstream os;
  os << file_;
  // A --set value was parsed on its own: its marks point into the override, not into the file.
  const bool set = from_set(key) || (n && n.Mark().line < 0);
  if (!set && n && n.Mark().line >= 0) os << ":" << n.Mark().line + 1;
  os << ": key '" << key << "'";
  if (set) os << " (from --set)";
  return os.str();
}

void SectionReader::fail_key(const char* key, const std::string& what) const {
  const YAML::Node& cn = node_;
  fail(cn && cn.IsMap() ? cn[key] : YAML::Node(), full(key), what);
}

void SectionReader::fail(const YAML::Node& n, const std::string& key, const std::string& what) const {
  throw ConfigError(where(n, key) + ": " + what);
}

YAML::Node SectionReader::child(const char* key) {
  asked_.insert(key);
  if (!node_ || node_.IsNull()) return YAML::Node();
  return node_[key];
}

namespace {
template <typename T>
bool convert(const YAML::Node& n, T& out) {
  if (!n.IsScalar()) return false;
  try {
    out = n.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}
std::string shown(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}
}  // namespace

void SectionReader::get(const char* key, bool& out) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  if (!convert(n, out)) fail(n, full(key), "expected true or false, got " + shown(n));
}

void SectionReader::get(const char* key, std::string& out, const std::vector<std::string>& allowed) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  std::string v;
  if (!convert(n, v)) fail(n, full(key), "expected a string, got " + shown(n));
  if (!allowed.empty()) {
    bool ok = false;
    std::string list;
    for (const auto& a : allowed) {
      ok |= (a == v);
      list += (list.empty() ? "" : ", ") + a;
    }
    if (!ok) fail(n, full(key), "'" + v + "' is not one of: " + list);
  }
  out = v;
}

void SectionReader::get(const char* key, std::vector<std::string>& out) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  if (!n.IsSequence()) fail(n, full(key), "expected a list of strings, got " + shown(n));
  if (n.size() == 0) fail(n, full(key), "an empty list; omit the key for the default");
  std::vector<std::string> v;
  for (const auto& e : n) {
    std::string s;
    if (!convert(e, s)) fail(e, full(key), "expected a list of strings, found " + shown(e));
    v.push_back(s);
  }
  out = v;
}

void SectionReader::get(const char* key, std::vector<int>& out) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  if (!n.IsSequence()) fail(n, full(key), "expected a list of integers, got " + shown(n));
  if (n.size() == 0) fail(n, full(key), "an empty list; omit the key for the default");
  std::vector<int> v;
  for (const auto& e : n) {
    int x;
    if (!convert(e, x)) fail(e, full(key), "expected a list of integers, found " + shown(e));
    v.push_back(x);
  }
  out = v;
}

void SectionReader::get(const char* key, double& out, double lo, double hi) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  double v;
  if (!convert(n, v) || !std::isfinite(v)) fail(n, full(key), "expected a number, got " + shown(n));
  if (v < lo || v > hi) {
    std::ostringstream os;
    os << v << " is out of range [" << lo << ", " << hi << "]";
    fail(n, full(key), os.str());
  }
  out = v;
}

void SectionReader::get(const char* key, int64_t& out, int64_t lo, int64_t hi) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  long long v;
  if (!convert(n, v)) fail(n, full(key), "expected an integer, got " + shown(n));
  if (v < lo || v > hi)
    fail(n, full(key), std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  out = v;
}

void SectionReader::get(const char* key, int& out, int lo, int hi) {
  int64_t v = out;
  get(key, v, lo, hi);
  out = static_cast<int>(v);
}

void SectionReader::get(const char* key, uint64_t& out) {
  YAML::Node n = child(key);
  if (!n || n.IsNull()) return;
  unsigned long long v;
  if (!convert(n, v) || (!n.Scalar().empty() && n.Scalar()[0] == '-'))
    fail(n, full(key), "expected a non-negative integer, got " + shown(n));
  out = v;
}

SectionReader SectionReader::section(const char* key) {
  YAML::Node n = child(key);
  if (n && !n.IsNull() && !n.IsMap()) fail(n, full(key), "expected a mapping, got " + shown(n));
  return SectionReader(n ? n : YAML::Node(), full(key), file_, overridden_);
}

void SectionReader::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    // A complex key ("? [a, b]") has no string form: as<std::string>() threw a YAML exception.
    if (!kv.first.IsScalar())
      fail(kv.first, path_.empty() ? "(top level)" : path_, "keys must be names, found " + shown(kv.first));
    const std::string k = kv.first.Scalar();
    if (!asked_.count(k)) {
      std::string known;
      for (const auto& a : asked_) known += (known.empty() ? "" : ", ") + a;
      fail(kv.first, full(k), "unknown key (known here: " + known + ")");
    }
  }
}

}  // namespace asap::run
