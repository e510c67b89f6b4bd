// Run-folder helpers: atomic writes, JSONL filtering on resume, output-folder checks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "engine/error.h"
#include "tools/progress.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;
using namespace asap::run;

namespace {
struct TempDir {
  fs::path p;
  TempDir() {
    p = fs::temp_directory_path() / ("asap_runfiles_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~TempDir() { fs::remove_all(p); }
};
}  // namespace

TEST_CASE("atomic writes replace the file and leave no temporary behind", "[run]") {
  TempDir d;
  const std::string f = (d.p / "a.txt").string();
  write_file_atomic(f, "first");
  write_file_atomic(f, "second");
  CHECK(read_file(f) == "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(d.p)) files += e.is_regular_file();
  CHECK(files == 1);
  CHECK_THROWS_AS(write_file_atomic((d.p / "missing/a.txt").string(), "x"), asap::IoError);
  CHECK_THROWS_AS(read_file((d.p / "nope").string()), asap::IoError);
}

TEST_CASE("filter_jsonl keeps chosen lines and drops a torn last line", "[run]") {
  TempDir d;
  const std::string f = (d.p / "m.jsonl").string();
  append_jsonl(f, {{"epoch", 0}});
  append_jsonl(f, {{"epoch", 1}});
  append_jsonl(f, {{"epoch", 2}});
  {
    std::ofstream out(f, std::ios::app);
    out << "{\"epoch\": 3, \"trunc";  // a crash mid-append
  }
  filter_jsonl(f, [](const nlohmann::json& j) { return j["epoch"].get<int>() < 2; });
  CHECK(read_file(f) == "{\"epoch\":0}\n{\"epoch\":1}\n");
  filter_jsonl((d.p / "absent.jsonl").string(), [](const nlohmann::json&) { return true; });
  CHECK_FALSE(file_exists((d.p / "absent.jsonl").string()));
}

TEST_CASE("prepare_out_dir creates folders and rejects unusable paths", "[run]") {
  TempDir d;
  prepare_out_dir((d.p / "x/y").string());
  CHECK(fs::is_directory(d.p / "x/y"));
  CHECK(fs::is_empty(d.p / "x/y"));  // the probe file is removed
  std::ofstream((d.p / "file").string()) << "x";
  CHECK_THROWS_WITH(prepare_out_dir((d.p / "file").string()), Catch::Contains("not a folder"));
  CHECK_THROWS_WITH(prepare_out_dir((d.p / "file/sub").string()), Catch::Contains("cannot create"));
}

TEST_CASE("progress formats durations", "[run]") {
  CHECK(format_seconds(0) == "0:00");
  CHECK(format_seconds(187) == "3:07");
  CHECK(format_seconds(3909) == "1:05:09");
}

TEST_CASE("RunLock: one writer per run folder, the second is told the holder's PID", "[run]") {
  TempDir d;
  {
    RunLock first(d.p.string());
    // flock conflicts between two open file descriptions, even within one process.
    CHECK_THROWS_WITH(RunLock(d.p.string()), Catch::Contains("in use by another asap_run (PID " +
                                                             std::to_string(::getpid()) + ")"));
  }
  RunLock again(d.p.string());  // released with its holder
  CHECK(read_file((d.p / "asap_run.lock").string()) == std::to_string(::getpid()) + "\n");
}

TEST_CASE("run_files_in names every run file; the lock file is not one", "[run]") {
  TempDir d;
  { RunLock l(d.p.string()); }
  CHECK(run_files_in(d.p.string()).empty());
  std::ofstream((d.p / "metrics.jsonl").string()) << "";
  fs::create_directories(d.p / "checkpoints");
  CHECK(run_files_in(d.p.string()) == std::vector<std::string>{"metrics.jsonl", "checkpoints"});
  std::ofstream((d.p / "genotype.json").string()) << "{}";
  CHECK(run_files_in(d.p.string()).size() == 3);
}

TEST_CASE("remove_stale_temporaries removes only NAME.tmp.* files", "[run]") {
  TempDir d;
  fs::create_directories(d.p / "checkpoints");
  for (const char* f : {"summary.json.tmp.123", "checkpoints/search.safetensors.tmp.9.0", "metrics.jsonl",
                        "checkpoints/search.safetensors"})
    std::ofstream((d.p / f).string()) << "x";
  auto removed = remove_stale_temporaries(d.p.string());
  CHECK(removed.size() == 2);
  CHECK_FALSE(fs::exists(d.p / "summary.json.tmp.123"));
  CHECK_FALSE(fs::exists(d.p / "checkpoints/search.safetensors.tmp.9.0"));
  CHECK(fs::exists(d.p / "metrics.jsonl"));
  CHECK(fs::exists(d.p / "checkpoints/search.safetensors"));
}
