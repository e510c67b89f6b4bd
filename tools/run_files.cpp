#include "tools/run_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace asap::run {
namespace {

void write_all(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path + ": write failed: " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void prepare_out_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir) && !fs::is_directory(dir)) throw IoError("output folder " + dir + ": exists but is not a folder");
  fs::create_directories(dir, ec);
  if (ec) throw IoError("output folder " + dir + ": cannot create it: " + ec.message());
  if (!fs::is_directory(dir)) throw IoError("output folder " + dir + ": exists but is not a folder");
  // A probe write of a few KiB catches read-only mounts, permissions and a full disk up front.
  const std::string probe = (fs::path(dir) / ".write_probe").string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw IoError("output folder " + dir + " is not writable: " + std::strerror(errno));
  try {
    write_all(fd, std::string(4096, '\0'), probe);
    if (::fsync(fd) != 0) throw IoError("output folder " + dir + ": fsync failed: " + std::strerror(errno));
  } catch (const IoError& e) {
    ::close(fd);
    ::unlink(probe.c_str());
    throw IoError(std::string("output folder ") + dir + " is not writable (disk full?): " + e.what());
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const fs::path p(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw IoError(path + ": cannot write: " + std::strerror(errno));
  try {
    write_all(fd, content, path);
    if (::fsync(fd) != 0) throw IoError(path + ": fsync failed: " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw IoError(path + ": cannot rename the temporary file into place: " + why);
  }
  fsync_dir(p.parent_path().string());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return fs::exists(path); }

void append_jsonl(const std::string& path, const nlohmann::json& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw IoError(path + ": cannot append: " + std::strerror(errno));
  try {
    write_all(fd, line.dump() + "\n", path);
    ::fsync(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

void filter_jsonl(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;
    if (keep(j)) out += line + "\n";
  }
  write_file_atomic(path, out);
}

}  // namespace asap::run
