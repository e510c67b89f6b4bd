#include "data/read_bytes.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace asap::data {

namespace {
// Closes the gzFile on every path out of read_file_bytes, errors included.
struct GzCloser {
  gzFile f;
  ~GzCloser() {
    if (f) gzclose(f);
  }
};
}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    throw IoError(detail::concat(path, ": cannot open: ", errno ? std::strerror(errno) : "gzopen failed"));
  }
  GzCloser closer{f};
  gzbuffer(f, 1 << 20);  // fewer syscalls for the 26 MB Fashion-MNIST train file
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      throw IoError(detail::concat(path, ": corrupt gzip data: ", msg ? msg : "unknown zlib error"));
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  // A gzip stream cut short reads as a short EOF; zlib flags it as Z_BUF_ERROR.
  int code = 0;
  const char* msg = gzerror(f, &code);
  if (code != Z_OK && code != Z_STREAM_END) {
    throw IoError(detail::concat(path, ": corrupt or truncated gzip data: ", msg ? msg : "zlib error"));
  }
  return out;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string base_name(const std::string& path) {
  size_t p = path.find_last_of('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}

}  // namespace asap::data
