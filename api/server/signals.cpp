#include "api/server/signals.hpp"

#include <pthread.h>

#include <cerrno>
#include <system_error>

namespace flowrt::api {

TerminationSignals::TerminationSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  int rc = pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_sigmask");
}

TerminationSignals::~TerminationSignals() {
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

int TerminationSignals::wait() {
  while (true) {
    int signal = 0;
    int rc = sigwait(&set_, &signal);
    if (rc == 0) return signal;
    if (rc != EINTR) throw std::system_error(rc, std::generic_category(), "sigwait");
  }
}

}  // namespace flowrt::api
