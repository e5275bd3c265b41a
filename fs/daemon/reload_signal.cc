// ReloadSignal: a thread waiting for SIGHUP.
#include "fs/daemon/reload_signal.h"

#include <signal.h>

#include <cerrno>
#include <ctime>

namespace reclaimfs::fs {

void ReloadSignal::Start() {
  stop_.store(false);
  thread_ = std::thread([this] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    // Blocked here too, in case the creator had it unblocked.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    const timespec period{0, 200'000'000};
    while (!stop_.load()) {
      if (sigtimedwait(&set, nullptr, &period) == SIGHUP) on_hangup_();
    }
  });
}

void ReloadSignal::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace reclaimfs::fs
