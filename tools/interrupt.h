// SIGINT / SIGTERM: the handler only records the signal; the stages check it between steps, so
// the write in progress always finishes and the run stops at a clean point with a resume hint.
#pragma once
#include <cstdint>
#include <exception>
#include <string>

namespace asap::run {

// Thrown by check_interrupt; deliberately not an asap::Error, so no stage turns it into
// another error. asap_run prints where it stopped and exits 128 + signal (130, 143).
struct Interrupted : std::exception {
  int signal = 0, epoch = 0;
  int64_t step = 0;
  std::string stage;
  const char* what() const noexcept override { return "interrupted"; }
};

// Installs the handlers (a second signal of the same kind kills at once, as usual).
void install_interrupt_handlers();
// The signal received so far, or 0.
int pending_signal();
// Throws Interrupted{signal, epoch, step} when a signal came.
void check_interrupt(const char* stage, int epoch, int64_t step);

}  // namespace asap::run
