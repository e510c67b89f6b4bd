#include "tools/interrupt.h"

#include <signal.h>

#include <csignal>

namespace asap::run {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) {
  g_signal = sig;
  std::signal(sig, SIG_DFL);  // the next one of this kind ends the process as usual
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes in progress carry on
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int pending_signal() { return g_signal; }

void check_interrupt(const char* stage, int epoch, int64_t step) {
  if (!g_signal) return;
  Interrupted e;
  e.signal = g_signal;
  e.epoch = epoch;
  e.step = step;
  e.stage = stage;
  throw e;
}

}  // namespace asap::run
