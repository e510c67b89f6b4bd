#include "tools/progress.h"

#include <unistd.h>

#include <cstdio>

namespace asap::run {

std::string format_seconds(double s) {
  if (s < 0) s = 0;
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(::isatty(STDOUT_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::update(int64_t done, const std::string& fields) {
  if (!enabled_ || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double el = std::chrono::duration<double>(now - start_).count();
  const double eta = done > 0 ? el * (total_ - done) / done : 0;
  if (tty_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 24;
    const int filled = static_cast<int>(width * done / total_);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::printf("\r\033[K%s [%s] %lld/%lld %s ETA %s %s", label_.c_str(), bar.c_str(), (long long)done,
                (long long)total_, format_seconds(el).c_str(), format_seconds(eta).c_str(), fields.c_str());
    std::fflush(stdout);
  } else {
    const int64_t decile = done * 10 / total_;
    if (decile == last_plain_ || done == total_) return;
    last_plain_ = decile;
    std::printf("%s %lld/%lld %s ETA %s %s\n", label_.c_str(), (long long)done, (long long)total_,
                format_seconds(el).c_str(), format_seconds(eta).c_str(), fields.c_str());
    std::fflush(stdout);
  }
}

void Progress::finish(const std::string& summary) {
  if (tty_ && enabled_) std::printf("\r\033[K");
  std::printf("%s %s\n", label_.c_str(), summary.c_str());
  std::fflush(stdout);
}

}  // namespace asap::run
