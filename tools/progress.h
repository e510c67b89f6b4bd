// Per-epoch progress: a redrawn bar with ETA and live fields on a terminal; plain lines (about
// every 10% of the epoch) when stdout is a pipe or a file, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace asap::run {

class Progress {
 public:
  Progress(std::string label, int64_t total_steps, bool enabled);
  // fields: preformatted "loss 1.234 acc 0.812 ..." text.
  void update(int64_t done, const std::string& fields);
  // Ends the bar with a final summary line.
  void finish(const std::string& summary);

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t last_plain_ = -1;
};

std::string format_seconds(double s);  // "1:05:09" / "3:07"

}  // namespace asap::run
