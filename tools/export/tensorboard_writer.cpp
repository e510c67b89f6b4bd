#include "tools/export/tensorboard_writer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "engine/error.h"
#include "tools/export/crc32c.h"
#include "tools/export/protobuf_writer.h"

namespace asap::exporting {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string encode_scalar_event(double wall_time, int64_t step,
                                const std::vector<std::pair<std::string, double>>& scalars) {
  PbWriter summary;
  for (const auto& [tag, v] : scalars) {
    PbWriter value;
    value.bytes_field(1, tag);
    value.float_field(2, static_cast<float>(v));
    summary.message_field(1, value);
  }
  PbWriter ev;
  ev.double_field(1, wall_time);
  ev.int64_field(2, step);
  ev.message_field(5, summary);
  return ev.bytes();
}

EventWriter::EventWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  path_ = (std::filesystem::path(dir) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) +
                                         "." + host + "." + std::to_string(getpid())))
              .string();
  f_ = std::fopen(path_.c_str(), "ab");
  if (!f_) throw IoError(path_ + ": cannot create: " + std::strerror(errno));
  PbWriter ev;
  ev.double_field(1, now_seconds());
  ev.bytes_field(3, "brain.Event:2");
  write_record(ev.bytes());
  flush();
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);  // errors here cannot be reported (destructors never throw)
}

void EventWriter::write_record(const std::string& data) {
  const uint64_t len = data.size();
  const uint32_t len_crc = masked_crc32c(&len, 8);  // little-endian u64, as TFRecord
  const uint32_t data_crc = masked_crc32c(data.data(), data.size());
  bool ok = std::fwrite(&len, 8, 1, f_) == 1 && std::fwrite(&len_crc, 4, 1, f_) == 1;
  ok = ok && (data.empty() || std::fwrite(data.data(), data.size(), 1, f_) == 1);
  ok = ok && std::fwrite(&data_crc, 4, 1, f_) == 1;
  if (!ok) throw IoError(path_ + ": write failed: " + std::strerror(errno));
}

void EventWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  write_record(encode_scalar_event(now_seconds(), step, scalars));
}

void EventWriter::flush() {
  if (std::fflush(f_) != 0 || fsync(fileno(f_)) != 0) throw IoError(path_ + ": flush failed: " + std::strerror(errno));
}

}  // namespace asap::exporting
