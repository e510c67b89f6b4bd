// A schema-driven reader over one YAML mapping: every read names its dotted key, wrong types and
// out-of-range values become asap::ConfigError with file and line, and finish() rejects keys that
// no read asked for (typos must not be silently ignored).
#pragma once
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace asap::run {

class SectionReader {
 public:
  // `overridden`: dotted keys set by --set; errors under them say "(from --set)", not a line.
  SectionReader(const YAML::Node& node, std::string path, const std::string& file,
                const std::set<std::string>* overridden = nullptr);

  void get(const char* key, bool& out);
  void get(const char* key, std::string& out, const std::vector<std::string>& allowed = {});
  void get(const char* key, std::vector<std::string>& out);
  void get(const char* key, std::vector<int>& out);
  void get(const char* key, double& out, double lo, double hi);
  void get(const char* key, int& out, int lo, int hi);
  void get(const char* key, int64_t& out, int64_t lo, int64_t hi);
  void get(const char* key, uint64_t& out);
  // A nested mapping (an empty one when absent).
  SectionReader section(const char* key);
  // Throws for keys present in the mapping that no get()/section() asked for.
  void finish() const;

  // "file:line: key 'a.b'" (or "file: key 'a.b' (from --set)" for overridden nodes).
  std::string where(const YAML::Node& n, const std::string& key) const;
  bool from_set(const std::string& key) const;
  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& what) const;
  // Fails naming `key` of this section (and its line) for checks that span several keys.
  [[noreturn]] void fail_key(const char* key, const std::string& what) const;

 private:
  YAML::Node child(const char* key);
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  YAML::Node node_;
  std::string path_;
  const std::string& file_;
  const std::set<std::string>* overridden_;
  std::set<std::string> asked_;
};

}  // namespace asap::run
