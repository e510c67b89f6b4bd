// TensorBoard event files written by hand: TFRecord framing (u64 length, masked CRC-32C of the
// length, the record, masked CRC-32C of the record) around tensorflow.Event protobufs
// (wall_time = 1, step = 2, file_version = 3, summary = 5) whose Summary holds
// Value{tag = 1, simple_value = 2} scalars.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace asap::exporting {

class EventWriter {
 public:
  // Creates DIR (and parents) and DIR/events.out.tfevents.<unix time>.<host>.<pid>, starting with
  // the file_version record ("brain.Event:2"). Throws asap::IoError.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // One Event at `step` holding every (tag, value) scalar.
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);
  void flush();  // fflush + fsync: a crash keeps every epoch logged so far
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* f_ = nullptr;
};

// The serialised Event (tests decode it).
std::string encode_scalar_event(double wall_time, int64_t step,
                                const std::vector<std::pair<std::string, double>>& scalars);

}  // namespace asap::exporting
