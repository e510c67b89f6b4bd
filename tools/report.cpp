#include "tools/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "engine/error.h"
#include "tools/config.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;

namespace asap::run {
namespace {

bool is_run_dir(const fs::path& p) {
  return fs::is_regular_file(p / "config.yaml") &&
         (fs::is_regular_file(p / "summary.json") || fs::is_regular_file(p / "metrics.jsonl"));
}

RunRecord read_run(const fs::path& dir) {
  RunRecord r;
  r.dir = dir.string();
  RunConfig c;
  try {
    c = load_config((dir / "config.yaml").string());
  } catch (const Error& e) {
    throw IoError(r.dir + ": " + e.what());
  }
  r.seed = c.run.seed;
  c.run.seed = 0;
  c.search.seed = 0;
  c.run.out.clear();
  c.run.threads = 0;
  c.run.progress = true;
  c.run.plots = true;
  c.run.tensorboard = false;
  c.source.clear();
  r.group_key = to_yaml(c);
  const fs::path sp = dir / "summary.json";
  if (fs::is_regular_file(sp)) {
    const nlohmann::json s = nlohmann::json::parse(read_file(sp.string()), nullptr, false);
    if (!s.is_object()) throw IoError(sp.string() + ": not a JSON object");
    auto num = [&](const char* k) -> std::optional<double> {
      if (s.contains(k) && s[k].is_number()) return s[k].get<double>();
      return std::nullopt;
    };
    r.test_accuracy = num("test_accuracy");
    r.search_seconds = num("search_seconds");
    r.train_seconds = num("train_seconds");
    if (s.contains("parameters") && s["parameters"].is_number_integer()) r.parameters = s["parameters"].get<int64_t>();
    if (s.contains("fallback_genes") && s["fallback_genes"].is_number_integer())
      r.fallback_genes = s["fallback_genes"].get<int64_t>();
    if (s.contains("genotype") && s["genotype"].is_string()) r.genotype = s["genotype"].get<std::string>();
  }
  const fs::path mp = dir / "metrics.jsonl";
  if (fs::is_regular_file(mp)) {
    std::istringstream in(read_file(mp.string()));
    std::string line;
    while (std::getline(in, line)) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || j.value("stage", "") != "search") continue;
      const double secs = j.contains("epoch_seconds") && j["epoch_seconds"].is_number() ? j["epoch_seconds"].get<double>()
                                                                                       : j.value("seconds", 0.0);
      r.search_epochs.emplace_back(j.value("sparsity", 0.0), secs);
    }
  }
  return r;
}

void walk(const fs::path& p, std::vector<RunRecord>& out) {
  if (is_run_dir(p)) {
    out.push_back(read_run(p));
    return;
  }
  std::vector<fs::path> subs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(p, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec)) subs.push_back(e.path());
  std::sort(subs.begin(), subs.end());
  for (const auto& s : subs) walk(s, out);
}

nlohmann::json stat_json(const Stat& s) {
  nlohmann::json j = {{"n", s.n}, {"mean", nullptr}, {"std", nullptr}};
  if (s.n > 0) j["mean"] = s.mean;
  if (s.std) j["std"] = *s.std;
  return j;
}

template <typename F>
Stat stat_over(const RunGroup& g, F get) {
  std::vector<double> v;
  for (const RunRecord* r : g.runs)
    if (auto x = get(*r)) v.push_back(static_cast<double>(*x));
  return stat_of(v);
}

size_t distinct_genotypes(const RunGroup& g) {
  std::set<std::string> s;
  for (const RunRecord* r : g.runs)
    if (!r->genotype.empty()) s.insert(r->genotype);
  return s.size();
}

std::string fmt(double v, int prec) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string mean_pm(const Stat& s, int prec) {
  if (s.n == 0) return "-";
  return fmt(s.mean, prec) + (s.std ? " ± " + fmt(*s.std, prec) : "");
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

std::vector<RunRecord> find_runs(const std::vector<std::string>& roots) {
  std::vector<RunRecord> out;
  for (const auto& r : roots) {
    if (!fs::is_directory(r)) throw IoError(r + ": no such folder");
    walk(fs::path(r), out);
  }
  std::sort(out.begin(), out.end(), [](const RunRecord& a, const RunRecord& b) { return a.dir < b.dir; });
  out.erase(std::unique(out.begin(), out.end(), [](const RunRecord& a, const RunRecord& b) { return a.dir == b.dir; }),
            out.end());
  return out;
}

Stat stat_of(const std::vector<double>& v) {
  Stat s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / s.n;
  if (s.n >= 2) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / (s.n - 1));
  }
  return s;
}

std::vector<RunGroup> group_runs(const std::vector<RunRecord>& runs) {
  std::vector<RunGroup> groups;
  std::map<std::string, size_t> by_key;
  for (const RunRecord& r : runs) {
    auto it = by_key.find(r.group_key);
    if (it == by_key.end()) {
      by_key[r.group_key] = groups.size();
      groups.push_back({});
      groups.back().runs.push_back(&r);
    } else {
      groups[it->second].runs.push_back(&r);
    }
  }
  std::map<std::string, int> used;
  for (RunGroup& g : groups) {
    std::string name = fs::path(g.runs[0]->dir).parent_path().string();
    for (const RunRecord* r : g.runs)
      if (fs::path(r->dir).parent_path().string() != name) {
        name = g.runs.size() == 1 ? g.runs[0]->dir : name + " (+ other folders)";
        break;
      }
    if (g.runs.size() == 1) name = g.runs[0]->dir;
    if (name.empty()) name = ".";
    const int n = ++used[name];
    g.name = n == 1 ? name : name + " #" + std::to_string(n);
  }
  return groups;
}

nlohmann::json report_json(const std::vector<RunGroup>& groups) {
  nlohmann::json gs = nlohmann::json::array(), rs = nlohmann::json::array();
  for (const RunGroup& g : groups) {
    nlohmann::json seeds = nlohmann::json::array(), dirs = nlohmann::json::array();
    for (const RunRecord* r : g.runs) {
      seeds.push_back(r->seed);
      dirs.push_back(r->dir);
      nlohmann::json rj = {{"dir", r->dir}, {"group", g.name}, {"seed", r->seed}};
      rj["test_accuracy"] = r->test_accuracy ? nlohmann::json(*r->test_accuracy) : nlohmann::json(nullptr);
      rj["parameters"] = r->parameters ? nlohmann::json(*r->parameters) : nlohmann::json(nullptr);
      rj["search_seconds"] = r->search_seconds ? nlohmann::json(*r->search_seconds) : nlohmann::json(nullptr);
      rj["train_seconds"] = r->train_seconds ? nlohmann::json(*r->train_seconds) : nlohmann::json(nullptr);
      rj["fallback_genes"] = r->fallback_genes ? nlohmann::json(*r->fallback_genes) : nlohmann::json(nullptr);
      rj["genotype"] = r->genotype;
      nlohmann::json ep = nlohmann::json::array();
      for (const auto& [sp, secs] : r->search_epochs) ep.push_back({sp, secs});
      rj["search_epochs"] = ep;
      rs.push_back(rj);
    }
    gs.push_back({{"name", g.name},
                  {"runs", g.runs.size()},
                  {"test_accuracy", stat_json(stat_over(g, [](const RunRecord& r) { return r.test_accuracy; }))},
                  {"parameters", stat_json(stat_over(g, [](const RunRecord& r) { return r.parameters; }))},
                  {"search_seconds", stat_json(stat_over(g, [](const RunRecord& r) { return r.search_seconds; }))},
                  {"train_seconds", stat_json(stat_over(g, [](const RunRecord& r) { return r.train_seconds; }))},
                  {"fallback_genes", stat_json(stat_over(g, [](const RunRecord& r) { return r.fallback_genes; }))},
                  {"distinct_genotypes", distinct_genotypes(g)},
                  {"seeds", seeds},
                  {"run_dirs", dirs}});
  }
  return {{"groups", gs}, {"runs", rs}};
}

std::string report_markdown(const std::vector<RunGroup>& groups) {
  std::string s =
      "| group | runs | test accuracy (mean ± std) | parameters | search seconds | distinct genotypes |\n"
      "|---|---|---|---|---|---|\n";
  for (const RunGroup& g : groups) {
    const Stat acc = stat_over(g, [](const RunRecord& r) { return r.test_accuracy; });
    const Stat par = stat_over(g, [](const RunRecord& r) { return r.parameters; });
    const Stat sec = stat_over(g, [](const RunRecord& r) { return r.search_seconds; });
    s += "| " + g.name + " | " + std::to_string(g.runs.size()) + " | " + mean_pm(acc, 4) + " | " +
         (par.n ? fmt(par.mean, 0) : "-") + " | " + mean_pm(sec, 1) + " | " + std::to_string(distinct_genotypes(g)) +
         " |\n";
  }
  s += "\nstd: the sample standard deviation (n - 1) over the runs of a group; none for a single run.\n";
  return s;
}

std::string report_csv(const std::vector<RunGroup>& groups) {
  std::string s =
      "group,runs,test_accuracy_mean,test_accuracy_std,parameters_mean,search_seconds_mean,search_seconds_std,"
      "distinct_genotypes\n";
  auto opt = [](const Stat& st, bool want_std, int prec) {
    if (st.n == 0 || (want_std && !st.std)) return std::string();
    return fmt(want_std ? *st.std : st.mean, prec);
  };
  for (const RunGroup& g : groups) {
    const Stat acc = stat_over(g, [](const RunRecord& r) { return r.test_accuracy; });
    const Stat par = stat_over(g, [](const RunRecord& r) { return r.parameters; });
    const Stat sec = stat_over(g, [](const RunRecord& r) { return r.search_seconds; });
    s += csv_field(g.name) + "," + std::to_string(g.runs.size()) + "," + opt(acc, false, 6) + "," + opt(acc, true, 6) +
         "," + opt(par, false, 0) + "," + opt(sec, false, 3) + "," + opt(sec, true, 3) + "," +
         std::to_string(distinct_genotypes(g)) + "\n";
  }
  return s;
}

}  // namespace asap::run
