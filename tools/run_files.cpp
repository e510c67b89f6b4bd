#include "tools/run_files.h"

#include <fcntl.h>
#include <sys/file.h>
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

RunLock::RunLock(const std::string& dir) {
  const std::string path = (fs::path(dir) / "asap_run.lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot open the run folder's lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw IoError(path + ": cannot lock: " + std::strerror(err));
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    throw IoError("run folder " + dir + " is in use by another asap_run (PID " + (pid.empty() ? "unknown" : pid) +
                  "); wait for it to finish or stop it (nothing was changed)");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) write_all(fd_, pid, path);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (unlinking it would race)
}

std::vector<std::string> run_files_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const char* f : {"config.yaml", "metrics.jsonl", "prune_events.jsonl", "genotype.txt", "genotype.json",
                        "summary.json", "checkpoints"}) {
    std::error_code ec;
    if (fs::symlink_status(fs::path(dir) / f, ec).type() != fs::file_type::not_found && !ec) found.push_back(f);
  }
  return found;
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  for (const fs::path d : {fs::path(dir), fs::path(dir) / "checkpoints"}) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      const std::string name = e.path().filename().string();
      if (name.find(".tmp.") == std::string::npos || !e.is_regular_file(ec)) continue;
      if (fs::remove(e.path(), ec)) removed.push_back(e.path().string());
    }
  }
  return removed;
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
