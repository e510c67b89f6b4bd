// A scoped temporary folder for tests: created unique under $TMPDIR (or /tmp) and removed with
// everything in it when the test's scope ends, pass or fail, so test runs leave nothing behind.
#pragma once
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace asap::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "asap_test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "_XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;  // best effort: a destructor must not throw
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  operator const std::string&() const { return path_; }  // NOLINT: reads as the folder's path

 private:
  std::string path_;
};

}  // namespace asap::test
