// Waiting for SIGTERM/SIGINT without signal handlers or global state.
//
// `flowrt serve` constructs a TerminationSignals in `main` before it starts any thread, so
// every thread inherits a mask that blocks the two signals; the main thread then calls
// wait(), which returns the signal that arrived (sigwait(3)), and shuts the server down:
//
//   flowrt::api::TerminationSignals signals;   // first thing in main
//   HttpServer server(...); server.start();
//   int sig = signals.wait();                  // blocks until SIGTERM or SIGINT
//   server.shutdown();
#pragma once

#include <signal.h>

namespace flowrt::api {

class TerminationSignals {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread (and so in threads it starts later).
  // Throws std::system_error on failure.
  TerminationSignals();
  // Restores the calling thread's previous mask.
  ~TerminationSignals();
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Blocks until SIGTERM or SIGINT is pending for this thread or the process; returns it.
  int wait();

 private:
  sigset_t set_;
  sigset_t previous_;
};

}  // namespace flowrt::api
