#include "engine/distributed/watchdog.h"

#include <unistd.h>

#include <cstdio>

namespace asap::dist {
namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Watchdog::Watchdog(double timeout_s, int rank) : timeout_s_(timeout_s), rank_(rank) {
  if (timeout_s_ > 0) thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::arm(const char* what) {
  armed_at_ns_.store(now_ns());
  what_.store(what);
}

void Watchdog::disarm() { what_.store(nullptr); }

void Watchdog::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    const char* what = what_.load();
    if (!what || stop_) continue;
    const double waited = double(now_ns() - armed_at_ns_.load()) * 1e-9;
    if (waited < timeout_s_) continue;
    // The main thread is blocked inside MPI/NCCL and cannot unwind: end the process from here.
    // fprintf + _exit only: no destructor may run against a communicator stuck in a call.
    std::fprintf(stderr,
                 "asap_run: error: rank %d: %s did not complete within %.0f s (distributed.timeout_s): a peer rank "
                 "died or stalls; resume with --resume once the job is relaunched\n",
                 rank_, what, timeout_s_);
    std::fflush(stderr);
    _exit(6);
  }
}

}  // namespace asap::dist
