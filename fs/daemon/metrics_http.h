// The optional HTTP endpoint for Prometheus (metrics_listen=ADDRESS:PORT):
// GET /metrics answers the text exposition format, anything else 404 (405
// for other methods). Boost.Beast on one thread of its own; each connection
// has 5 s to send its request and take the reply, so a silent or slow
// client holds nobody up for long.
//
// Start and Stop run on the main thread; Stop waits for the thread. The
// render callback runs on the server's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/daemon/listen_address.h"

namespace reclaimfs::fs {

class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(std::function<std::string()> render);
  ~MetricsHttpServer();  // Stop()

  // Binds and starts the thread; an address that cannot be bound is an error.
  absl::Status Start(const ListenAddress& address);
  void Stop();
  uint16_t port() const { return port_; }  // the bound port

 private:
  struct Io;
  std::function<std::string()> render_;
  std::unique_ptr<Io> io_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace reclaimfs::fs
