// SIGHUP as "re-read the configuration": one thread takes the signal with
// sigtimedwait and runs the callback. SIGHUP must stay blocked in every
// thread (the daemon blocks it before it starts any), so it is never
// delivered to a handler and never ends the session loop.
//
// Start and Stop run on the main thread; Stop waits for a callback that is
// running. The thread looks at its stop flag every 200 ms.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace reclaimfs::fs {

class ReloadSignal {
 public:
  explicit ReloadSignal(std::function<void()> on_hangup) : on_hangup_(std::move(on_hangup)) {}
  ~ReloadSignal() { Stop(); }
  ReloadSignal(const ReloadSignal&) = delete;
  ReloadSignal& operator=(const ReloadSignal&) = delete;

  void Start();
  void Stop();

 private:
  std::function<void()> on_hangup_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace reclaimfs::fs
