// A bound on how long one collective may block (distributed.timeout_s): when a peer rank dies
// and the launcher does not end the job (or a peer stalls), the waiting rank prints which
// collective timed out and exits with code 6 instead of hanging. Collectives arm it around the
// blocking call; one background thread checks the deadline.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace asap::dist {

class Watchdog {
 public:
  Watchdog(double timeout_s, int rank);  // timeout_s <= 0: never fires (no thread)
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  class Armed {
   public:
    Armed(Watchdog& w, const char* what) : w_(w) { w_.arm(what); }
    ~Armed() { w_.disarm(); }
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;
   private:
    Watchdog& w_;
  };

 private:
  void arm(const char* what);
  void disarm();
  void loop();
  const double timeout_s_;
  const int rank_;
  std::atomic<const char*> what_{nullptr};
  std::atomic<int64_t> armed_at_ns_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace asap::dist
